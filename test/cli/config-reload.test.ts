import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'
import type WebSocket from 'ws'
import {startDaemon, removeHome, runCli, type TestDaemon} from '../helpers/daemon.js'
import {nextEvent, opened} from '../helpers/events.js'
import type {StyxyEvent} from '../../src/protocol/events.js'

// Config changes apply without a restart: on SIGHUP, on `styxy daemon reload`, and when the file changes. A file
// that does not validate is refused with its field named, and the daemon keeps the types it had.

const json = (s: string) => JSON.parse(s) as any

describe('CLI: config changes apply without a restart', () => {
  let d: TestDaemon
  let file: string
  let ws: WebSocket
  before(async () => {
    d = await startDaemon()
    file = path.join(d.home, 'config', 'styxy', 'config.json')
    fs.mkdirSync(path.dirname(file), {recursive: true})
    ws = d.client.events()
    await opened(ws)
  })
  after(async () => {
    ws.close()
    await d.stop()
    removeHome(d.home)
  })
  const cli = (...args: string[]) => runCli(args, d.env)
  const types = async () => (await d.client.serviceTypes()).map((t) => t.name)
  const write = (types: Record<string, unknown>) => fs.writeFileSync(file, JSON.stringify({serviceTypes: types}))
  const event = (type: StyxyEvent['type'], trigger: string) => nextEvent(ws, (e) => e.type === type && (e.data as {trigger: string}).trigger === trigger)

  it('the daemon watches its config file: a saved change applies at once', async () => {
    const reloaded = event('config.reloaded', 'watch')
    write({web: {range: [7000, 7099]}})
    const e = await reloaded
    expect(e.data).to.include({file, changed: true, serviceTypes: 18})
    expect(await types()).to.include('web')
    expect(json((await cli('suggest', 'web', '--json')).stdout).ports[0]).to.be.within(7000, 7099)
  })

  it('SIGHUP reads the file again (and no longer stops the daemon)', async () => {
    // Written with the watch's own reload first, so that the one the signal makes is seen by its trigger.
    const watched = event('config.reloaded', 'watch')
    write({web: {range: [7000, 7099]}, grpc: {range: [7100, 7199]}})
    await watched
    const signalled = event('config.reloaded', 'signal')
    process.kill(d.pid, 'SIGHUP')
    expect((await signalled).data).to.include({changed: false, serviceTypes: 19})
    expect((await cli('daemon', 'status')).stdout).to.contain(`running (pid ${d.pid}`)
  })

  it('styxy daemon reload reads it on request and says what is in use', async () => {
    const r = await cli('daemon', 'reload', '--json')
    expect(r.code, r.stderr).to.equal(0)
    expect(json(r.stdout)).to.include({file, trigger: 'request', serviceTypes: 19})
  })

  it('a file that does not validate is refused, naming the field, and the old types stay (watch, reload, SIGHUP)', async () => {
    const rejected = nextEvent(ws, (e) => e.type === 'config.rejected')
    write({web: {range: [7000]}})
    const e = await rejected
    expect((e.data as {message: string}).message).to.contain('serviceTypes.web.range')
    const r = await cli('daemon', 'reload')
    expect(r.code).to.equal(4)
    expect(r.stderr).to.contain('serviceTypes.web.range').and.contain('the daemon keeps the types it had')
    const signalled = event('config.rejected', 'signal')
    process.kill(d.pid, 'SIGHUP')
    await signalled
    expect(await types()).to.include.members(['web', 'grpc'])
    expect((await cli('suggest', 'grpc')).code).to.equal(0)
  })

  it('daemon restart with a broken file refuses before stopping: the running daemon stays', async () => {
    write({web: {range: [7000]}})
    const r = await cli('daemon', 'restart')
    expect(r.code).to.equal(1)
    expect(r.stderr).to.contain('serviceTypes.web.range').and.contain('the daemon was not restarted')
    expect((await d.client.health()).pid).to.equal(d.pid)
    expect(d.child.exitCode).to.equal(null)
  })
})
