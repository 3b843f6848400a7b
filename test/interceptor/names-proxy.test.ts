import {spawn} from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import type net from 'node:net'
import {expect} from 'chai'
import WebSocket from 'ws'
import {PROJECT_ROOT} from '../../src/project.js'
import {pollUntil} from '../../src/retry.js'
import type {Lease} from '../../src/protocol/types.js'
import {CLI, removeHome, runCli, startDaemon, type TestDaemon} from '../helpers/daemon.js'
import {closeServer, listenOn, portOf} from '../helpers/processes.js'
import {startProgram, type Program} from '../helpers/programs.js'
import {makeWorktree, type Worktree} from '../helpers/worktrees.js'

/**
 * Issue 20's proof for names and URLs, with real programs under the real library: a python http.server and a
 * Vite dev server, each moved off a held port, reached through the daemon's names proxy by NAME.localhost; Vite's
 * HMR update arriving through the proxied WebSocket; a restart on another port keeping name and URL; and what
 * the proxy refuses (foreign hosts, unknown and released names, the daemon's API).
 */

const VITE = path.join(PROJECT_ROOT, 'node_modules', 'vite', 'bin', 'vite.js')

interface Answer {status: number; body: string; headers: http.IncomingHttpHeaders}

/** A request to the proxy on loopback with the Host a browser would send for `host` (no resolver involved). */
function viaProxy(proxyPort: number, host: string, urlPath = '/', extra: http.OutgoingHttpHeaders = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.get({host: '127.0.0.1', port: proxyPort, path: urlPath, agent: false, timeout: 10_000, headers: {host, ...extra}}, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c) => (body += c))
      res.on('end', () => resolve({status: res.statusCode!, body, headers: res.headers}))
    })
    req.on('timeout', () => req.destroy(new Error(`no answer from the proxy for ${host}${urlPath}`)))
    req.on('error', reject)
  })
}

/** A WebSocket upgrade through the proxy that is refused: its status line. */
function refusedUpgrade(proxyPort: number, host: string, urlPath: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${proxyPort}${urlPath}`, {headers: {host}})
    ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode!); ws.terminate() })
    ws.on('open', () => { ws.close(); reject(new Error(`${host}${urlPath} was upgraded`)) })
    ws.on('error', () => {})
  })
}

describe('names and URLs: the names proxy reaches moved servers by NAME.localhost (real programs)', function () {
  this.timeout(120_000)
  let d: TestDaemon
  let proxyPort: number
  let held: net.Server
  let heldPort: number
  let a: Worktree
  let b: Worktree
  const programs: Program[] = []
  const leaseOf = async (pid: number): Promise<Lease> => {
    const l = (await d.client.leases()).find((x) => x.pid === pid)
    if (!l) throw new Error(`no lease of pid ${pid}`)
    return l
  }
  let python: {program: Program; port: number}

  async function startPython(cwd: string): Promise<{program: Program; port: number}> {
    const program = startProgram('python3', ['-u', '-m', 'http.server', String(heldPort), '--bind', '127.0.0.1', '--directory', cwd], d.env, {cwd})
    programs.push(program)
    const m = await program.waitFor(/Serving HTTP on \S+ port (\d+)/)
    return {program, port: Number(m[1])}
  }

  before(async () => {
    d = await startDaemon({env: {STYXY_LISTEN_GRACE_MS: '600000'}})
    const health = await d.client.health()
    expect(health.proxyPort, 'the proxy listens').to.be.a('number')
    proxyPort = health.proxyPort!
    held = await listenOn('127.0.0.1')
    heldPort = portOf(held)
    a = makeWorktree('names-a')
    b = makeWorktree('names-b')
    fs.writeFileSync(path.join(a.dir, 'whoami'), 'python of worktree A')
    python = await startPython(a.dir)
  })
  after(async () => {
    for (const p of programs) await p.stop()
    await closeServer(held)
    await d.stop()
    removeHome(d.home)
    for (const t of [a, b]) removeHome(t.dir)
  })

  it('status shows the proxy: its own loopback port, listening', async () => {
    const status = await d.client.status()
    expect(status.proxy).to.include({host: '127.0.0.1', port: proxyPort, listening: true, error: null})
    expect(proxyPort).to.not.equal(d.port)
  })

  it('a python http.server moved off a held port is named after its worktree and reached at its URL', async () => {
    expect(python.port).to.not.equal(heldPort)
    const lease = await leaseOf(python.program.child.pid!)
    expect(lease.service).to.equal('dev') // python -m http.server is inferred a dev server
    expect(lease.name).to.equal(path.basename(a.dir).toLowerCase())
    expect(lease.url).to.equal(`http://${lease.name}.localhost:${proxyPort}/`)
    const r = await viaProxy(proxyPort, `${lease.name}.localhost:${proxyPort}`, '/whoami')
    expect(r).to.include({status: 200, body: 'python of worktree A'})
    const url = await runCli(['url', lease.name!], d.env)
    expect(url).to.include({code: 0, stdout: `${lease.url}\n`})
    const list = await runCli(['list'], d.env)
    expect(list.stdout).to.match(/URL/).and.to.contain(lease.url!)
    // No display to open it on: open prints the URL and says why it did not open it.
    const open = await runCli(['open', lease.name!, '--json'], {...d.env, DISPLAY: '', WAYLAND_DISPLAY: ''})
    expect(open.code).to.equal(0)
    expect(JSON.parse(open.stdout)).to.deep.include({url: lease.url, opened: false, reason: 'no display (neither DISPLAY nor WAYLAND_DISPLAY is set)'})
    expect((await runCli(['open', 'no-such-server'], d.env)).code).to.equal(1)
  })

  it('styxy url for an unknown name exits 1 naming the names there are', async () => {
    const r = await runCli(['url', 'no-such-server', '--json'], d.env)
    expect(r.code).to.equal(1)
    expect(JSON.parse(r.stdout).error).to.include({code: 'NOT_FOUND'})
    expect(JSON.parse(r.stdout).error.message).to.contain(path.basename(a.dir).toLowerCase())
  })

  describe('Vite, named by styxy run --name', () => {
    let vite: Program
    let vitePort: number
    const host = () => `web.localhost:${proxyPort}`

    before(async () => {
      fs.writeFileSync(path.join(b.dir, 'index.html'), '<h1>vite of worktree B</h1><script type="module" src="/main.js"></script>\n')
      fs.writeFileSync(path.join(b.dir, 'main.js'), "import {word} from './dep.js'\ndocument.body.append(word)\n")
      fs.writeFileSync(path.join(b.dir, 'dep.js'), "export const word = 'one'\nif (import.meta.hot) import.meta.hot.accept()\n")
      // The real CLI: run --name puts STYXY_NAME in the command's environment, the library sends it with the bind.
      vite = startProgram(process.execPath, [CLI, 'run', '--name', 'web', '--', process.execPath, VITE, '--port', String(heldPort), '--host', '127.0.0.1', '--strictPort', '--clearScreen', 'false'], d.env, {cwd: b.dir, preload: false})
      programs.push(vite)
      vitePort = Number((await vite.waitFor(/Local:\s+\S*http:\/\/127\.0\.0\.1:(\d+)/))[1])
    })

    it('is moved off the held port, named web, and its page is served through the proxy', async () => {
      expect(vitePort).to.not.equal(heldPort)
      const lease = (await d.client.leases()).find((l) => l.port === vitePort)!
      expect(lease).to.include({name: 'web', url: `http://web.localhost:${proxyPort}/`})
      const page = await viaProxy(proxyPort, host())
      expect(page.status).to.equal(200)
      expect(page.body).to.contain('vite of worktree B').and.to.contain('/@vite/client')
    })

    it('a page loaded through the proxy gets its HMR update over the proxied WebSocket after a save', async () => {
      // As the browser does: the client script tells the socket's path and token (vite's clientInjections
      // replace __HMR_BASE__, __HMR_PORT__ and __WS_TOKEN__; with no hmr.port the socket goes to the page's host).
      const client = await viaProxy(proxyPort, host(), '/@vite/client')
      expect(client.status).to.equal(200)
      const token = /const wsToken = "([^"]+)"/.exec(client.body)?.[1]
      const hmrPort = /const hmrPort = ([^;]+);/.exec(client.body)?.[1]
      const base = /importMetaUrl\.port\}\$\{"([^"]*)"\}/.exec(client.body)?.[1]
      expect(token, 'the client script names its token').to.be.a('string')
      expect(hmrPort, 'no separate HMR port: the socket is on the page\'s host').to.equal('null')
      expect(base).to.equal('/')
      // The modules the page imports, fetched through the proxy as the browser would: they are in Vite's graph now.
      for (const m of ['/main.js', '/dep.js']) expect((await viaProxy(proxyPort, host(), m)).status).to.equal(200)
      const ws = new WebSocket(`ws://127.0.0.1:${proxyPort}${base}?token=${token}`, 'vite-hmr', {headers: {host: host()}, origin: `http://${host()}`})
      const messages: {type: string; updates?: {path: string}[]}[] = []
      const waitFor = (pred: (m: {type: string; updates?: {path: string}[]}) => boolean) => new Promise<void>((resolve, reject) => {
        const check = () => { if (messages.some(pred)) resolve() }
        ws.on('message', (data) => { messages.push(JSON.parse(String(data))); check() })
        ws.on('close', () => reject(new Error(`HMR socket closed; got ${JSON.stringify(messages)}`)))
        ws.on('error', reject)
        check()
      })
      const connected = waitFor((m) => m.type === 'connected')
      await connected
      const updated = waitFor((m) => m.type === 'update' && (m.updates ?? []).some((u) => u.path === '/dep.js'))
      fs.writeFileSync(path.join(b.dir, 'dep.js'), "export const word = 'two'\nif (import.meta.hot) import.meta.hot.accept()\n")
      await updated
      ws.close()
      const dep = await viaProxy(proxyPort, host(), '/dep.js')
      expect(dep.body).to.contain("'two'")
    })
  })

  it('after a restart on another port, the same name and URL reach the server', async () => {
    const before = await leaseOf(python.program.child.pid!)
    await python.program.stop()
    // Its last port taken meanwhile: the restart is moved elsewhere, and the URL follows it.
    const blocker = await listenOn('127.0.0.1', python.port)
    try {
      python = await startPython(a.dir)
      expect(python.port).to.not.equal(before.port)
      const after = await leaseOf(python.program.child.pid!)
      expect(after).to.include({name: before.name, url: before.url})
      const r = await viaProxy(proxyPort, `${after.name}.localhost:${proxyPort}`, '/whoami')
      expect(r).to.include({status: 200, body: 'python of worktree A'})
    } finally {
      await closeServer(blocker)
    }
  })

  it('streams both ways: each chunk of a request body is echoed back through the proxy before the request ends', async () => {
    // The echo server answers every chunk as it comes and ends only when the request does. The client sends its
    // next chunk only once the echo of the last one is back, so a proxy that buffered either body (the request's
    // until it ended, or the response's) would leave both sides waiting, and the test would time out.
    const src = "const s=require('http').createServer((q,r)=>{r.writeHead(200,{'content-type':'text/plain'});r.flushHeaders();q.on('data',(c)=>r.write('echo:'+c+'\\n'));q.on('end',()=>r.end('end\\n'))});" +
      "s.listen(+process.argv[1],'127.0.0.1',()=>console.log('listening '+s.address().port))"
    const echo = startProgram(process.execPath, ['-e', src, String(heldPort)], {...d.env, STYXY_NAME: 'echo'}, {cwd: a.dir})
    programs.push(echo)
    await echo.waitFor(/listening (\d+)/)
    const chunks = ['one', 'two', 'three']
    const got = await new Promise<string[]>((resolve, reject) => {
      const req = http.request({host: '127.0.0.1', port: proxyPort, method: 'POST', path: '/', agent: false, timeout: 10_000, headers: {host: `echo.localhost:${proxyPort}`}})
      const lines: string[] = []
      let sent = 0
      req.on('response', (res) => {
        let buf = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => {
          buf += c
          for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
            lines.push(buf.slice(0, i))
            buf = buf.slice(i + 1)
            if (sent < chunks.length) req.write(chunks[sent++])
            else if (sent === chunks.length) { sent++; req.end() }
          }
        })
        res.on('end', () => resolve(lines))
      })
      req.on('timeout', () => req.destroy(new Error(`stalled after ${JSON.stringify(lines)}: a body was buffered`)))
      req.on('error', reject)
      req.write(chunks[sent++])
    })
    expect(got).to.deep.equal(['echo:one', 'echo:two', 'echo:three', 'end'])
  })

  describe('what the proxy refuses', () => {
    let spy: Program
    let spyPort: number
    // The spy prints each connection in order: the last test's count (its first, proxied, and one direct) also
    // proves that none of the refused requests in between reached it.
    const connections = () => (spy.stdout().match(/connection \d+/g) ?? []).length

    before(async () => {
      // A server that counts its connections: what reaches it is what the proxy forwarded.
      const src = "const s=require('http').createServer((q,r)=>r.end('spy '+(q.headers['x-forwarded-for']||'-')+' '+(q.headers['x-forwarded-host']||'-')+' '+q.headers.host));let n=0;s.on('connection',()=>console.log('connection '+(++n)));" +
        "s.listen(+process.argv[1],'127.0.0.1',()=>console.log('listening '+s.address().port))"
      spy = startProgram(process.execPath, ['-e', src, String(heldPort)], {...d.env, STYXY_NAME: 'spy'}, {cwd: a.dir})
      programs.push(spy)
      spyPort = Number((await spy.waitFor(/listening (\d+)/))[1])
      // Forwarding headers the client made up itself are not passed on as if the proxy had said them.
      const r = await viaProxy(proxyPort, `spy.localhost:${proxyPort}`, '/', {'x-forwarded-for': '203.0.113.9', 'x-forwarded-host': 'admin.example'})
      // The real client in X-Forwarded-For, the name it asked by kept in Host and X-Forwarded-Host.
      expect(r).to.include({status: 200, body: `spy 127.0.0.1 spy.localhost:${proxyPort} spy.localhost:${proxyPort}`})
      await spy.waitFor(/connection 1/)
    })

    it('a Host that is not under .localhost gets a clear 421, and nothing is forwarded', async () => {
      for (const h of ['example.com', `127.0.0.1:${proxyPort}`, 'spy.localhost.evil.com', `spy.example:${proxyPort}`]) {
        const r = await viaProxy(proxyPort, h)
        expect(r.status, h).to.equal(421)
        expect(r.body).to.contain('NAME.localhost')
      }
      expect(await refusedUpgrade(proxyPort, 'example.com', '/')).to.equal(421)
      expect(connections()).to.equal(1)
    })

    it('an unknown name is a 404 page naming the servers there are, and nothing is forwarded', async () => {
      const r = await viaProxy(proxyPort, `nobody.localhost:${proxyPort}`)
      expect(r.status).to.equal(404)
      expect(r.body).to.contain('nobody').and.to.contain('spy').and.to.contain(path.basename(a.dir).toLowerCase())
      expect(connections()).to.equal(1)
    })

    it('the daemon API is not reachable through the proxy port, by HTTP or WebSocket', async () => {
      // web.localhost is Vite's: the path goes to it, never to the daemon.
      for (const h of [`localhost:${proxyPort}`, `127.0.0.1:${proxyPort}`, `web.localhost:${proxyPort}`]) {
        const r = await viaProxy(proxyPort, h, '/v1/health', {authorization: `Bearer ${fs.readFileSync(path.join(d.home, 'token'), 'utf8').trim()}`})
        expect(r.body, h).to.not.contain('schemaVersion')
      }
      expect(await refusedUpgrade(proxyPort, `localhost:${proxyPort}`, '/v1/events')).to.equal(404)
    })

    it("a name whose port another user's process listens on gets a 502, and that process receives nothing, even beside ours on 127.0.0.2", async function () {
      // Running a process as another user needs root.
      if (process.getuid?.() !== 0) this.skip()
      const lease = await d.client.allocate({service: 'dev', name: 'leased', pid: process.pid})
      const stranger = spawn('python3', ['-u', '-m', 'http.server', String(lease.port), '--bind', '127.0.0.1'], {uid: 65534, gid: 65534, cwd: os.tmpdir(), stdio: ['ignore', 'pipe', 'pipe']})
      let said = ''
      stranger.stdout!.on('data', (c) => (said += c))
      stranger.stderr!.on('data', (c) => (said += c))
      try {
        await pollUntil(() => (/Serving HTTP/.test(said) ? true : undefined), {timeoutMs: 10_000, firstMs: 10, maxMs: 100, timeoutError: () => new Error(`the stranger did not start: ${said}`)})
        const r = await viaProxy(proxyPort, `leased.localhost:${proxyPort}`)
        expect(r.status).to.equal(502)
        expect(r.body).to.contain('nothing of yours listens')
        expect(await refusedUpgrade(proxyPort, `leased.localhost:${proxyPort}`, '/')).to.equal(502)
        // Ours on 127.0.0.2, the same port: the proxy goes to our address, not to the stranger's on 127.0.0.1.
        const ours = http.createServer((_q, res) => res.end('ours'))
        await new Promise<void>((resolve) => ours.listen(lease.port, '127.0.0.2', resolve))
        try {
          expect(await viaProxy(proxyPort, `leased.localhost:${proxyPort}`)).to.include({status: 200, body: 'ours'})
        } finally {
          await closeServer(ours)
        }
        // It answers when asked directly: only the proxy kept away from it.
        expect((await viaProxy(lease.port, `127.0.0.1:${lease.port}`)).status).to.equal(200)
        await pollUntil(() => (/"GET \/ /.test(said) ? true : undefined), {timeoutMs: 5000, firstMs: 10, maxMs: 100, timeoutError: () => new Error(said)})
        expect(said.match(/"GET /g)).to.have.length(1)
      } finally {
        stranger.kill()
        await d.client.release(lease.id)
      }
    })

    it('a released lease\'s name no longer forwards: its former target receives no connection', async () => {
      const lease = (await d.client.leases()).find((l) => l.port === spyPort)!
      expect(lease.name).to.equal('spy')
      await d.client.release(lease.id)
      // The process still listens on the port: only the lease is gone, and with it the name.
      const r = await viaProxy(proxyPort, `spy.localhost:${proxyPort}`)
      expect(r.status).to.equal(404)
      expect(await refusedUpgrade(proxyPort, `spy.localhost:${proxyPort}`, '/')).to.equal(404)
      // Proof that the spy still answers directly, and that the proxy's requests never reached it.
      const direct = await viaProxy(spyPort, `127.0.0.1:${spyPort}`)
      expect(direct.body).to.equal(`spy - - 127.0.0.1:${spyPort}`)
      await spy.waitFor(/connection 2/)
      expect(connections()).to.equal(2)
    })
  })
})
