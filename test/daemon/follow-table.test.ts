import {expect} from 'chai'
import type {ChildProcess} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {Worker} from 'node:worker_threads'
import {projectHash} from '../../src/shared/project.js'
import {removeHome, startDaemon, tempHome, type TestDaemon} from '../helpers/daemon.js'
import {fnv1a64, isConsistent, readTable, TABLE_SIZE} from '../helpers/follow-reader.js'
import {freePort, killAll, startHolder} from '../helpers/processes.js'

// The follow table as the daemon writes it (docs/follow-table.md), read back by the tests' own reader.

function worktree(root: string, name: string): string {
  const dir = path.join(root, name)
  fs.mkdirSync(path.join(dir, '.git'), {recursive: true})
  fs.mkdirSync(path.join(dir, 'api'), {recursive: true})
  return dir
}

// A reader in another thread, as a process under Styxy reads: seq, the rest, seq again; a read is used only
// when both seqs are the same even number. Every used read must be whole: bit P set exactly for the entries' P.
const TORN_READER = `
const {workerData, parentPort} = require('node:worker_threads')
const fs = require('node:fs')
const stop = new Int32Array(workerData.stop)
const fd = fs.openSync(workerData.file, 'r')
const word = Buffer.alloc(4)
const rest = Buffer.alloc(${TABLE_SIZE} - 12)
const seqNow = () => (fs.readSync(fd, word, 0, 4, 8), word.readUInt32LE(0))
let used = 0, odd = 0, changed = 0, torn = 0, moves = 0
while (Atomics.load(stop, 0) === 0) {
  const before = seqNow()
  if (before & 1) { odd++; continue }
  fs.readSync(fd, rest, 0, rest.length, 12)
  if (seqNow() !== before) { changed++; continue }
  used++
  const count = rest.readUInt32LE(0)
  const asked = new Set()
  for (let i = 0; i < count; i++) asked.add(rest.readUInt16LE(8256 - 12 + 16 * i + 8))
  let bits = 0
  for (let i = 0; i < 8192; i++) {
    const byte = rest[64 - 12 + i]
    for (let b = 0; b < 8; b++) if (byte & (1 << b)) { bits++; if (!asked.has(i * 8 + b)) torn++ }
  }
  if (bits !== asked.size) torn++
  if (count > 0) moves++
}
parentPort.postMessage({used, odd, changed, torn, moves})
`

describe('follow table (a real daemon)', () => {
  let d: TestDaemon
  let root: string
  let a: string
  let b: string
  const holders: ChildProcess[] = []
  const holder = () => startHolder(holders)
  const file = () => path.join(d.home, 'follow')

  before(async () => {
    root = fs.realpathSync(tempHome('styxy-wt-'))
    a = worktree(root, 'a')
    b = worktree(root, 'b')
    d = await startDaemon({env: {STYXY_LISTEN_GRACE_MS: '600000'}})
  })
  after(async () => {
    await d.stop()
    await killAll(holders)
    removeHome(d.home)
    removeHome(root)
  })

  it("the reader's hash is the documented one, and the daemon's", () => {
    const vectors: [string, bigint][] = [['', 0xcbf29ce484222325n], ['/home/dev/proj', 0xeaa3273df6d7b751n], ['/tmp/wt-b', 0x2bda3cfb70d2f7bcn]]
    for (const [text, hash] of vectors) {
      expect(fnv1a64(text), text).to.equal(hash)
      expect(projectHash(text), text).to.equal(hash)
    }
  })

  it('is created at its full size, private, stable and empty', () => {
    const st = fs.statSync(file())
    expect(st.mode & 0o777).to.equal(0o600)
    expect(st.size).to.equal(TABLE_SIZE)
    const t = readTable(file())
    expect(t.seq % 2).to.equal(0)
    expect([t.count, t.bits, t.entries]).to.deep.equal([0, [], []])
  })

  it('holds a move before the bind answer that made it, and loses it when the lease ends; other leases write nothing', async () => {
    const P = await freePort()
    await d.client.bind({pid: await holder(), port: P, cwd: a})
    const before = readTable(file())
    expect(before.count).to.equal(0)
    const moved = await d.client.bind({pid: await holder(), port: P, cwd: path.join(b, 'api')})
    expect(moved.action).to.equal('remap')
    // Read right after the answer: the table was written before it was sent.
    const during = readTable(file())
    expect(during.seq).to.equal(before.seq + 2)
    expect(during.entries).to.deep.equal([{project: fnv1a64(b), asked: P, port: moved.port}])
    expect(during.bits).to.deep.equal([P])
    expect(isConsistent(during)).to.equal(true)
    // A lease that moved nothing (a free port, another project) leaves the table as it was, seq included.
    const Q = await freePort()
    await d.client.bind({pid: await holder(), port: Q, cwd: root})
    expect(readTable(file()).seq).to.equal(during.seq)
    await d.client.release(moved.leaseId!)
    const after = readTable(file())
    expect(after.seq).to.equal(during.seq + 2)
    expect([after.count, after.bits, after.entries]).to.deep.equal([0, [], []])
  })

  it('a restarted daemon writes the moves of the leases that survived, in the same file, its seq going on', async () => {
    const P = await freePort()
    await d.client.bind({pid: await holder(), port: P, cwd: a})
    const moved = await d.client.bind({pid: await holder(), port: P, cwd: b})
    const ino = fs.statSync(file()).ino
    await d.stop()
    const left = readTable(file())
    expect(left.entries).to.deep.equal([{project: fnv1a64(b), asked: P, port: moved.port}])
    // Cleared while no daemon runs: only the new daemon's start can put the move back.
    const blank = Buffer.alloc(TABLE_SIZE - 12)
    const fd = fs.openSync(file(), 'r+')
    fs.writeSync(fd, blank, 0, blank.length, 12)
    fs.closeSync(fd)
    d = await startDaemon({home: d.home, env: {STYXY_LISTEN_GRACE_MS: '600000'}})
    const now = readTable(file())
    expect(fs.statSync(file()).ino).to.equal(ino)
    expect(now.seq).to.be.above(left.seq)
    expect(now.seq % 2).to.equal(0)
    expect(now.entries).to.deep.equal([{project: fnv1a64(b), asked: P, port: moved.port}])
    expect(now.bits).to.deep.equal([P])
    await d.client.release(moved.leaseId!)
  })

  it('a reader in another thread never uses a torn table while moves come and go', async function () {
    this.timeout(120_000)
    const ports = await Promise.all([0, 1, 2].map(() => freePort()))
    for (const P of ports) await d.client.bind({pid: await holder(), port: P, cwd: a})
    const stop = new SharedArrayBuffer(4)
    const worker = new Worker(TORN_READER, {eval: true, workerData: {file: file(), stop}})
    const result = new Promise<{used: number; odd: number; changed: number; torn: number; moves: number}>((resolve, reject) => {
      worker.once('message', resolve)
      worker.once('error', reject)
    })
    const pid = await holder()
    for (let round = 0; round < 100; round++) {
      const leases = []
      for (const P of ports) leases.push(await d.client.bind({pid, port: P, cwd: b}))
      for (const l of leases) await d.client.release(l.leaseId!)
    }
    Atomics.store(new Int32Array(stop), 0, 1)
    const r = await result
    console.log(`      reader: ${r.used} whole reads (${r.moves} with moves), ${r.changed} seen changing, ${r.odd} seen mid-write`)
    expect(r.torn, JSON.stringify(r)).to.equal(0)
    expect(r.used).to.be.greaterThan(0)
    expect(r.moves).to.be.greaterThan(0)
  })
})
