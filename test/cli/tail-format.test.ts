import {expect} from 'chai'
import {closeNotice, formatEvent, gapNotice, matches} from '../../src/cli/tail.js'
import type {StyxyEvent} from '../../src/protocol/events.js'

const remap = {seq: 7, at: '2026-11-25T10:42:01.331Z', type: 'bind.remapped',
  data: {pid: 4242, requestedPort: 8000, port: 8001, from: 8000, to: 8001, service: 'api', command: 'uvicorn app:app', at: '', leaseId: 'l-1'}} as StyxyEvent

describe('styxy tail: lines and filters', () => {
  it('one readable line: time, kind, port, pid, the move, the command; colour only when asked', () => {
    expect(formatEvent(remap, false)).to.equal('10:42:01.331  bind.remapped        :8001   pid 4242  8000 -> 8001 (api)  uvicorn app:app')
    expect(formatEvent(remap, true)).to.contain('\x1b[33mbind.remapped')
    const followed = {seq: 8, at: '2026-11-25T10:42:02.000Z', type: 'connect.followed',
      data: {pid: 5151, from: 8000, to: 8002, requestedPort: 8000, port: 8002, project: '/home/dev/wt-b', command: 'curl localhost:8000'}} as StyxyEvent
    expect(formatEvent(followed, false)).to.equal('10:42:02.000  connect.followed     :8002   pid 5151  followed 8000 -> 8002  curl localhost:8000  in /home/dev/wt-b')
    expect(matches(followed, {port: 8000})).to.equal(true)
    const multiline = {...followed, data: {...followed.data, command: "python3 -c import x\nfor _ in range(3):\n\tx.get()"}} as StyxyEvent
    expect(formatEvent(multiline, false)).to.equal('10:42:02.000  connect.followed     :8002   pid 5151  followed 8000 -> 8002  python3 -c import x for _ in range(3): x.get()  in /home/dev/wt-b')
    const inProject = {...remap, data: {...remap.data, project: '/home/dev/wt-b'}} as StyxyEvent
    expect(formatEvent(inProject, false)).to.equal('10:42:01.331  bind.remapped        :8001   pid 4242  8000 -> 8001 (api)  uvicorn app:app  in /home/dev/wt-b')
  })

  it('filters by family or full type, service and port (either side of a move)', () => {
    expect(matches(remap, {type: 'bind'})).to.equal(true)
    expect(matches(remap, {type: 'bind.remapped'})).to.equal(true)
    expect(matches(remap, {type: 'lease'})).to.equal(false)
    expect(matches(remap, {service: 'dev'})).to.equal(false)
    expect(matches(remap, {port: 8000})).to.equal(true)
    expect(matches(remap, {port: 8001, service: 'api'})).to.equal(true)
    expect(matches(remap, {port: 9000})).to.equal(false)
  })

  it('one line for how the daemon closed the stream, and for the events missed meanwhile', () => {
    expect(closeNotice(4008)).to.equal('(dropped by the daemon: this tail fell behind (close 4008); reconnecting, events meanwhile are missed)')
    expect(closeNotice(1001)).to.equal('(daemon stopping; reconnecting)')
    expect(closeNotice(1006)).to.equal('(daemon went away; reconnecting)')
    expect(gapNotice(10, 14)).to.equal('(missed 3 event(s) while away)')
    expect(gapNotice(10, 11)).to.equal(null)
    expect(gapNotice(10, 2)).to.equal(null) // a new daemon run counts from 1 again
    expect(gapNotice(0, 5)).to.equal(null)
  })
})
