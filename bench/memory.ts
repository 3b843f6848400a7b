// Where an idle daemon's memory goes: bare Node, Node with the daemon's modules loaded and nothing started
// (bench/modules-only.ts), a bare node:http server, and the daemons, all with the daemon's Node flags and
// measured at the same moment (VmRSS, and its anonymous and file-backed parts, from /proc/<pid>/status).
import {spawn, type ChildProcess} from 'node:child_process'
import path from 'node:path'
import {PROJECT_ROOT} from '../src/project.js'
import {DAEMON_NODE_FLAGS} from '../src/client/ensure-daemon.js'
import {f, memory, row, track} from './lib.js'

export interface IdleNode {
  child: ChildProcess
  pid: number
}

/** A Node process that does nothing once it has said `ready`: bare (`-e`), or with the daemon's modules. */
export async function idleNode(kind: 'bare' | 'modules'): Promise<IdleNode> {
  const args = kind === 'bare' ? ['-e', 'setInterval(() => {}, 1e9); process.stdout.write("ready\\n")']
    : [path.join(PROJECT_ROOT, 'dist', 'bench', 'modules-only.js')]
  const child = track(spawn(process.execPath, [...DAEMON_NODE_FLAGS, ...args], {stdio: ['ignore', 'pipe', 'inherit']}))
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => c.toString().includes('ready') && resolve())
    child.once('exit', (code) => reject(new Error(`idle node (${kind}) exited ${code}`)))
  })
  return {child, pid: child.pid!}
}

export function stopIdleNode(n: IdleNode): Promise<void> {
  return new Promise((resolve) => {
    if (n.child.exitCode !== null || n.child.signalCode !== null) return resolve()
    n.child.once('exit', () => resolve())
    n.child.kill('SIGTERM')
  })
}

/** One row per process, its RSS split, and what it adds over the row before. */
export function memoryRows(procs: {what: string; pid: number; atStart?: number}[]): Map<string, number> {
  const rss = new Map<string, number>()
  let prev: number | undefined
  for (const p of procs) {
    const m = memory(p.pid)
    rss.set(p.what, m.rss)
    const start = p.atStart === undefined ? '' : `${f(p.atStart)} -> `
    row(p.what, `${start}${f(m.rss)}`, `${f(m.anon)} / ${f(m.file)}`, prev === undefined ? '' : `${m.rss >= prev ? '+' : ''}${f(m.rss - prev)} over the row above`)
    prev = m.rss
  }
  return rss
}
