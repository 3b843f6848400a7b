// Connect-follow through the real library in real clients (python urllib and sockets, curl, node), against a
// follow table written as the daemon writes it (test/helpers/follow-table.ts): the interceptor's side of issue
// 19 on its own. The daemon's side (who is moved, the table's writer) is tested with the daemon.
import {expect} from 'chai'
import {execFile} from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import {projectOf} from '../../src/shared/project.js'
import {isolatedEnv, removeHome, tempHome} from '../helpers/daemon.js'
import {FollowTable} from '../helpers/follow-table.js'
import {closeServer, freePort, portOf} from '../helpers/processes.js'
import {LIB} from '../helpers/programs.js'

const FOLLOWED = /→ STYXY: localhost:(\d+) is this project's server, now on (\d+)/g

/** An HTTP server on every loopback address (dual-stack), answering `name` to everything. */
function serve(name: string): Promise<http.Server> {
  return new Promise((resolve) => {
    const server = http.createServer((_req, res) => res.end(name))
    server.listen({host: '::', port: 0}, () => resolve(server))
  })
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{code: number; stdout: string; stderr: string}> {
  return new Promise((resolve) => {
    execFile(cmd, args, {cwd, env, timeout: 30_000}, (error, stdout, stderr) => {
      resolve({code: error ? Number(error.code ?? 1) : 0, stdout, stderr})
    })
  })
}

const URLLIB = 'import sys, urllib.request\nfor _ in range(2): print(urllib.request.urlopen(sys.argv[1]).read().decode())'
const PEER = 'import socket, sys\ns = socket.create_connection((sys.argv[1], int(sys.argv[2])))\nprint(s.getpeername()[1])'
const NODE = `const http = require('http'); const net = require('net'); const port = Number(process.argv[1]);
const s = net.connect(port, '127.0.0.1', () => { console.log('peer ' + s.remotePort); s.destroy();
  http.get({host: 'localhost', port, agent: false}, (res) => { let b = ''; res.on('data', (c) => b += c); res.on('end', () => console.log('body ' + b)) }) })`

describe('interceptor: connect-follow in real clients', () => {
  let home: string
  let worktree: string
  let elsewhere: string
  let holder: http.Server
  let moved: http.Server
  let asked: number
  let table: FollowTable
  let env: NodeJS.ProcessEnv

  before(async () => {
    home = tempHome('styxy-follow-')
    // A worktree (its .git a file, as in a linked worktree) with the client deep inside it, and a directory
    // of no project.
    worktree = path.join(home, 'wt-b')
    fs.mkdirSync(path.join(worktree, 'web', 'src'), {recursive: true})
    fs.writeFileSync(path.join(worktree, '.git'), 'gitdir: /nowhere\n')
    elsewhere = path.join(home, 'elsewhere')
    fs.mkdirSync(elsewhere)
    holder = await serve('holder')
    moved = await serve('moved')
    asked = portOf(holder)
    env = {...isolatedEnv(home, await freePort()), LD_PRELOAD: LIB}
    // The rule is the shared one: src/shared/project.ts names the project the interceptor must find.
    expect(projectOf(path.join(worktree, 'web', 'src'), {})).to.equal(worktree)
    table = FollowTable.create(home, [{project: worktree, asked, port: portOf(moved)}])
  })

  after(async () => {
    table.close()
    await closeServer(holder)
    await closeServer(moved)
    removeHome(home)
  })

  it("python in the project reaches its server, says so once; outside it, or without the library, the port's holder", async () => {
    const url = `http://127.0.0.1:${asked}/`
    const inside = await run('python3', ['-c', URLLIB, url], path.join(worktree, 'web', 'src'), env)
    expect(inside.stdout, inside.stderr).to.equal('moved\nmoved\n')
    expect([...inside.stderr.matchAll(FOLLOWED)].map((m) => [Number(m[1]), Number(m[2])])).to.deep.equal([[asked, portOf(moved)]])
    const outside = await run('python3', ['-c', URLLIB, url], elsewhere, env)
    expect(outside.stdout, outside.stderr).to.equal('holder\nholder\n')
    expect(outside.stderr).to.not.match(FOLLOWED)
    const bare = await run('python3', ['-c', URLLIB, url], worktree, {...env, LD_PRELOAD: ''})
    expect(bare.stdout).to.equal('holder\nholder\n')
  })

  it('curl follows over IPv4, IPv6 and localhost; STYXY_NOTIFY=off keeps quiet; STYXY_DISABLE=1 turns it off', async () => {
    for (const host of ['127.0.0.1', '[::1]', 'localhost']) {
      const r = await run('curl', ['-sS', `http://${host}:${asked}/`], worktree, {...env, STYXY_NOTIFY: 'off'})
      expect(r.stdout, `${host}: ${r.stderr}`).to.equal('moved')
      expect(r.stderr).to.equal('')
    }
    const off = await run('curl', ['-sS', `http://127.0.0.1:${asked}/`], worktree, {...env, STYXY_DISABLE: '1'})
    expect(off.stdout).to.equal('holder')
  })

  it('STYXY_PROJECT names the project from anywhere; getpeername shows the asked port (python, node)', async () => {
    const forced = {...env, STYXY_PROJECT: worktree, STYXY_NOTIFY: 'off'}
    const py = await run('python3', ['-c', PEER, '127.0.0.1', String(asked)], elsewhere, forced)
    expect(py.stdout, py.stderr).to.equal(`${asked}\n`)
    const py6 = await run('python3', ['-c', PEER, '::1', String(asked)], elsewhere, forced)
    expect(py6.stdout, py6.stderr).to.equal(`${asked}\n`)
    const node = await run(process.execPath, ['-e', NODE, String(asked)], elsewhere, forced)
    expect(node.stdout, node.stderr).to.equal(`peer ${asked}\nbody moved\n`)
    // The same STYXY_PROJECT, relative: resolved against the working directory.
    const rel = await run('curl', ['-sS', `http://127.0.0.1:${asked}/`], home, {...forced, STYXY_PROJECT: 'wt-b/'})
    expect(rel.stdout).to.equal('moved')
  })

  it('a move of another project, or none left, is not followed', async () => {
    table.write([{project: elsewhere, asked, port: portOf(moved)}])
    const other = await run('curl', ['-sS', `http://127.0.0.1:${asked}/`], worktree, env)
    expect(other.stdout).to.equal('holder')
    const there = await run('curl', ['-sS', `http://127.0.0.1:${asked}/`], elsewhere, env)
    expect(there.stdout).to.equal('moved')
    table.write([])
    const none = await run('curl', ['-sS', `http://127.0.0.1:${asked}/`], elsewhere, env)
    expect(none.stdout).to.equal('holder')
    table.write([{project: worktree, asked, port: portOf(moved)}])
  })
})
