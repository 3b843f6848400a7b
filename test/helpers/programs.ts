import {spawn, type ChildProcess} from 'node:child_process'
import http from 'node:http'
import path from 'node:path'
import {stripVTControlCharacters} from 'node:util'
import {PROJECT_ROOT, preloadLibraryPath, supervisorPath} from '../../src/project.js'

export const LIB = preloadLibraryPath({})
export const BINDPROBE = path.join(PROJECT_ROOT, 'zig-out', 'bin', 'bindprobe')

export interface Program {
  child: ChildProcess
  stdout(): string
  stderr(): string
  /** Resolve with the first match of `re` in stdout+stderr, colours stripped (the program's own words are the readiness signal). */
  waitFor(re: RegExp): Promise<RegExpMatchArray>
  exited: Promise<{code: number | null; signal: NodeJS.Signals | null}>
  stop(): Promise<void>
}

/** `cwd`: where it runs (its project); `detached`: in a process group of its own, as a shell with job control starts it. */
export function startProgram(cmd: string, args: string[], env: NodeJS.ProcessEnv, opts: {preload?: boolean; cwd?: string; detached?: boolean} = {}): Program {
  const childEnv = {...env}
  if (opts.preload !== false) childEnv.LD_PRELOAD = LIB
  const child = spawn(cmd, args, {env: childEnv, cwd: opts.cwd, detached: opts.detached, stdio: ['pipe', 'pipe', 'pipe']})
  let out = ''
  let err = ''
  const waiters: {re: RegExp; resolve: (m: RegExpMatchArray) => void}[] = []
  const check = () => {
    for (const w of [...waiters]) {
      // Colours stripped: with CI set (as a CI runner sets it) Vite and others colour their output without a TTY,
      // and a bolded port in "Local: http://127.0.0.1:\x1b[1m5173" matched nothing.
      const m = stripVTControlCharacters(out + '\n' + err).match(w.re)
      if (m) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve(m)
      }
    }
  }
  child.stdout!.on('data', (c) => { out += c; check() })
  child.stderr!.on('data', (c) => { err += c; check() })
  // 'close', not 'exit': the exit can be reported before the last of its output has been read.
  const exited = new Promise<{code: number | null; signal: NodeJS.Signals | null}>((resolve) => child.once('close', (code, signal) => resolve({code, signal})))
  return {
    child, exited,
    stdout: () => out,
    stderr: () => err,
    waitFor(re) {
      return new Promise((resolve, reject) => {
        waiters.push({re, resolve})
        check()
        void exited.then(({code}) => setImmediate(() => {
          const i = waiters.findIndex((w) => w.re === re)
          if (i >= 0) reject(new Error(`${cmd} exited (${code}) before printing ${re}:\n${out}\n${err}`))
        }))
      })
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.stdin!.end()
        child.kill('SIGTERM')
      }
      // A group of its own may hold more (a shell's server): the rest goes too, or its pipes never close.
      if (opts.detached) {
        try {
          process.kill(-child.pid!, 'SIGTERM')
        } catch {
          // The group is gone.
        }
      }
      await exited
    },
  }
}

export function httpGet(port: number, host = '127.0.0.1'): Promise<{status: number; body: string}> {
  return new Promise((resolve, reject) => {
    http.get({host, port, path: '/', agent: false}, (res) => {
      let body = ''
      res.on('data', (c) => (body += c))
      res.on('end', () => resolve({status: res.statusCode!, body}))
    }).on('error', reject)
  })
}

export const NOTICE = /✓ STYXY: Port (\d+) was in use, auto-assigned port (\d+)/
/** The notice of a program the library moved by itself, the daemon being out of reach (interceptor/nearby.zig). */
export const NOTICE_ALONE = /✓ STYXY: Port (\d+) was in use, auto-assigned port (\d+) \(daemon not reachable: moved without it\)/
export const noticeCount = (text: string) => text.split('\n').filter((l) => NOTICE.test(l)).length

export const HTTPSTATIC = path.join(PROJECT_ROOT, 'zig-out', 'bin', 'httpstatic')
export const DENY_SECCOMP = path.join(PROJECT_ROOT, 'zig-out', 'bin', 'deny-seccomp')
export const SUPERVISOR = supervisorPath({})

/**
 * Builds test/fixtures/goserve into `outDir` with the machine's Go. The build cache lives in the project
 * (.tools/go-cache, ignored by git) so only the first run pays for compiling the standard library.
 */
export function buildGoServe(outDir: string): Promise<string> {
  const out = path.join(outDir, 'goserve')
  const env = {PATH: process.env.PATH, HOME: outDir, GOCACHE: path.join(PROJECT_ROOT, '.tools', 'go-cache'), GOENV: 'off', GOTELEMETRY: 'off', GOFLAGS: '', GO111MODULE: 'off', CGO_ENABLED: '0', GOTOOLCHAIN: 'local'}
  return new Promise((resolve, reject) => {
    const go = spawn('go', ['build', '-o', out, 'main.go'], {cwd: path.join(PROJECT_ROOT, 'test', 'fixtures', 'goserve'), env, stdio: ['ignore', 'ignore', 'pipe']})
    let err = ''
    go.stderr!.on('data', (c) => (err += c))
    go.once('error', reject)
    go.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`go build failed (${code}): ${err}`))))
  })
}

export interface Bound {
  family: string
  requested: number
  actual: number
  error: string
}

export function parseProbe(text: string): {bound: Bound[]; errnos: number[]} {
  const bound = [...text.matchAll(/^bound (\S+) (\d+) (\d+) (\S+)$/gm)].map((m) => ({family: m[1], requested: Number(m[2]), actual: Number(m[3]), error: m[4]}))
  const errnos = [...text.matchAll(/^errno-after-bind (\d+)$/gm)].map((m) => Number(m[1]))
  return {bound, errnos}
}

/** Run bindprobe to completion (without --hold) and parse what it says. */
export async function probe(args: string[], env: NodeJS.ProcessEnv, preload = true) {
  const started = Date.now()
  const p = startProgram(BINDPROBE, args, env, {preload})
  const {code} = await p.exited
  return {code, ms: Date.now() - started, ...parseProbe(p.stdout()), stderr: p.stderr()}
}
