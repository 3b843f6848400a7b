import {expect} from 'chai'
import {allocationCandidates, decideBind, firstFree, remapCandidates, suggestPorts, type BindInput, type LeaseView, type Limits, type PortView} from '../../src/core/decide.js'
import {mergeServiceTypes} from '../../src/core/service-types.js'

const types = mergeServiceTypes(undefined)
const limits: Limits = {types, reserved: new Set([9876]), minPort: 1024}

function view(leases: LeaseView[] = [], bound: number[] = []): PortView {
  const byPort = new Map(leases.map((l) => [l.port, l]))
  const b = new Set(bound)
  return {leaseOn: (p) => byPort.get(p), isBound: (p) => b.has(p)}
}

const lease = (port: number, pid: number, extra: Partial<LeaseView> = {}): LeaseView =>
  ({id: `l-${port}`, port, service: 'api', requestedPort: port, pid, pidStart: 1, instanceId: null, ...extra})

function input(port: number, extra: Partial<BindInput> = {}): BindInput {
  return {holder: {pid: 100, pidStart: 1, instanceId: null}, requestedPort: port, taken: new Set(), reassign: true, inferredService: 'dev', prior: undefined, remembered: () => undefined, ...extra}
}

describe('core: bind decision', () => {
  it('allows a free port and creates a lease of the type whose range holds it', () => {
    const d = decideBind(input(8000), view(), limits)
    expect(d).to.include({action: 'allow', port: 8000, service: 'api', repeat: false})
    expect(d.action !== 'deny' && d.lease).to.deep.equal({create: true})
  })

  it('remaps a bound port to the next free port of its range', () => {
    const d = decideBind(input(8000), view([], [8000, 8001]), limits)
    expect(d).to.include({action: 'remap', port: 8002, service: 'api'})
  })

  it('never moves a bind onto a port another socket still holds (a connection, TIME_WAIT), yet allows asking for one', () => {
    const busy = new Set([8001, 8002])
    const v = {...view([], [8000]), otherwiseHeld: (p: number) => busy.has(p)}
    expect(decideBind(input(8000), v, limits)).to.include({action: 'remap', port: 8003})
    // The asker may set SO_REUSEADDR, which binds past TIME_WAIT: its own port is not refused for it.
    expect(decideBind(input(8001), {...view(), otherwiseHeld: (p: number) => busy.has(p)}, limits)).to.include({action: 'allow', port: 8001})
  })

  it('remaps a port leased to another holder, and wraps to the start of the range', () => {
    const d = decideBind(input(6029), view([lease(6029, 200)], [6006]), limits)
    expect(d).to.include({action: 'remap', port: 6007, service: 'storybook'})
  })

  it('gives the same process the same answer for the same port (IPv6 after IPv4), marked repeat', () => {
    const prior = lease(8003, 100, {requestedPort: 8000})
    const d = decideBind(input(8000, {prior}), view([prior], [8000, 8003]), limits)
    expect(d).to.include({action: 'remap', port: 8003, repeat: true})
  })

  it('moves on with a new lease when the caller found its earlier answer taken', () => {
    const prior = lease(8003, 100, {requestedPort: 8000})
    const d = decideBind(input(8000, {prior, taken: new Set([8003])}), view([prior], [8000]), limits)
    expect(d).to.include({action: 'remap', port: 8001, repeat: false})
    expect(d.action !== 'deny' && d.lease).to.deep.equal({create: true})
  })

  it("allows a holder's own allocation, matched by instance id", () => {
    const own = lease(3000, 999, {instanceId: 'run-1', service: 'dev'})
    const d = decideBind(input(3000, {holder: {pid: 100, pidStart: 1, instanceId: 'run-1'}}), view([own]), limits)
    expect(d).to.include({action: 'allow', port: 3000})
  })

  it('never hands out the daemon port, browser-blocked ports or ports below the floor', () => {
    const d = decideBind(input(9875), view([], [9875]), limits)
    expect(d).to.include({action: 'remap', port: 9877})
    const blocked = decideBind(input(4044), view([], [4044]), limits)
    expect(blocked).to.include({action: 'remap', port: 4046}) // 4045 is refused by browsers
  })

  it('goes above the range, outside every other range, when the range is full', () => {
    const full = Array.from({length: 24}, (_, i) => 6006 + i)
    const d = decideBind(input(6006), view([], full), limits)
    expect(d).to.include({action: 'remap', port: 6030})
    const first = remapCandidates(6369, types)
    expect(first.next().value).to.equal(6400) // 6369 is in no range; 6370-6399 belong to infrastructure
  })

  it('denies instead of moving when reassignment is disabled', () => {
    expect(decideBind(input(8000, {reassign: false}), view([], [8000]), limits)).to.include({action: 'deny', port: 8000})
    expect(decideBind(input(8000, {reassign: false}), view(), limits)).to.include({action: 'allow', port: 8000})
  })

  it('denies a second holder of a single-instance type rather than starting another', () => {
    expect(decideBind(input(11434), view([], [11434]), limits)).to.include({action: 'deny', service: 'ai'})
  })

  it('looks the remembered port up only when it has to move the bind', () => {
    let asked = 0
    const remembered = () => { asked++; return 3050 }
    expect(decideBind(input(3000, {remembered}), view([], []), limits)).to.include({action: 'allow', port: 3000})
    expect(asked).to.equal(0)
    expect(decideBind(input(3000, {remembered}), view([], [3000]), limits)).to.include({action: 'remap', port: 3050})
    expect(asked).to.equal(1)
  })

  it('prefers the port the same project got last time, while it is free', () => {
    expect(decideBind(input(3000, {remembered: () => 3050}), view([], [3000]), limits)).to.include({action: 'remap', port: 3050})
    expect(decideBind(input(3000, {remembered: () => 3050}), view([], [3000, 3050]), limits)).to.include({action: 'remap', port: 3001})
    // Its own predecessor's TIME_WAIT (a restarted server that had answered requests) does not move it on.
    const busy = {...view([], [3000]), otherwiseHeld: (p: number) => p === 3050}
    expect(decideBind(input(3000, {remembered: () => 3050}), busy, limits)).to.include({action: 'remap', port: 3050})
    // Found taken by the caller itself (no SO_REUSEADDR): a fresh port, never busy.
    expect(decideBind(input(3000, {remembered: () => 3050, taken: new Set([3050])}), {...busy, otherwiseHeld: (p: number) => p === 3050 || p === 3001}, limits)).to.include({action: 'remap', port: 3002})
  })

  it('uses the inferred service for a port outside every range', () => {
    expect(decideBind(input(7777, {inferredService: 'database'}), view(), limits)).to.include({action: 'allow', service: 'database'})
  })

  it('suggests preferred ports first and skips what is taken', () => {
    const dev = types.find((t) => t.name === 'dev')!
    expect(suggestPorts(dev, 3, view([lease(3001, 5)], [3000]), limits)).to.deep.equal([3002, 3003, 3004])
  })

  it('an allocation whose asked port is taken gets the next free one of its range (wrapping), not the first of the type', () => {
    const api = types.find((t) => t.name === 'api')!
    expect(firstFree(allocationCandidates(api, 8050, undefined, types), view([], [8050, 8051]), limits)).to.equal(8052)
    expect(firstFree(allocationCandidates(api, 8099, undefined, types), view([], [8099]), limits)).to.equal(8000)
    // In no type's range: above it, outside every range, as a moved bind goes.
    const dev = types.find((t) => t.name === 'dev')!
    expect(firstFree(allocationCandidates(dev, 7777, undefined, types), view([], [7777]), limits)).to.equal(7778)
    // Another type's port for an explicit type: that type's own ports follow.
    expect(firstFree(allocationCandidates(dev, 8000, undefined, types), view([], [8000]), limits)).to.equal(3000)
  })
})
