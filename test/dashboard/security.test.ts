// The dashboard's access rule (src/daemon/dashboard/access.ts) against a real daemon: its endpoints and its
// WebSocket without the cookie, with the cookie but from another origin, through a *.localhost Host, and with
// a spent or made-up login code are refused, each with its code; the cookie opens nothing under /v1.
import {expect} from 'chai'
import {spawn} from 'node:child_process'
import os from 'node:os'
import http from 'node:http'
import path from 'node:path'
import WebSocket from 'ws'
import {DashboardRoutes, Routes} from '../../src/protocol/routes.js'
import {removeHome, runCli, startDaemon, type TestDaemon} from '../helpers/daemon.js'
import {closeServer, listenOn, portOf, spawnHolder} from '../helpers/processes.js'

interface Answer {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
}

function request(d: TestDaemon, method: string, urlPath: string, headers: Record<string, string>, body?: string, socket = false): Promise<Answer> {
  const target = socket ? {socketPath: path.join(d.home, 'daemon.sock')} : {host: '127.0.0.1', port: d.port}
  return new Promise((resolve, reject) => {
    const req = http.request({...target, method, path: urlPath, headers, agent: false}, (res) => {
      let text = ''
      res.on('data', (c) => (text += c))
      res.on('end', () => resolve({status: res.statusCode!, headers: res.headers, body: text}))
    })
    req.on('error', reject)
    req.end(body)
  })
}

const codeOf = (a: Answer) => (JSON.parse(a.body) as {error: {code: string}}).error.code
const refusal = (a: Answer) => [a.status, codeOf(a)]

/** The HTTP status an upgrade was answered with (101: accepted) and the refusal's code. */
function upgrade(d: TestDaemon, urlPath: string, headers: Record<string, string>): Promise<[number, string | null]> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${d.port}${urlPath}`, {headers})
    ws.once('open', () => { ws.close(); resolve([101, null]) })
    ws.once('unexpected-response', (_req, res) => {
      let text = ''
      res.on('data', (c) => (text += c))
      res.on('end', () => resolve([res.statusCode!, (JSON.parse(text) as {error: {code: string}}).error.code]))
    })
    ws.once('error', () => resolve([-1, null]))
  })
}

// Run as uid 65534, from node's own modules only (the checkout may not be readable by that user): the login link,
// the servers list and the events WebSocket, each with what a thief would have.
const STRANGER_REQUESTS = `
const http = require('http')
const [port, login, cookie, servers, events] = process.argv.slice(1)
const host = '127.0.0.1:' + port
const ask = (what, path, headers) => new Promise((resolve) => {
  const req = http.request({host: '127.0.0.1', port: +port, path, headers: {host, ...headers}, agent: false}, (res) => {
    let text = ''
    res.on('data', (c) => (text += c))
    res.on('end', () => { let code = null; try { code = JSON.parse(text).error.code } catch {} resolve({what, status: res.statusCode, code}) })
  })
  req.on('upgrade', (res, socket) => { socket.destroy(); resolve({what, status: 101, code: null}) })
  req.on('error', (e) => resolve({what, status: -1, code: e.message}))
  req.end()
})
;(async () => {
  const out = [await ask('login', login, {accept: 'application/json'}), await ask('servers', servers, {cookie, origin: 'http://' + host})]
  out.push(await ask('events', events, {cookie, origin: 'http://' + host, connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ=='}))
  console.log(JSON.stringify(out))
})()
`

/** Runs `src` with node as uid/gid 65534 and parses the JSON line it prints. */
function asStranger(src: string, args: string[]): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', src, ...args], {uid: 65534, gid: 65534, cwd: os.tmpdir(), stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    let err = ''
    child.stdout.on('data', (c) => (out += c))
    child.stderr.on('data', (c) => (err += c))
    child.on('error', reject)
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`the stranger exited ${code}: ${err}`))))
  })
}

describe('dashboard security', () => {
  let d: TestDaemon
  let own: string
  let host: string
  let cookie: string

  /** A login through a fresh link: the session cookie as the browser would send it back. */
  async function login(): Promise<string> {
    const {url} = await d.client.dashboardLogin()
    const answer = await request(d, 'GET', new URL(url).pathname + new URL(url).search, {host})
    expect(answer.status).to.equal(303)
    expect(answer.headers.location).to.equal(DashboardRoutes.page.path)
    const set = answer.headers['set-cookie']![0]
    expect(set).to.match(new RegExp(`^styxy_dashboard_${d.port}=[\\w-]{43}; HttpOnly; SameSite=Strict; Path=/dashboard$`))
    return set.split(';')[0]
  }

  before(async () => {
    d = await startDaemon()
    host = `127.0.0.1:${d.port}`
    own = `http://${host}`
    cookie = await login()
  })
  after(async () => {
    await d.stop()
    removeHome(d.home)
  })

  it('with the cookie, from its own origin: the page, its API and its WebSocket answer (the control for every refusal below)', async () => {
    expect((await request(d, 'GET', DashboardRoutes.page.path, {host, cookie})).status).to.equal(200)
    expect((await request(d, 'GET', DashboardRoutes.servers.path, {host, cookie, origin: own, referer: `${own}/dashboard/`})).status).to.equal(200)
    expect((await request(d, 'GET', DashboardRoutes.servers.path, {host: `localhost:${d.port}`, cookie, origin: `http://localhost:${d.port}`})).status).to.equal(200)
    expect(await upgrade(d, DashboardRoutes.events.path, {host, cookie, origin: own})).to.deep.equal([101, null])
    const page = await request(d, 'GET', DashboardRoutes.page.path, {host, cookie})
    expect(page.headers['x-frame-options']).to.equal('DENY')
    expect(page.headers['content-security-policy']).to.contain("frame-ancestors 'none'")
    expect(page.headers['cache-control']).to.equal('no-store')
  })

  it('without the cookie (or with a made-up one): every endpoint and the WebSocket are refused with NO_SESSION', async () => {
    const cookies: Record<string, string>[] = [{}, {cookie: `styxy_dashboard_${d.port}=${'A'.repeat(43)}`}, {cookie: cookie.replace(`_${d.port}=`, `_${d.port + 1}=`)}]
    for (const c of cookies) {
      const h: Record<string, string> = {host, origin: own, ...c}
      expect(refusal(await request(d, 'GET', DashboardRoutes.page.path, h))).to.deep.equal([401, 'NO_SESSION'])
      expect(refusal(await request(d, 'GET', '/dashboard/app.js', h))).to.deep.equal([401, 'NO_SESSION'])
      expect(refusal(await request(d, 'GET', DashboardRoutes.servers.path, h))).to.deep.equal([401, 'NO_SESSION'])
      expect(refusal(await request(d, 'DELETE', '/dashboard/api/leases/l-3000-00000000', h))).to.deep.equal([401, 'NO_SESSION'])
      expect(refusal(await request(d, 'POST', DashboardRoutes.stop.path, {...h, 'content-type': 'application/json'}, '{"pid":1}'))).to.deep.equal([401, 'NO_SESSION'])
      expect(await upgrade(d, DashboardRoutes.events.path, h)).to.deep.equal([401, 'NO_SESSION'])
    }
    // A person opening the page without a session reads what to do.
    const page = await request(d, 'GET', DashboardRoutes.page.path, {host, accept: 'text/html'})
    expect(page.status).to.equal(401)
    expect(page.body).to.contain('styxy dashboard').and.contain('NO_SESSION')
  })

  it('with the cookie but another origin (Origin or Referer): refused with FORBIDDEN_ORIGIN, the WebSocket too', async () => {
    const foreign = ['http://evil.example', `http://127.0.0.1:${d.port + 1}`, `https://127.0.0.1:${d.port}`, `http://app.localhost:${d.port}`, 'null']
    for (const origin of foreign) {
      expect(refusal(await request(d, 'GET', DashboardRoutes.servers.path, {host, cookie, origin})), origin).to.deep.equal([403, 'FORBIDDEN_ORIGIN'])
      expect(refusal(await request(d, 'DELETE', '/dashboard/api/leases/l-3000-00000000', {host, cookie, origin})), origin).to.deep.equal([403, 'FORBIDDEN_ORIGIN'])
      expect(await upgrade(d, DashboardRoutes.events.path, {host, cookie, origin}), origin).to.deep.equal([403, 'FORBIDDEN_ORIGIN'])
    }
    for (const referer of ['http://evil.example/dashboard/', `http://127.0.0.1:${d.port + 1}/`, 'not a url']) {
      expect(refusal(await request(d, 'GET', DashboardRoutes.servers.path, {host, cookie, referer})), referer).to.deep.equal([403, 'FORBIDDEN_ORIGIN'])
    }
  })

  it('with the cookie through a *.localhost Host (the names proxy) or any other name: refused with FORBIDDEN_HOST', async () => {
    for (const name of [`something.localhost:${d.port}`, `app.localhost:${d.port}`, `evil.example:${d.port}`, '127.0.0.1', `127.0.0.1:${d.port + 1}`]) {
      const origin = `http://${name}`
      expect(refusal(await request(d, 'GET', DashboardRoutes.servers.path, {host: name, cookie, origin})), name).to.deep.equal([403, 'FORBIDDEN_HOST'])
      expect(refusal(await request(d, 'GET', DashboardRoutes.page.path, {host: name, cookie})), name).to.deep.equal([403, 'FORBIDDEN_HOST'])
      expect(await upgrade(d, DashboardRoutes.events.path, {host: name, cookie, origin}), name).to.deep.equal([403, 'FORBIDDEN_HOST'])
    }
    // Nor can a login link be redeemed through such a name.
    const {url} = await d.client.dashboardLogin()
    const through = await request(d, 'GET', new URL(url).pathname + new URL(url).search, {host: `something.localhost:${d.port}`})
    expect(refusal(through)).to.deep.equal([403, 'FORBIDDEN_HOST'])
  })

  it('a login code works once: reused, made up or malformed, it is refused with LOGIN_CODE_INVALID', async () => {
    const {url} = await d.client.dashboardLogin()
    const link = new URL(url).pathname + new URL(url).search
    expect((await request(d, 'GET', link, {host})).status).to.equal(303)
    const again = await request(d, 'GET', link, {host})
    expect(refusal(again)).to.deep.equal([401, 'LOGIN_CODE_INVALID'])
    expect(again.headers['set-cookie']).to.equal(undefined)
    for (const code of ['A'.repeat(43), 'short', '', '../../v1/status']) {
      expect(refusal(await request(d, 'GET', `${DashboardRoutes.login.path}?code=${encodeURIComponent(code)}`, {host})), code).to.deep.equal([401, 'LOGIN_CODE_INVALID'])
    }
    // Opened in a browser, the refusal is a page saying what to do.
    const page = await request(d, 'GET', link, {host, accept: 'text/html,application/xhtml+xml'})
    expect(page.headers['content-type']).to.contain('text/html')
    expect(page.body).to.contain('run `styxy dashboard` for a new one')
  })

  it('the cookie opens nothing under /v1: with it and no token, 401; with it and its own Origin, 403; the /v1 WebSocket too', async () => {
    for (const route of [Routes.allocations.path, Routes.status.path, '/dashboard/../v1/allocations']) {
      const answer = await request(d, 'GET', route, {host, cookie})
      if (route.startsWith('/dashboard')) expect(refusal(answer)).to.deep.equal([404, 'NOT_FOUND'])
      else expect(refusal(answer), route).to.deep.equal([401, 'UNAUTHORIZED'])
      if (!route.startsWith('/dashboard')) expect(refusal(await request(d, 'GET', route, {host, cookie, origin: own}))).to.deep.equal([403, 'FORBIDDEN_ORIGIN'])
    }
    expect(refusal(await request(d, 'POST', Routes.dashboardLogin.path, {host, cookie, origin: own}))).to.deep.equal([403, 'FORBIDDEN_ORIGIN'])
    expect(refusal(await request(d, 'POST', Routes.dashboardLogin.path, {host, cookie}))).to.deep.equal([401, 'UNAUTHORIZED'])
    expect(await upgrade(d, Routes.events.path, {host, cookie, origin: own})).to.deep.equal([403, 'FORBIDDEN_ORIGIN'])
    expect(await upgrade(d, Routes.events.path, {host, cookie})).to.deep.equal([401, 'UNAUTHORIZED'])
    // A path that only starts like the dashboard's is the API's, with its rules.
    expect(refusal(await request(d, 'GET', '/dashboardx', {host, cookie}))).to.deep.equal([401, 'UNAUTHORIZED'])
  })

  it("answers no process of another user, even with a live login code or cookie: FORBIDDEN_PEER, and the code is not used up", async function () {
    // Running a process as another user needs root. What it could have stolen: a login code (in xdg-open's argv,
    // readable by every user) and a session cookie (not kept apart by port, on 127.0.0.1).
    if (process.getuid?.() !== 0) this.skip()
    const {url} = await d.client.dashboardLogin()
    const login = new URL(url).pathname + new URL(url).search
    const answers = await asStranger(STRANGER_REQUESTS, [String(d.port), login, cookie, DashboardRoutes.servers.path, DashboardRoutes.events.path])
    expect(answers).to.deep.equal([
      {what: 'login', status: 403, code: 'FORBIDDEN_PEER'},
      {what: 'servers', status: 403, code: 'FORBIDDEN_PEER'},
      {what: 'events', status: 403, code: 'FORBIDDEN_PEER'},
    ])
    // The same code, from us: it was not spent by the refusal. The cookie still works for us too.
    expect((await request(d, 'GET', login, {host})).status).to.equal(303)
    expect((await request(d, 'GET', DashboardRoutes.servers.path, {host, cookie, origin: own})).status).to.equal(200)
  })

  it('is not served on the Unix socket', async () => {
    expect(refusal(await request(d, 'GET', DashboardRoutes.servers.path, {cookie}, undefined, true))).to.deep.equal([404, 'NOT_FOUND'])
  })

  it('stops only a live lease holder of this user: any other pid is refused and left running', async () => {
    const stranger = spawnHolder()
    await new Promise((r) => stranger.once('spawn', r))
    try {
      for (const pid of [stranger.pid!, 1, process.pid, d.pid]) {
        const answer = await request(d, 'POST', DashboardRoutes.stop.path, {host, cookie, origin: own, 'content-type': 'application/json'}, JSON.stringify({pid}))
        expect(refusal(answer), String(pid)).to.deep.equal([422, 'NOT_A_HOLDER'])
      }
      expect(stranger.exitCode).to.equal(null)
      const bad = await request(d, 'POST', DashboardRoutes.stop.path, {host, cookie, origin: own, 'content-type': 'application/json'}, '{"pid":"1; rm"}')
      expect(refusal(bad)).to.deep.equal([422, 'VALIDATION_FAILED'])
    } finally {
      stranger.kill('SIGKILL')
    }
  })
})

describe('styxy dashboard while the TCP listener is off', () => {
  it('says so, with DASHBOARD_UNAVAILABLE and exit 1', async () => {
    const squatter = await listenOn('127.0.0.1', 0)
    const d = await startDaemon({port: portOf(squatter)})
    try {
      const plain = await runCli(['dashboard', '--no-open'], d.env)
      expect(plain.code).to.equal(1)
      expect(plain.stderr).to.contain(`127.0.0.1:${portOf(squatter)} is off`).and.contain('dashboard is served on the daemon\'s TCP listener')
      const json = await runCli(['dashboard', '--no-open', '--json'], d.env)
      expect(JSON.parse(json.stdout)).to.have.nested.property('error.code', 'DASHBOARD_UNAVAILABLE')
    } finally {
      await d.stop()
      removeHome(d.home)
      await closeServer(squatter)
    }
  })
})
