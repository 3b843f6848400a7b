import {spawnSync} from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import {tempHome} from './daemon.js'
import {startProgram, type Program} from './programs.js'

/** A git worktree of one small app (`git init`): a backend directory serving a marker that names the worktree. */
export interface Worktree {
  name: string
  dir: string
  backend: string
  marker: string
}

export function makeWorktree(name: string): Worktree {
  const dir = fs.realpathSync(tempHome(`styxy-worktree-${name}-`))
  const git = spawnSync('git', ['init', '-q', dir], {encoding: 'utf8'})
  if (git.status !== 0) throw new Error(`git init ${dir}: ${git.stderr}`)
  const backend = path.join(dir, 'backend')
  fs.mkdirSync(path.join(backend, 'src'), {recursive: true})
  const marker = `backend of worktree ${name}`
  fs.writeFileSync(path.join(backend, 'whoami'), marker)
  return {name, dir, backend, marker}
}

export interface Backend {
  program: Program
  /** The port it listens on, as it says itself (getsockname after a move). */
  port: number
}

/** `python3 -m http.server PORT` in the worktree's backend (from `cwd`, default the backend), under the library. */
export async function startBackend(tree: Worktree, port: number, env: NodeJS.ProcessEnv, cwd = tree.backend): Promise<Backend> {
  const program = startProgram('python3', ['-u', '-m', 'http.server', String(port), '--bind', '127.0.0.1', '--directory', tree.backend], env, {cwd})
  const m = await program.waitFor(/Serving HTTP on \S+ port (\d+)/)
  return {program, port: Number(m[1])}
}

/** GET http://host:port/path, the body (or `HTTP <status>`); null when nothing answers. */
export function fetchText(port: number, urlPath: string, host = '127.0.0.1'): Promise<string | null> {
  return new Promise((resolve) => {
    const req = http.get({host, port, path: urlPath, agent: false, timeout: 5000}, (res) => {
      let body = ''
      res.on('data', (c) => (body += c))
      res.on('end', () => resolve(res.statusCode === 200 ? body : `HTTP ${res.statusCode}`))
      res.on('error', () => resolve(null))
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(null))
  })
}
