import {expect} from 'chai'
import path from 'node:path'
import {startDaemon, removeHome, type TestDaemon} from '../helpers/daemon.js'
import {killAll, spawnHolder} from '../helpers/processes.js'
import {rawExchange as exchange} from '../helpers/proof.js'

/** Send raw bytes on the Unix socket and read the whole answer. */
const rawExchange = (d: TestDaemon, bytes: string | Buffer) => exchange({path: path.join(d.home, 'daemon.sock')}, bytes)

describe('daemon: bad input gets a clear 4xx and changes nothing', () => {
  let d: TestDaemon
  const holder = spawnHolder()

  before(async () => { d = await startDaemon() })
  after(async () => {
    await killAll([holder])
    await d.stop()
    removeHome(d.home)
  })

  const cases: {name: string; method: string; path: string; body?: unknown; raw?: string; status: number; code: string}[] = [
    {name: 'not JSON', method: 'POST', path: '/v1/allocations', raw: '{"service": dev', status: 400, code: 'INVALID_JSON'},
    {name: 'JSON but not an object', method: 'POST', path: '/v1/bind', raw: '[1,2,3]', status: 422, code: 'VALIDATION_FAILED'},
    {name: 'missing field', method: 'POST', path: '/v1/bind', body: {port: 3000}, status: 422, code: 'VALIDATION_FAILED'},
    {name: 'port out of range', method: 'POST', path: '/v1/bind', body: {pid: 1, port: 70000}, status: 422, code: 'VALIDATION_FAILED'},
    {name: 'unknown field', method: 'POST', path: '/v1/allocations', body: {service: 'dev', colour: 'red'}, status: 422, code: 'VALIDATION_FAILED'},
    {name: 'wrong type', method: 'POST', path: '/v1/allocations', body: {service: 'dev', port: '3000'}, status: 422, code: 'VALIDATION_FAILED'},
    {name: 'unknown service', method: 'POST', path: '/v1/allocations', body: {service: 'nope'}, status: 422, code: 'UNKNOWN_SERVICE'},
    {name: 'blocked port', method: 'POST', path: '/v1/allocations', body: {service: 'ui', port: 4045}, status: 422, code: 'PORT_OUT_OF_RANGE'},
    {name: 'bad port path', method: 'GET', path: '/v1/ports/abc', status: 422, code: 'VALIDATION_FAILED'},
    {name: 'bad count', method: 'GET', path: '/v1/suggest/dev?count=-1', status: 422, code: 'VALIDATION_FAILED'},
    {name: 'unknown route', method: 'GET', path: '/v1/nope', status: 404, code: 'NOT_FOUND'},
    {name: 'wrong method', method: 'PUT', path: '/v1/allocations', status: 405, code: 'METHOD_NOT_ALLOWED'},
    {name: 'instance without id or pid', method: 'POST', path: '/v1/instances', body: {}, status: 422, code: 'VALIDATION_FAILED'},
    {name: 'bad since', method: 'GET', path: '/v1/reassignments?since=yesterday', status: 422, code: 'VALIDATION_FAILED'},
  ]

  for (const c of cases) {
    it(`${c.name}: ${c.status} ${c.code}`, async () => {
      const before = await d.client.leases()
      const res = c.raw === undefined
        ? await d.client.raw(c.method, c.path, c.body)
        : await rawExchange(d, `${c.method} ${c.path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(c.raw)}\r\nConnection: close\r\n\r\n${c.raw}`)
          .then((text) => ({status: Number(text.split(' ')[1]), body: text.slice(text.indexOf('\r\n\r\n') + 4)}))
      expect(res.status).to.equal(c.status)
      const err = JSON.parse(res.body).error
      expect(err.code).to.equal(c.code)
      expect(err.message).to.be.a('string').and.not.be.empty
      expect(await d.client.leases()).to.deep.equal(before)
    })
  }

  it('a body over the size limit is refused with 413', async () => {
    const res = await d.client.raw('POST', '/v1/allocations', {service: 'dev', name: 'x'.repeat(100_000)})
    expect(res.status).to.equal(413)
    expect(JSON.parse(res.body).error.code).to.equal('PAYLOAD_TOO_LARGE')
  })

  it('a non-JSON content type is refused with 415', async () => {
    const text = await rawExchange(d, 'POST /v1/allocations HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\ndev')
    expect(text).to.match(/^HTTP\/1.1 415/)
    expect(text).to.contain('UNSUPPORTED_MEDIA_TYPE')
  })

  it('garbage instead of HTTP gets 400 and the daemon keeps answering', async () => {
    const text = await rawExchange(d, Buffer.from([0, 1, 2, 255, 13, 10, 13, 10]))
    expect(text).to.match(/^HTTP\/1.1 400/)
    expect((await d.client.health()).pid).to.equal(d.pid)
  })

  it('bad input leaves an existing lease alone', async () => {
    const lease = await d.client.allocate({service: 'api', pid: holder.pid})
    await d.client.raw('POST', '/v1/bind', {pid: holder.pid, port: lease.port, family: 'ipx'}) // a key the schema does not have
    await d.client.raw('DELETE', '/v1/allocations/' + encodeURIComponent('../../etc'))
    expect((await d.client.leases()).map((l) => l.id)).to.include(lease.id)
    await d.client.release(lease.id)
  })
})
