// connect() as a program sees it (zig-out/bin/connectbench), for issue 19's connect-follow: without the library,
// with it and nothing moved (no table at all; a table moving other ports), with it following a move, all in
// the same rounds; the call alone (a connect the kernel refuses at once), where the hook's cost is not lost
// in the handshake; and the time from a move's publication until a client connecting in a loop follows it.
// The moves are written by this bench as the daemon writes them (test/helpers/follow-table.ts), so the
// figures are the interceptor's alone.
import {spawn, spawnSync} from 'node:child_process'
import path from 'node:path'
import readline from 'node:readline'
import {isolatedEnv, removeHome} from '../test/helpers/daemon.js'
import {FollowTable, type Move} from '../test/helpers/follow-table.js'
import {freePort} from '../test/helpers/processes.js'
import {LIB} from '../test/helpers/programs.js'
import {BINDBENCH, benchHome, combine, f, machineSince, cpuTimes, note, pct, quick, row, section, target, track, type Bench} from './lib.js'

const CONNECTBENCH = path.join(path.dirname(BINDBENCH), 'connectbench')

function run(args: string[], env: NodeJS.ProcessEnv, unit: 'us' | 'ns'): Bench {
  const r = spawnSync(CONNECTBENCH, args, {env, encoding: 'utf8'})
  const m = new RegExp(`p50_${unit} ([\\d.]+) p99_${unit} ([\\d.]+) failed (\\d+)`).exec(r.stdout)
  if (!m) throw new Error(`connectbench ${args.join(' ')}: ${r.stdout} ${r.stderr}`)
  return {p50: Number(m[1]), p99: Number(m[2]), failed: Number(m[3])}
}

/** `n` connects to `connectPort`, landing on a listener at `listenPort`: each one's µs. */
const timeConnects = (n: number, listenPort: number, connectPort: number, env: NodeJS.ProcessEnv) =>
  run(['time', String(n), String(listenPort), String(connectPort)], env, 'us')

export async function connectFollow(): Promise<void> {
  const n = quick ? 400 : 4000
  const rounds = 4
  const step = n / rounds
  const project = benchHome('styxy-bench-project-')
  // The library's environment: no daemon anywhere, its own binds left alone (a floor above every port), quiet.
  const libEnv = async (home: string) => ({
    ...isolatedEnv(home, await freePort()), LD_PRELOAD: LIB, STYXY_PROJECT: project, STYXY_MIN_PORT: '65535', STYXY_NOTIFY: 'off',
  })
  const bareEnv = isolatedEnv(project, await freePort())
  const noTableHome = benchHome('styxy-bench-notable-')
  const noTableEnv = await libEnv(noTableHome)
  const tableHome = benchHome('styxy-bench-table-')
  const tableEnv = await libEnv(tableHome)
  // A hundred other servers of this project moved, as a busy machine might have: bits set, not ours.
  const others: Move[] = Array.from({length: 100}, (_, i) => ({project, asked: 20000 + i, port: 21000 + i}))
  const table = FollowTable.create(tableHome, others)
  const s = {bare: [] as Bench[], noTable: [] as Bench[], notMoved: [] as Bench[], followed: [] as Bench[]}
  const call = {bare: [] as Bench[], notMoved: [] as Bench[]}
  const from = cpuTimes()
  let follow: {toB: number[]; toA: number[]; written: number[]}
  try {
    section(`connect() and connect-follow: a loopback TCP connect as a program sees it (${n} per row, ${rounds} rounds)`, 'what | p50 | p99 | added, target')
    for (let k = 0; k < rounds; k++) {
      const plain = await freePort()
      s.bare.push(timeConnects(step, plain, plain, bareEnv))
      s.noTable.push(timeConnects(step, plain, plain, noTableEnv))
      s.notMoved.push(timeConnects(step, plain, plain, tableEnv))
      const asked = await freePort()
      const moved = await freePort()
      table.write([...others, {project, asked, port: moved}])
      s.followed.push(timeConnects(step, moved, asked, tableEnv))
      call.bare.push(run(['refused', String(step * 25), String(plain)], bareEnv, 'ns'))
      call.notMoved.push(run(['refused', String(step * 25), String(plain)], tableEnv, 'ns'))
    }
    follow = await moveToFollow(quick ? 20 : 100, table, others, project, tableEnv)
  } finally {
    table.close()
    for (const home of [project, tableHome, noTableHome]) removeHome(home)
  }
  const [bare, noTable, notMoved, followed] = Object.values(s).map(combine)
  const [callBare, callNotMoved] = Object.values(call).map(combine)
  const added = (b: Bench) => b.p50 - bare.p50
  row('connect() without the library', `${f(bare.p50)} µs`, `${f(bare.p99)} µs`, '')
  row('connect() with the library, no table (no daemon ever ran)', `${f(noTable.p50)} µs`, `${f(noTable.p99)} µs`, `added p50 ${f(added(noTable), 2)} µs (${f(noTable.p50 / bare.p50, 3)}x)`)
  row('connect() with the library, 100 other ports moved, not this one', `${f(notMoved.p50)} µs`, `${f(notMoved.p99)} µs`, `added p50 ${f(added(notMoved), 2)} µs (${f(notMoved.p50 / bare.p50, 3)}x; target <= 1 µs)`)
  row('connect() with the library, followed to the moved server', `${f(followed.p50)} µs`, `${f(followed.p99)} µs`, `added p50 ${f(added(followed), 2)} µs (${f(followed.p50 / bare.p50, 3)}x; target <= 20 µs)`)
  row('connect() refused at once (EBADF), without the library: the call alone', `${f(callBare.p50, 0)} ns`, `${f(callBare.p99, 0)} ns`, '')
  row('connect() refused at once (EBADF), with the library, table mapped, port not moved', `${f(callNotMoved.p50, 0)} ns`, `${f(callNotMoved.p99, 0)} ns`, `added p50 ${f(callNotMoved.p50 - callBare.p50, 0)} ns`)
  row(`a move published until a client connecting in a loop follows it (${follow.toB.length} moves)`, `${f(pct(follow.toB, 50))} µs`, `${f(pct(follow.toB, 99))} µs`, 'the table written by this bench, as the daemon writes it')
  row('of which the table write itself (this bench\'s, from node, 4 writes)', `${f(pct(follow.written, 50))} µs`, `${f(pct(follow.written, 99))} µs`, '')
  const afterWrite = follow.toB.map((x, i) => x - follow.written[i])
  row('from the write\'s end until the client follows', `${f(pct(afterWrite, 50))} µs`, `${f(pct(afterWrite, 99))} µs`, `a plain connect-accept-close loop turn is ~${f(bare.p50)} µs of connect plus the accept`)
  row('the move withdrawn until that client reaches the port\'s holder again', `${f(pct(follow.toA, 50))} µs`, `${f(pct(follow.toA, 99))} µs`, '')
  note('each row a new process with untimed warm-up connects first; a follow costs SO_TYPE, the project (found once), a seqlock lookup, SO_COOKIE for getpeername')
  note(machineSince(from))
  const failed = [bare, noTable, notMoved, followed, callBare, callNotMoved].map((x) => x.failed)
  if (failed.some((x) => x > 0)) note(`failed connects, in row order: ${failed.join('/')}`)
  target('connect() added by the library, nothing moved, p50', '<= 1 µs', `${f(added(notMoved), 2)} µs (the call alone: ${f(callNotMoved.p50 - callBare.p50, 0)} ns)`, added(notMoved) <= 1)
  target('connect() added by the library, followed, p50', '<= 20 µs', `${f(added(followed), 2)} µs`, added(followed) <= 20)
}

/**
 * A client connecting to `asked` in a loop (connectbench watch); the bench publishes a move of `asked` to
 * another listener, notes when, and waits for the client to land there; then withdraws it. Each time, in µs,
 * from just before the table write to the client's first connection on the other side.
 */
async function moveToFollow(moves: number, table: FollowTable, others: Move[], project: string, env: NodeJS.ProcessEnv): Promise<{toB: number[]; toA: number[]; written: number[]}> {
  const asked = await freePort()
  const other = await freePort()
  table.write(others)
  const child = track(spawn(CONNECTBENCH, ['watch', String(asked), String(other), String(2 * moves)], {env, stdio: ['ignore', 'pipe', 'inherit']}))
  const lines = readline.createInterface({input: child.stdout!})[Symbol.asyncIterator]()
  const next = async (want: 'A' | 'B'): Promise<bigint> => {
    const {value, done} = await lines.next()
    if (done) throw new Error('connectbench watch ended early')
    const [side, ns] = (value as string).split(' ')
    if (side !== want) throw new Error(`connectbench watch: ${value}, wanted ${want}`)
    return BigInt(ns)
  }
  const toB: number[] = []
  const toA: number[] = []
  const written: number[] = []
  try {
    await next('A')
    for (let i = 0; i < moves; i++) {
      let t0 = process.hrtime.bigint()
      table.write([...others, {project, asked, port: other}])
      written.push(Number(process.hrtime.bigint() - t0) / 1000)
      toB.push(Number((await next('B')) - t0) / 1000)
      t0 = process.hrtime.bigint()
      table.write(others)
      toA.push(Number((await next('A')) - t0) / 1000)
    }
  } finally {
    child.kill('SIGTERM')
  }
  return {toB, toA, written}
}
