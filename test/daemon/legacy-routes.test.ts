import {expect} from 'chai'
import type net from 'node:net'
import {startDaemon, removeHome, type TestDaemon} from '../helpers/daemon.js'
import {closeServer, killAll, listenOn, portOf, spawnHolder} from '../helpers/processes.js'
import {legacyRequest} from '../helpers/legacy.js'
import type {ChildProcess} from 'node:child_process'

// Every route of the first Styxy's API (its shapes recorded in the original-api page), over TCP with
// the token, each with valid and invalid input: status codes and key sets.
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
const ERROR_KEYS = ['success', 'error']

describe('legacy routes: the first Styxy\'s API', function () {
  this.timeout(30_000)
  let d: TestDaemon
  let holder: ChildProcess
  const servers: net.Server[] = []
  const req = (method: string, target: string, body?: unknown) => legacyRequest(d, method, target, body)
  const refused = (a: {status: number; body: any}, status: number) => {
    expect(a.status, JSON.stringify(a.body)).to.equal(status)
    expect(a.body).to.include.keys(...ERROR_KEYS)
    expect(a.body.success).to.equal(false)
    expect(a.body.error).to.be.a('string').and.not.empty
  }

  before(async () => {
    d = await startDaemon()
    holder = spawnHolder()
  })
  after(async () => {
    for (const s of servers) await closeServer(s)
    await killAll([holder])
    await d?.stop()
    if (d) removeHome(d.home)
  })

  describe('POST /allocate and DELETE /allocate/:lockId', () => {
    it('allocates a lease with a uuid v4 lock id, listed by GET /v1/allocations (styxy list) and GET /allocations', async () => {
      const a = await req('POST', '/allocate', {service_type: 'dev', service_name: 'web', instance_id: 'agent-1', project_path: '/tmp/p'})
      expect(a.status).to.equal(200)
      expect(a.body).to.include.keys('success', 'port', 'lock_id', 'message')
      expect(a.body.success).to.equal(true)
      expect(a.body.lock_id).to.match(UUID_V4)
      expect(a.body.message).to.equal(`Port ${a.body.port} allocated for dev service`)
      expect(a.body.port).to.be.within(3000, 3099)
      const v1 = await d.client.leases()
      expect(v1.find((l) => l.id === a.body.lock_id)).to.include({port: a.body.port, service: 'dev', name: 'web', instanceId: 'agent-1', project: '/tmp/p'})
      const list = await req('GET', '/allocations')
      expect(list.status).to.equal(200)
      const rec = list.body.allocations.find((x: any) => x.lockId === a.body.lock_id)
      expect(rec).to.include.keys('port', 'service_type', 'service_name', 'instance_id', 'project_path', 'lockId', 'allocated_at')
      expect(rec).to.include({port: a.body.port, service_type: 'dev', service_name: 'web', instance_id: 'agent-1', project_path: '/tmp/p'})
    })

    it('releases by lock id; an unknown uuid and a malformed id are 400', async () => {
      const a = await req('POST', '/allocate', {service_type: 'api'})
      const del = await req('DELETE', `/allocate/${a.body.lock_id}`)
      expect(del.status).to.equal(200)
      expect(del.body).to.deep.equal({success: true, port: a.body.port, message: `Port ${a.body.port} released`})
      expect((await d.client.leases()).map((l) => l.id)).to.not.include(a.body.lock_id)
      refused(await req('DELETE', `/allocate/${a.body.lock_id}`), 400)
      refused(await req('DELETE', `/allocate/${crypto.randomUUID()}`), 400)
      refused(await req('DELETE', '/allocate/not-a-uuid'), 400)
      refused(await req('DELETE', '/allocate/3000'), 400)
      // A v1 lease id is not a lock id.
      const v1 = await d.client.allocate({service: 'api'})
      refused(await req('DELETE', `/allocate/${v1.id}`), 400)
      expect((await d.client.leases()).map((l) => l.id)).to.include(v1.id)
    })

    it('dry_run answers a port and writes nothing', async () => {
      const before = (await d.client.leases()).length
      const a = await req('POST', '/allocate', {service_type: 'database', dry_run: true})
      expect(a.status).to.equal(200)
      expect(a.body).to.include({success: true, dry_run: true})
      expect(a.body).to.include.keys('port', 'lock_id', 'message')
      expect((await d.client.leases()).length).to.equal(before)
    })

    it('preferred_port is honoured when free, and a bound one is skipped', async () => {
      const a = await req('POST', '/allocate', {service_type: 'storybook', preferred_port: 6020})
      expect(a.body).to.include({success: true, port: 6020})
      const held = await listenOn('127.0.0.1', 6021).catch(() => undefined)
      if (held) servers.push(held)
      const b = await req('POST', '/allocate', {service_type: 'storybook', preferred_port: 6021})
      expect(b.body.success).to.equal(true)
      expect(b.body.port).to.not.equal(6021)
      expect(b.body.port).to.not.equal(6020)
    })

    it('a single-instance type already held answers the existing shape', async () => {
      const first = await req('POST', '/allocate', {service_type: 'ai', instance_id: 'first'})
      expect(first.body.success).to.equal(true)
      const second = await req('POST', '/allocate', {service_type: 'ai', instance_id: 'second'})
      expect(second.status).to.equal(200)
      expect(second.body).to.include.keys('port', 'lockId', 'message', 'existing', 'existingInstanceId', 'existingPid', 'allocatedAt')
      expect(second.body).to.include({port: first.body.port, lockId: first.body.lock_id, existing: true, existingInstanceId: 'first', existingPid: null})
    })

    it('an exhausted range is 400 with the first API\'s message', async () => {
      // The auth type's range is 9099-9199: fill what is left of it.
      const made: string[] = []
      for (;;) {
        const a = await req('POST', '/allocate', {service_type: 'auth'})
        if (a.status !== 200) {
          refused(a, 400)
          expect(a.body.error).to.equal('No available ports in range 9099-9199 for service type auth')
          break
        }
        made.push(a.body.lock_id)
        expect(made.length).to.be.below(102)
      }
      for (const id of made) expect((await req('DELETE', `/allocate/${id}`)).status).to.equal(200)
    })

    it('refuses bad bodies with 400: no service_type, an unknown type, a bad port, not JSON', async () => {
      refused(await req('POST', '/allocate', {}), 400)
      refused(await req('POST', '/allocate', {service_type: 'no-such-type'}), 400)
      refused(await req('POST', '/allocate', {service_type: 'dev', preferred_port: 70000}), 400)
      refused(await req('POST', '/allocate', '{"service_type":'), 400)
    })
  })

  it('GET /observe/:port: bound with its holder, free with a message, bad port 400', async () => {
    const s = await listenOn('127.0.0.1')
    servers.push(s)
    const bound = await req('GET', `/observe/${portOf(s)}`)
    expect(bound.status).to.equal(200)
    expect(bound.body).to.have.keys('port', 'bound', 'observation')
    expect(bound.body.observation).to.include({pid: process.pid})
    const free = await req('GET', '/observe/1')
    expect(free.body).to.include({port: 1, bound: false, message: 'Port is not currently bound'})
    for (const bad of ['0', '65536', 'abc']) {
      const a = await req('GET', `/observe/${bad}`)
      refused(a, 400)
      expect(a.body.error).to.equal('Invalid port number')
    }
  })

  it('GET /suggest/:serviceType: count, unknown types fall back to dev, bad count 400', async () => {
    const a = await req('GET', '/suggest/api?count=3')
    expect(a.status).to.equal(200)
    expect(a.body).to.include.keys('service_type', 'suggestions', 'count', 'message')
    expect(a.body).to.include({service_type: 'api', count: 3, message: 'Found 3 available port(s)'})
    const dev = await req('GET', '/suggest/no-such-type')
    expect(dev.body.service_type).to.equal('dev')
    expect(dev.body.suggestions).to.have.length(5)
    refused(await req('GET', '/suggest/api?count=0'), 400)
  })

  it('POST /register-instance: a pid makes ldpreload-<pid>, an id registers that id, neither is 400', async () => {
    const byPid = await req('POST', '/register-instance', {pid: holder.pid})
    expect(byPid.status).to.equal(200)
    expect(byPid.body).to.deep.equal({success: true, instance_id: `ldpreload-${holder.pid}`, message: 'Instance registered successfully'})
    const again = await req('POST', '/register-instance', {pid: holder.pid})
    expect(again.body.instance_id).to.equal(`ldpreload-${holder.pid}`)
    const byId = await req('POST', '/register-instance', {instance_id: 'claude-1', project_path: '/tmp/proj', metadata: {agent: 'x'}})
    expect(byId.body).to.include({success: true, instance_id: 'claude-1'})
    expect((await d.client.instances()).find((i) => i.id === 'claude-1')).to.include({project: '/tmp/proj'})
    const neither = await req('POST', '/register-instance', {port: 3000})
    expect(neither.status).to.equal(400)
    expect(neither.body.error).to.equal('instance_id is required (or provide pid for auto-generation)')
    refused(await req('POST', '/register-instance', {pid: 4194304}), 400) // no such process
    refused(await req('POST', '/register-instance', {pid: 'x'}), 400)
  })

  it('GET /status: counts only', async () => {
    const a = await req('GET', '/status')
    expect(a.status).to.equal(200)
    expect(a.body).to.have.keys('status', 'uptime', 'allocations', 'instances')
    expect(a.body.status).to.equal('running')
    expect(a.body.allocations).to.equal((await d.client.leases()).length)
  })

  it('GET /check/:port: a lease and a listener, or available; bad port 400', async () => {
    const a = await req('POST', '/allocate', {service_type: 'functions'})
    const leased = await req('GET', `/check/${a.body.port}`)
    expect(leased.body).to.have.keys('port', 'available', 'allocated_to', 'system_usage')
    expect(leased.body).to.include({available: false, system_usage: null})
    expect(leased.body.allocated_to).to.include({lockId: a.body.lock_id, service_type: 'functions'})
    const s = await listenOn('127.0.0.1')
    servers.push(s)
    const bound = await req('GET', `/check/${portOf(s)}`)
    expect(bound.body).to.include({available: false, allocated_to: null})
    expect(bound.body.system_usage).to.include({pid: process.pid})
    refused(await req('GET', '/check/99999'), 400)
  })

  it('GET /config: every service type with its range and behaviour', async () => {
    const a = await req('GET', '/config')
    expect(a.status).to.equal(200)
    expect(a.body.service_types.storybook).to.include.keys('preferred_ports', 'range', 'description', 'examples', 'instance_behavior')
    expect(a.body.service_types.storybook.range).to.deep.equal([6006, 6029])
    expect(a.body.service_types.ai.instance_behavior).to.equal('single')
  })

  it('POST /instance/register, PUT /instance/:id/heartbeat, GET /instance/list', async () => {
    const r = await req('POST', '/instance/register', {instance_id: 'hook-1', working_directory: '/tmp/w', metadata: {a: 1}})
    expect(r.status).to.equal(200)
    expect(r.body).to.deep.equal({success: true, instance_id: 'hook-1', message: 'Instance hook-1 registered'})
    refused(await req('POST', '/instance/register', {working_directory: '/tmp/w'}), 400)
    const a = await req('POST', '/allocate', {service_type: 'dev', instance_id: 'hook-1'})
    const hb = await req('PUT', '/instance/hook-1/heartbeat', {ignored: true})
    expect(hb.status).to.equal(200)
    expect(hb.body).to.have.keys('success', 'instance_id', 'last_heartbeat')
    expect(Date.parse(hb.body.last_heartbeat)).to.be.a('number').and.not.NaN
    const missing = await req('PUT', '/instance/nope/heartbeat')
    refused(missing, 404)
    expect(missing.body.error).to.equal('Instance not found')
    const list = await req('GET', '/instance/list')
    const mine = list.body.instances.find((i: any) => i.instance_id === 'hook-1')
    expect(mine).to.include.keys('instance_id', 'working_directory', 'registered_at', 'last_heartbeat', 'active_allocations', 'metadata')
    expect(mine.working_directory).to.equal('/tmp/w')
    expect(mine.active_allocations.map((x: any) => x.lockId)).to.deep.equal([a.body.lock_id])
  })

  it('POST /cleanup: force releases what is not listening; a bad body is 400', async () => {
    const a = await req('POST', '/allocate', {service_type: 'monitoring'})
    const c = await req('POST', '/cleanup', {force: true})
    expect(c.status).to.equal(200)
    expect(c.body).to.include.keys('success', 'cleaned', 'message')
    expect(c.body.cleaned).to.be.at.least(1)
    expect((await d.client.leases()).map((l) => l.id)).to.not.include(a.body.lock_id)
    refused(await req('POST', '/cleanup', {force: 'yes'}), 400)
  })

  it('GET /scan: ports in use between start and end; a bad range is 400', async () => {
    const s = await listenOn('127.0.0.1')
    servers.push(s)
    const port = portOf(s)
    const a = await req('GET', `/scan?start=${port}&end=${port}`)
    expect(a.status).to.equal(200)
    expect(a.body).to.have.keys('scan_range', 'ports_in_use')
    expect(a.body.scan_range).to.equal(`${port}-${port}`)
    expect(a.body.ports_in_use).to.have.length(1)
    expect(a.body.ports_in_use[0]).to.include.keys('port', 'allocated_to', 'system_usage')
    expect(a.body.ports_in_use[0].system_usage).to.include({pid: process.pid})
    refused(await req('GET', '/scan?start=5000&end=4000'), 400)
  })

  it('GET /health: healthy or warning, with timestamp, uptime and version', async () => {
    const a = await req('GET', '/health')
    expect(a.status).to.equal(200)
    expect(a.body).to.include.keys('status', 'timestamp', 'uptime', 'version')
    expect(a.body.status).to.be.oneOf(['healthy', 'warning'])
  })

  it('without the token every route but GET /status is 401 in the legacy shape; v1 keeps its own shape', async () => {
    const none = await legacyRequest(d, 'GET', '/allocations', undefined, {})
    refused(none, 401)
    const wrong = await legacyRequest(d, 'POST', '/allocate', {service_type: 'dev'}, {'x-api-key': 'f'.repeat(64)})
    refused(wrong, 401)
    expect((await legacyRequest(d, 'GET', '/status', undefined, {})).status).to.equal(200)
    const v1 = await legacyRequest(d, 'GET', '/v1/allocations', undefined, {})
    expect(v1.status).to.equal(401)
    expect(v1.body.error.code).to.equal('UNAUTHORIZED')
    const unknown = await req('GET', '/no-such-route')
    expect(unknown.body.error.code).to.equal('NOT_FOUND')
  })
})
