import {expect} from 'chai'
import {execFileSync, spawn} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import {StyxyClient} from '../../src/client/client.js'
import {ApiError} from '../../src/client/client.js'
import {DAEMON_ENTRY, DAEMON_NODE_FLAGS} from '../../src/client/ensure-daemon.js'
import {startDaemon, removeHome, runCli, tempHome, isolatedEnv, type TestDaemon} from '../helpers/daemon.js'
import {killAll, spawnHolder} from '../helpers/processes.js'
import {report, within} from '../helpers/proof.js'

/** A private tmpfs of `size` mounted on a fresh temp dir (needs root; the test skips otherwise). */
function mountTmpfs(size: string): string | null {
  const dir = tempHome('styxy-tmpfs-')
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], {stdio: 'ignore'})
    return dir
  } catch {
    removeHome(dir)
    return null
  }
}

function unmount(dir: string): void {
  try { execFileSync('umount', [dir], {stdio: 'ignore'}) } catch { /* already gone */ }
  removeHome(dir)
}

/** Fill the file system holding `dir` to the last byte; returns the filler's path (delete it to free the space). */
function fillDisk(dir: string): string {
  const file = path.join(dir, 'filler')
  const fd = fs.openSync(file, 'w')
  const chunk = Buffer.alloc(64 * 1024, 1)
  try {
    for (let size = chunk.length; size >= 1; size = Math.floor(size / 2)) {
      for (;;) {
        try { fs.writeSync(fd, chunk, 0, size) } catch { break }
      }
    }
  } finally {
    fs.closeSync(fd)
  }
  return file
}

describe('faults: the state directory', () => {
  const figures: Record<string, unknown> = {}
  after(() => report('state', figures))

  it('disk full under a running daemon: clear 507 STORAGE_FULL answers, no answered lease lost, recovers when space returns', async function () {
    const home = mountTmpfs('4m')
    if (!home) return this.skip()
    const holder = spawnHolder()
    let d: TestDaemon | undefined
    try {
      d = await startDaemon({home, env: {STYXY_LISTEN_GRACE_MS: '3600000'}})
      const answered = new Map<string, number>()
      const attempt = async (i: number) => {
        try {
          const a = i % 2
            ? await d!.client.allocate({service: ['dev', 'api', 'ui', 'docs'][i % 4], pid: holder.pid, name: 'x'.repeat(200)})
            : await d!.client.bind({pid: holder.pid!, port: 20000 + i, command: 'y'.repeat(1000)})
              .then((b) => ({id: b.leaseId!, port: b.port}))
          answered.set(a.id, a.port)
          return 'ok'
        } catch (error) {
          if (error instanceof ApiError) return `${error.status} ${error.code}`
          throw error
        }
      }
      for (let i = 0; i < 20; i++) expect(await attempt(i)).to.equal('ok')
      const filler = fillDisk(home)
      const whileFull: Record<string, number> = {}
      for (let i = 20; i < 220; i++) {
        const r = await attempt(i)
        whileFull[r] = (whileFull[r] ?? 0) + 1
      }
      // Reads keep working, the daemon is the same process.
      expect((await d.client.health()).pid).to.equal(d.pid)
      expect(Object.keys(whileFull).filter((k) => k !== 'ok'), JSON.stringify(whileFull)).to.deep.equal(['507 STORAGE_FULL'])
      fs.rmSync(filler)
      for (let i = 220; i < 240; i++) expect(await attempt(i)).to.equal('ok')
      // Every answered lease, including those answered while the disk was full, survives a crash.
      await d.kill9()
      d = await startDaemon({home})
      const byId = new Map((await d.client.leases()).map((l) => [l.id, l.port]))
      for (const [id, port] of answered) expect(byId.get(id), id).to.equal(port)
      figures.diskFull = {method: 'tmpfs 4 MB', attemptsWhileFull: 200, answers: whileFull, leasesChecked: answered.size, lost: 0}
    } finally {
      await d?.stop()
      await killAll([holder])
      unmount(home)
    }
  })

  it('a daemon started on a full disk or a read-only directory says so and exits (no crash loop)', async function () {
    const full = mountTmpfs('256k')
    if (!full) return this.skip()
    const ro = mountTmpfs('4m')!
    try {
      fillDisk(full)
      const r1 = await runCli(['daemon', 'start', '--foreground'], isolatedEnv(full, 0))
      expect(r1.code).to.equal(5)
      expect(r1.stderr).to.match(/no space left|disk is full/i).and.contain(full)
      // A read-only state directory that already holds a daemon's files.
      const d = await startDaemon({home: ro})
      await d.stop()
      execFileSync('mount', ['-o', 'remount,ro', ro])
      const r2 = await runCli(['daemon', 'start', '--foreground'], isolatedEnv(ro, 0))
      expect(r2.code).to.equal(5)
      expect(r2.stderr).to.match(/read-only/i).and.contain(ro)
      // A program run under Styxy still runs, with one warning.
      const r3 = await runCli(['run', '--', 'sh', '-c', 'echo ran'], isolatedEnv(ro, 0))
      expect([r3.code, r3.stdout.trim()]).to.deep.equal([0, 'ran'])
      expect(r3.stderr).to.match(/read-only/i)
      figures.startFullOrReadOnly = {full: r1.stderr.trim().split('\n').pop(), readOnly: r2.stderr.trim().split('\n').pop()}
    } finally {
      unmount(full)
      unmount(ro)
    }
  })

  it('a corrupt database file is refused with a message naming it; nothing is overwritten', async () => {
    const home = tempHome()
    try {
      const db = path.join(home, 'styxy.db')
      fs.writeFileSync(db, Buffer.concat([Buffer.from('not a database at all '), Buffer.alloc(8192, 0xa5)]))
      const r1 = await runCli(['daemon', 'start', '--foreground'], isolatedEnv(home, 0))
      expect(r1.code).to.equal(5)
      expect(r1.stderr).to.contain(db).and.match(/corrupt|not a database/i)
      expect(fs.readFileSync(db).subarray(0, 22).toString()).to.equal('not a database at all ')
      // A real database whose pages were damaged (the header intact).
      fs.rmSync(db)
      const holder = spawnHolder()
      const d = await startDaemon({home})
      for (let i = 0; i < 200; i++) await d.client.allocate({service: 'dev', pid: holder.pid, name: `lease ${i}`.padEnd(200, '.')}).catch(() => undefined)
      await d.stop()
      await killAll([holder])
      const bytes = fs.readFileSync(db)
      bytes.fill(0x5a, 4096 + 100, bytes.length - 100)
      fs.writeFileSync(db, bytes)
      const r2 = await runCli(['daemon', 'start', '--foreground'], isolatedEnv(home, 0))
      expect(r2.code).to.equal(5)
      expect(r2.stderr).to.contain(db).and.match(/corrupt/i)
      figures.corrupt = {notADatabase: r1.stderr.trim().split('\n').pop(), damagedPages: r2.stderr.trim().split('\n').pop()}
    } finally {
      removeHome(home)
    }
  })

  it('the socket file deleted or replaced under a running daemon: TCP keeps answering, the socket comes back', async () => {
    const d = await startDaemon()
    const sock = path.join(d.home, 'daemon.sock')
    const unixOnly = new StyxyClient({endpoint: {...d.client.endpoint, only: 'unix'}})
    try {
      fs.rmSync(sock)
      // The default client falls back to TCP meanwhile.
      expect((await d.client.health()).pid).to.equal(d.pid)
      const deletedMs = await within(5000, () => unixOnly.health().then(() => true, () => false), 'socket recreated')
      fs.rmSync(sock)
      fs.writeFileSync(sock, 'not a socket')
      const replacedMs = await within(5000, () => unixOnly.health().then(() => true, () => false), 'socket restored')
      expect(fs.statSync(sock).mode & 0o777).to.equal(0o600)
      expect(d.output()).to.match(/socket .* (was deleted|was replaced)/)
      figures.socket = {deletedRecoveredMs: deletedMs, replacedRecoveredMs: replacedMs}
    } finally {
      await d.stop()
      removeHome(d.home)
    }
  })

  it('four daemons started at once for one directory: exactly one runs, the others say so and exit 1', async () => {
    const home = tempHome()
    const env = isolatedEnv(home, 0, {STYXY_READY_FD: '3'})
    const starters = Array.from({length: 4}, () => spawn(process.execPath, [...DAEMON_NODE_FLAGS, DAEMON_ENTRY], {env, stdio: ['ignore', 'pipe', 'pipe', 'pipe']}))
    try {
      const told: string[] = []
      const outcomes = await Promise.all(starters.map((c) => new Promise<string>((resolve) => {
        let err = ''
        c.stderr!.on('data', (x) => (err += x))
        let said = ''
        c.stdio[3]!.on('data', (x) => {
          said += x
          if (/"pid"/.test(said)) resolve('ready')
        })
        // 'close': all it said on its pipe and stderr has been read by then.
        c.once('close', (code) => {
          told.push(said)
          resolve(`exit ${code}: ${err.trim().split('\n').pop()}`)
        })
      })))
      expect(outcomes.filter((o) => o === 'ready')).to.have.length(1)
      for (const o of outcomes.filter((x) => x !== 'ready')) expect(o).to.match(/^exit 1: .*already running/)
      // The losers said so on the starter's pipe too (the shared log's last line may be anyone's).
      expect(told.filter((t) => /"alreadyRunning":true/.test(t))).to.have.length(3)
      // Through the CLI: four `daemon start` at once all end up with the one daemon.
      const cliHome = tempHome()
      const cliEnv = isolatedEnv(cliHome, 0)
      try {
        const pids = (await Promise.all(Array.from({length: 4}, () => runCli(['daemon', 'start', '--json'], cliEnv))))
          .map((r) => (JSON.parse(r.stdout) as {pid: number}).pid)
        expect(new Set(pids).size).to.equal(1)
        figures.concurrentStarts = {direct: outcomes.length, running: 1, cli: pids.length, distinctPids: 1}
      } finally {
        await runCli(['daemon', 'stop'], cliEnv)
        removeHome(cliHome)
      }
    } finally {
      await killAll(starters, 'SIGTERM')
      removeHome(home)
    }
  })

  it('a database from a newer schema is refused (also covered with the message in the lifecycle tests), untouched', async () => {
    const home = tempHome()
    try {
      const file = path.join(home, 'styxy.db')
      const db = new Database(file)
      db.pragma('user_version = 42')
      db.close()
      const before = fs.readFileSync(file)
      const r = await runCli(['daemon', 'start', '--foreground'], isolatedEnv(home, 0))
      expect(r.code).to.equal(5)
      expect(fs.readFileSync(file).equals(before)).to.equal(true)
    } finally {
      removeHome(home)
    }
  })
})
