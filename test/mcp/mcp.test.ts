import {expect} from 'chai'
import {Client} from '@modelcontextprotocol/sdk/client/index.js'
import {StdioClientTransport} from '@modelcontextprotocol/sdk/client/stdio.js'
import {startDaemon, removeHome, CLI, type TestDaemon} from '../helpers/daemon.js'
import {closeServer, freePort, listenOn, portOf} from '../helpers/processes.js'
import {httpGet, NOTICE, startProgram, type Program} from '../helpers/programs.js'
import {makeWorktree} from '../helpers/projects.js'

// `styxy mcp` driven by the SDK's own client over stdio, against a real daemon and real servers. The servers run
// with their working directory at their worktree's top: the project the daemon records for a bind is then the
// same whether it stores the bind's raw cwd (as it does until issue 19's daemon change) or its worktree.

type Result = {isError?: boolean; structuredContent?: Record<string, any>; content: {type: string; text?: string}[]}

async function connect(d: TestDaemon, cwd: string): Promise<Client> {
  const transport = new StdioClientTransport({command: process.execPath, args: [CLI, 'mcp'], cwd, env: d.env as Record<string, string>, stderr: 'pipe'})
  const client = new Client({name: 'styxy-test', version: '0.0.0'})
  await client.connect(transport)
  return client
}

async function call(c: Client, name: string, args: Record<string, unknown> = {}): Promise<Result> {
  return (await c.callTool({name, arguments: args})) as Result
}

/** A python http.server under the LD_PRELOAD library, in `cwd`, asking for `port`; resolves once it serves, with the port it got. */
async function pythonServer(d: TestDaemon, cwd: string, port: number, programs: Program[]): Promise<{py: Program; port: number}> {
  const py = startProgram('python3', ['-u', '-m', 'http.server', String(port), '--bind', '127.0.0.1'], d.env, {cwd, detached: true})
  programs.push(py)
  const [, got] = await py.waitFor(/Serving HTTP on \S+ port (\d+)/)
  return {py, port: Number(got)}
}

describe('styxy mcp over stdio (the SDK client against a real daemon)', () => {
  let d: TestDaemon
  let a: string
  let b: string
  let inA: Client
  let inB: Client
  const programs: Program[] = []
  before(async () => {
    d = await startDaemon()
    a = makeWorktree('styxy-wt-a-')
    b = makeWorktree('styxy-wt-b-')
    ;[inA, inB] = await Promise.all([connect(d, a), connect(d, b)])
  })
  afterEach(async () => { await Promise.all(programs.splice(0).map((p) => p.stop())) })
  after(async () => {
    await Promise.all([inA?.close(), inB?.close()])
    await d.stop()
    for (const dir of [d.home, a, b]) removeHome(dir)
  })

  it('tools/list has every tool, each with a description and a JSON schema of its arguments', async () => {
    const {tools} = await inA.listTools()
    const byName = new Map(tools.map((t) => [t.name, t]))
    expect([...byName.keys()].sort()).to.deep.equal(['allocate_port', 'list_servers', 'port_of', 'recent_moves', 'release_port', 'stop_server', 'wait_for_server'])
    for (const t of tools) {
      expect(t.description, t.name).to.be.a('string').with.length.above(40)
      expect(t.inputSchema.type, t.name).to.equal('object')
      // Unknown arguments are refused, not ignored.
      expect((t.inputSchema as {additionalProperties?: boolean}).additionalProperties, t.name).to.equal(false)
    }
    const props = (n: string) => Object.keys(byName.get(n)!.inputSchema.properties ?? {}).sort()
    expect(props('list_servers')).to.deep.equal(['all'])
    expect(props('port_of')).to.deep.equal(['name', 'port', 'service'])
    expect(props('wait_for_server')).to.deep.equal(['name', 'port', 'timeoutSeconds'])
    expect(props('allocate_port')).to.deep.equal(['name', 'port', 'service'])
    expect(props('release_port')).to.deep.equal(['leaseId', 'port'])
    expect(props('recent_moves')).to.deep.equal(['all', 'limit', 'since'])
    expect(props('stop_server')).to.deep.equal(['graceSeconds', 'name', 'port'])
    expect(byName.get('port_of')!.inputSchema.properties!.port).to.include({type: 'integer', minimum: 1, maximum: 65535})
  })

  it('port_of finds a moved python http.server by the port it asked for, and recent_moves shows the move', async () => {
    const held = await listenOn('127.0.0.1', (await d.client.suggest('hub', 1)).ports[0])
    const asked = portOf(held)
    try {
      const py = startProgram('python3', ['-u', '-m', 'http.server', String(asked), '--bind', '127.0.0.1'], d.env, {cwd: a, detached: true})
      programs.push(py)
      const [, from, to] = await py.waitFor(NOTICE)
      expect(Number(from)).to.equal(asked)
      const moved = Number(to)
      expect(moved).to.not.equal(asked)
      await py.waitFor(/Serving HTTP/)
      const r = await call(inA, 'port_of', {port: asked})
      expect(r.isError, r.content[0]?.text).to.not.equal(true)
      expect(r.structuredContent).to.include({port: moved, askedPort: asked, moved: true, address: `http://localhost:${moved}/`})
      expect(r.structuredContent!.server).to.include({pid: py.child.pid, project: a})
      expect((await httpGet(r.structuredContent!.port)).status).to.equal(200)
      const moves = await call(inA, 'recent_moves')
      expect(moves.structuredContent!.moves.at(-1)).to.include({from: asked, to: moved, pid: py.child.pid})
      // B has no such server: a clear tool error, not a guess.
      const none = await call(inB, 'port_of', {port: asked})
      expect(none.isError).to.equal(true)
      expect(none.structuredContent!.error.code).to.equal('NOT_FOUND')
      expect((await call(inB, 'recent_moves')).structuredContent!.moves).to.deep.equal([])
    } finally {
      await closeServer(held)
    }
  })

  it('wait_for_server returns once a server starts, and times out cleanly when none does', async () => {
    const port = (await d.client.suggest('test', 1)).ports[0]
    const before = (await d.client.status()).eventSubscribers
    const waiting = call(inA, 'wait_for_server', {port, timeoutSeconds: 30})
    // The server starts only once the tool is subscribed to the daemon's events, so the wait is a real one.
    while ((await d.client.status()).eventSubscribers === before) await new Promise((r) => setTimeout(r, 10))
    const {py, port: got} = await pythonServer(d, a, port, programs)
    const r = await waiting
    expect(r.isError, r.content[0]?.text).to.not.equal(true)
    expect(r.structuredContent).to.include({port: got, askedPort: port})
    expect(r.structuredContent!.server.pid).to.equal(py.child.pid)

    const nobody = await freePort()
    const started = Date.now()
    const t = await call(inA, 'wait_for_server', {port: nobody, timeoutSeconds: 0.5})
    expect(Date.now() - started).to.be.within(450, 5000)
    expect(t.isError).to.equal(true)
    expect(t.structuredContent!.error.code).to.equal('TIMEOUT')
    expect((await d.client.status()).eventSubscribers).to.equal(before) // its subscription is closed
  })

  it('list_servers in worktree B does not show worktree A\'s servers; all: true shows both', async () => {
    const [sa, sb] = await Promise.all([pythonServer(d, a, await freePort(), programs), pythonServer(d, b, await freePort(), programs)])
    const inBList = await call(inB, 'list_servers')
    expect(inBList.structuredContent!.project).to.equal(b)
    const pids = (r: Result) => (r.structuredContent!.servers as {pid: number}[]).map((s) => s.pid)
    expect(pids(inBList)).to.include(sb.py.child.pid).and.not.include(sa.py.child.pid)
    expect(pids(await call(inA, 'list_servers'))).to.include(sa.py.child.pid).and.not.include(sb.py.child.pid)
    const all = await call(inB, 'list_servers', {all: true})
    expect(pids(all)).to.include.members([sa.py.child.pid, sb.py.child.pid])
    const row = (all.structuredContent!.servers as Record<string, unknown>[]).find((s) => s.pid === sb.py.child.pid)
    expect(row).to.include({port: sb.port, askedPort: sb.port, project: b})
    // Named after its worktree, reached through the names proxy wherever it moves.
    expect(row!.url).to.match(/^http:\/\/[a-z0-9-]+\.localhost:\d+\/$/)
    expect(row).to.have.keys('name', 'url', 'port', 'askedPort', 'moved', 'address', 'service', 'project', 'command', 'pid', 'since', 'kind', 'leaseId')
    expect(row!.command).to.contain('http.server')
  })

  it("stop_server refuses another project's server, and stops this project's (its process group, SIGTERM)", async () => {
    const {py, port} = await pythonServer(d, a, await freePort(), programs)
    const refused = await call(inB, 'stop_server', {port})
    expect(refused.isError).to.equal(true)
    expect(refused.structuredContent!.error.code).to.equal('NOT_THIS_PROJECT')
    expect(py.child.exitCode).to.equal(null)
    expect((await httpGet(port)).status).to.equal(200)
    const stopped = await call(inA, 'stop_server', {port})
    expect(stopped.isError, stopped.content[0]?.text).to.not.equal(true)
    expect(stopped.structuredContent).to.include({pgid: py.child.pid, signal: 'SIGTERM'})
    expect(await py.exited).to.deep.equal({code: null, signal: 'SIGTERM'})
  })

  it('allocate_port and release_port; errors carry the daemon\'s codes', async () => {
    const first = await call(inA, 'allocate_port', {service: 'docs', name: 'site'})
    expect(first.isError, first.content[0]?.text).to.not.equal(true)
    const again = await call(inA, 'allocate_port', {service: 'docs', name: 'site'})
    expect(again.structuredContent).to.include({port: first.structuredContent!.port, leaseId: first.structuredContent!.leaseId, existing: true})
    const found = await call(inA, 'port_of', {name: 'site'})
    expect(found.structuredContent!.port).to.equal(first.structuredContent!.port)
    const unknown = await call(inA, 'allocate_port', {service: 'nosuchtype'})
    expect(unknown.isError).to.equal(true)
    expect(unknown.structuredContent!.error.code).to.equal('UNKNOWN_SERVICE')
    const bad = await call(inA, 'port_of', {port: 8000, colour: 'red'})
    expect(bad.isError).to.equal(true)
    expect(bad.content[0].text).to.match(/colour/)
    const notOurs = await call(inB, 'release_port', {port: first.structuredContent!.port})
    expect(notOurs.structuredContent!.error.code).to.equal('NOT_THIS_PROJECT')
    const released = await call(inA, 'release_port', {port: first.structuredContent!.port})
    expect(released.structuredContent!.released).to.include({port: first.structuredContent!.port, name: 'site'})
    expect((await call(inA, 'release_port', {port: first.structuredContent!.port})).structuredContent!.error.code).to.equal('NOT_FOUND')
  })
})
