import crypto from 'node:crypto'
import Database from 'better-sqlite3'
import type {Instance, Lease, LeaseKind, Reassignment} from '../protocol/types.js'
import type {LeaseView} from '../core/decide.js'
import {StyxyError} from '../protocol/errors.js'
import {checkNotTooNew, migrate} from './migrations.js'

export interface LeaseRow {
  id: string
  port: number
  service: string
  kind: LeaseKind
  requested_port: number | null
  pid: number | null
  pid_start: number | null
  instance_id: string | null
  name: string | null
  project: string | null
  command: string | null
  created_at: number
  last_listening: number | null
}

export interface InstanceRow {
  id: string
  pid: number | null
  pid_start: number | null
  name: string | null
  project: string | null
  registered_at: number
  last_heartbeat: number
}

interface ReassignmentRow {
  at: number
  pid: number
  from_port: number
  to_port: number
  service: string
  command: string | null
  project: string | null
}

// Lease rows are read as arrays and built here: better-sqlite3 makes each row object through V8's API, one
// property at a time with its name interned afresh, which costs more than twice as much (docs/performance.md, History).
const LEASE_COLUMNS = 'id, port, service, kind, requested_port, pid, pid_start, instance_id, name, project, command, created_at, last_listening'

type Raw = unknown[]

function leaseRow(v: Raw): LeaseRow {
  return {
    id: v[0] as string, port: v[1] as number, service: v[2] as string, kind: v[3] as LeaseKind, requested_port: v[4] as number | null,
    pid: v[5] as number | null, pid_start: v[6] as number | null, instance_id: v[7] as string | null, name: v[8] as string | null,
    project: v[9] as string | null, command: v[10] as string | null, created_at: v[11] as number, last_listening: v[12] as number | null,
  }
}

const one = (v: unknown): LeaseRow | undefined => (v === undefined ? undefined : leaseRow(v as Raw))
const many = (vs: unknown[]): LeaseRow[] => vs.map((v) => leaseRow(v as Raw))

const iso = (ms: number) => new Date(ms).toISOString()

// A lease's URL depends on the daemon's names proxy (its port, who holds each name). A process runs one daemon,
// and a lease is turned into its answer in many places (events, listings, releases): one setting here rather
// than the daemon passed to each.
let urlFor: (r: LeaseRow & {name: string}) => string | null = () => null

/** How leases get their URL from now on. */
export function setLeaseUrls(fn: (r: LeaseRow & {name: string}) => string | null): void {
  urlFor = fn
}

export function toLease(r: LeaseRow): Lease {
  return {
    id: r.id, port: r.port, service: r.service, kind: r.kind, requestedPort: r.requested_port, pid: r.pid,
    instanceId: r.instance_id, name: r.name, url: r.name === null ? null : urlFor(r as LeaseRow & {name: string}), project: r.project, command: r.command,
    createdAt: iso(r.created_at), lastListeningAt: r.last_listening === null ? null : iso(r.last_listening),
  }
}

export function toLeaseView(r: LeaseRow): LeaseView {
  return {id: r.id, port: r.port, service: r.service, requestedPort: r.requested_port, pid: r.pid, pidStart: r.pid_start, instanceId: r.instance_id}
}

export function toInstance(r: InstanceRow): Instance {
  return {id: r.id, pid: r.pid, name: r.name, project: r.project, registeredAt: iso(r.registered_at), lastHeartbeatAt: iso(r.last_heartbeat)}
}

function toReassignment(r: ReassignmentRow): Reassignment {
  return {at: iso(r.at), pid: r.pid, from: r.from_port, to: r.to_port, service: r.service, command: r.command, project: r.project}
}

/** Page size of a new database file (see `open`). */
const PAGE_SIZE = 1024

/**
 * The only owner of the database. Statements are prepared once here; callers group calls in `transaction`,
 * which is synchronous (better-sqlite3): nothing may be awaited inside one.
 */
export class Store {
  readonly db: Database.Database
  private readonly s: ReturnType<Store['open']>
  // better-sqlite3 builds a wrapper (with defineProperties) on every db.transaction() call: build one, once.
  private readonly runInTransaction: Database.Transaction<(fn: () => unknown) => unknown>

  constructor(readonly file: string) {
    try {
      this.db = new Database(file)
    } catch (error) {
      throw storageFailure(error, file) ?? error
    }
    try {
      this.s = this.open()
      this.runInTransaction = this.db.transaction((fn: () => unknown) => fn())
    } catch (error) {
      this.db.close()
      throw storageFailure(error, file) ?? error
    }
  }

  private open() {
    const file = this.file
    // Only the daemon opens this file (daemon.lock makes it the only one), so it may keep SQLite's lock for
    // good: no lock and unlock syscalls per transaction, and (set before the first WAL access) the WAL index
    // lives in the daemon's memory instead of a -shm file.
    this.db.pragma('locking_mode = EXCLUSIVE')
    // Before anything that writes: a database from a newer Styxy is refused untouched (WAL mode rewrites the header).
    checkNotTooNew(this.db, file)
    // Every decision's commit appends its pages to the WAL: at 1 KB a page instead of 4 KB it writes a quarter of
    // the bytes, a shorter transaction for every new lease (docs/performance.md, History).
    // Only a new file can take it; an existing one keeps its size.
    if (this.db.pragma('page_count', {simple: true}) === 0) this.db.pragma(`page_size = ${PAGE_SIZE}`)
    // WAL + NORMAL: a commit survives a process crash (kill -9), which is the durability a lease needs.
    this.db.pragma('journal_mode = WAL')
    this.db.pragma('synchronous = NORMAL')
    this.db.pragma('busy_timeout = 2000')
    // A checkpoint (copying the WAL back, with its fsyncs) made the commit that crossed SQLite's default
    // 1,000 pages take milliseconds, every few hundred decisions. The daemon checkpoints on a quiet tick of its
    // reaper instead (`checkpoint`); this higher limit bounds the WAL through a burst with no pause in it.
    this.db.pragma('wal_autocheckpoint = 10000')
    migrate(this.db, file)
    // A damaged file is refused at start with its name, rather than failing decisions one by one later.
    const check = this.db.pragma('quick_check', {simple: true})
    if (check !== 'ok') throw new StorageError('STORAGE_UNAVAILABLE', `the database ${file} is corrupt (${String(check)}): move it aside to start afresh (its leases are lost), or restore a copy`)
    const db = this.db
    const lease = (sql: string) => db.prepare(sql).raw(true)
    return {
      // Positional parameters: binding 13 named ones from an object is a measurable share of a new lease's decision.
      insertLease: db.prepare(`INSERT INTO leases (id, port, service, kind, requested_port, pid, pid_start, instance_id, name, project, command, created_at, last_listening)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      deleteLease: db.prepare('DELETE FROM leases WHERE port = ? AND id = ?'),
      leaseByIdScan: lease(`SELECT ${LEASE_COLUMNS} FROM leases WHERE id = ?`),
      leaseByPort: lease(`SELECT ${LEASE_COLUMNS} FROM leases WHERE port = ?`),
      leaseByHolderRequest: lease(`SELECT ${LEASE_COLUMNS} FROM leases WHERE pid = ? AND pid_start IS ? AND requested_port = ? ORDER BY created_at DESC, rowid DESC LIMIT 1`),
      // No index: only an allocation that names its lease asks (a scan, beside that allocation's own kernel query).
      leaseByName: lease(`SELECT ${LEASE_COLUMNS} FROM leases WHERE name = ? AND project IS ? ORDER BY created_at LIMIT 1`),
      leaseByServiceFirst: lease(`SELECT ${LEASE_COLUMNS} FROM leases WHERE service = ? ORDER BY created_at LIMIT 1`),
      allLeases: lease(`SELECT ${LEASE_COLUMNS} FROM leases ORDER BY port`),
      movedLeases: lease(`SELECT ${LEASE_COLUMNS} FROM leases WHERE project IS NOT NULL AND requested_port IS NOT NULL AND port != requested_port
        ORDER BY created_at DESC, port DESC`),
      holders: db.prepare('SELECT DISTINCT pid, pid_start FROM leases WHERE pid IS NOT NULL'),
      leasesOfHolder: lease(`SELECT ${LEASE_COLUMNS} FROM leases WHERE pid = ? AND pid_start IS ?`),
      touchListening: db.prepare('UPDATE leases SET last_listening = ? WHERE port = ? AND (last_listening IS NULL OR last_listening < ?)'),
      quietSince: lease(`SELECT ${LEASE_COLUMNS} FROM leases WHERE coalesce(last_listening, CASE kind WHEN 'bind' THEN created_at END) < ?`),
      leasesByService: lease(`SELECT ${LEASE_COLUMNS} FROM leases WHERE service = ? ORDER BY port`),
      leasesByInstance: lease(`SELECT ${LEASE_COLUMNS} FROM leases WHERE instance_id = ?`),
      countLeases: db.prepare('SELECT count(*) AS n FROM leases'),
      countByService: db.prepare('SELECT service, count(*) AS n FROM leases GROUP BY service'),
      upsertInstance: db.prepare(`INSERT INTO instances (id, pid, pid_start, name, project, registered_at, last_heartbeat)
        VALUES (@id, @pid, @pid_start, @name, @project, @now, @now)
        ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, pid_start = excluded.pid_start, name = coalesce(excluded.name, name),
          project = coalesce(excluded.project, project), last_heartbeat = excluded.last_heartbeat`),
      heartbeat: db.prepare('UPDATE instances SET last_heartbeat = ? WHERE id = ?'),
      instanceById: db.prepare('SELECT * FROM instances WHERE id = ?'),
      allInstances: db.prepare('SELECT * FROM instances ORDER BY registered_at'),
      deleteInstance: db.prepare('DELETE FROM instances WHERE id = ?'),
      countInstances: db.prepare('SELECT count(*) AS n FROM instances'),
      insertReassignment: db.prepare(`INSERT INTO reassignments (at, pid, from_port, to_port, service, command, project)
        VALUES (@at, @pid, @from_port, @to_port, @service, @command, @project)`),
      reassignmentsSince: db.prepare('SELECT * FROM reassignments WHERE at >= ? ORDER BY id'),
      countReassignments: db.prepare('SELECT count(*) AS n FROM reassignments'),
      remembered: db.prepare('SELECT port FROM remembered WHERE project = ? AND requested_port = ?'),
      remember: db.prepare(`INSERT INTO remembered (project, requested_port, port, updated_at) VALUES (?, ?, ?, ?)
        ON CONFLICT (project, requested_port) DO UPDATE SET port = excluded.port, updated_at = excluded.updated_at`),
      rememberedName: db.prepare('SELECT name FROM remembered_names WHERE project = ? AND service = ? AND requested_port = ?').pluck(),
      rememberName: db.prepare(`INSERT INTO remembered_names (project, service, requested_port, name, updated_at) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (project, service, requested_port) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at`),
      namedLeases: lease(`SELECT ${LEASE_COLUMNS} FROM leases WHERE name IS NOT NULL`),
      checkpoint: db.prepare('PRAGMA wal_checkpoint(PASSIVE)'),
    }
  }

  transaction<T>(fn: () => T): T {
    return this.runInTransaction.immediate(fn) as T
  }

  insertLease(r: LeaseRow): void {
    this.s.insertLease.run(r.id, r.port, r.service, r.kind, r.requested_port, r.pid, r.pid_start, r.instance_id, r.name, r.project, r.command, r.created_at, r.last_listening)
  }
  deleteLease(row: {port: number; id: string}): boolean { return this.s.deleteLease.run(row.port, row.id).changes > 0 }
  leaseById(id: string): LeaseRow | undefined {
    const port = portOfLeaseId(id)
    if (port === undefined) return one(this.s.leaseByIdScan.get(id))
    const row = this.leaseByPort(port)
    return row?.id === id ? row : undefined
  }
  leaseByPort(port: number): LeaseRow | undefined { return one(this.s.leaseByPort.get(port)) }
  leaseByHolderRequest(pid: number, pidStart: number | null, requestedPort: number): LeaseRow | undefined {
    return one(this.s.leaseByHolderRequest.get(pid, pidStart, requestedPort))
  }
  /** The lease named `name` in `project` (null: leases made without a project). */
  leaseByName(name: string, project: string | null): LeaseRow | undefined { return one(this.s.leaseByName.get(name, project)) }
  firstLeaseOfService(service: string): LeaseRow | undefined { return one(this.s.leaseByServiceFirst.get(service)) }
  leases(service?: string): LeaseRow[] {
    return many(service ? this.s.leasesByService.all(service) : this.s.allLeases.all())
  }
  /** Leases away from the port they asked for, with a project: newest first (the follow table's source). */
  movedLeases(): LeaseRow[] { return many(this.s.movedLeases.all()) }
  /** Distinct (pid, start time) pairs holding leases: the reaper checks each process once. */
  holders(): {pid: number; pid_start: number | null}[] { return this.s.holders.all() as {pid: number; pid_start: number | null}[] }
  leasesOfHolder(pid: number, pidStart: number | null): LeaseRow[] { return many(this.s.leasesOfHolder.all(pid, pidStart)) }
  /** Record a listener on the port; written at most once per `minGapMs` per lease. */
  touchListening(port: number, at: number, minGapMs: number): void { this.s.touchListening.run(at, port, at - minGapMs) }
  /** Leases with no listener seen since `cutoff` (a bind lease counts from its creation; an allocation from its first listener). */
  quietSince(cutoff: number): LeaseRow[] { return many(this.s.quietSince.all(cutoff)) }
  leasesOfInstance(instanceId: string): LeaseRow[] { return many(this.s.leasesByInstance.all(instanceId)) }
  leaseCount(): number { return (this.s.countLeases.get() as {n: number}).n }
  leaseCountByService(): Record<string, number> {
    const out: Record<string, number> = {}
    for (const r of this.s.countByService.all() as {service: string; n: number}[]) out[r.service] = r.n
    return out
  }

  upsertInstance(row: {id: string; pid: number | null; pid_start: number | null; name: string | null; project: string | null; now: number}): void {
    this.s.upsertInstance.run(row)
  }
  heartbeat(id: string, at: number): boolean { return this.s.heartbeat.run(at, id).changes > 0 }
  instanceById(id: string): InstanceRow | undefined { return this.s.instanceById.get(id) as InstanceRow | undefined }
  instances(): InstanceRow[] { return this.s.allInstances.all() as InstanceRow[] }
  deleteInstance(id: string): boolean { return this.s.deleteInstance.run(id).changes > 0 }
  instanceCount(): number { return (this.s.countInstances.get() as {n: number}).n }

  addReassignment(r: {at: number; pid: number; from_port: number; to_port: number; service: string; command: string | null; project: string | null}): void {
    this.s.insertReassignment.run(r)
  }
  reassignments(sinceMs = 0): Reassignment[] {
    return (this.s.reassignmentsSince.all(sinceMs) as ReassignmentRow[]).map(toReassignment)
  }
  reassignmentCount(): number { return (this.s.countReassignments.get() as {n: number}).n }

  remembered(project: string, requestedPort: number): number | undefined {
    return (this.s.remembered.get(project, requestedPort) as {port: number} | undefined)?.port
  }
  remember(project: string, requestedPort: number, port: number, at: number): void {
    this.s.remember.run(project, requestedPort, port, at)
  }

  /** The name `project`'s server of this type asking for this port (0: none) had last time. */
  rememberedName(project: string, service: string, requestedPort: number): string | undefined {
    return this.s.rememberedName.get(project, service, requestedPort) as string | undefined
  }
  rememberName(project: string, service: string, requestedPort: number, name: string, at: number): void {
    this.s.rememberName.run(project, service, requestedPort, name, at)
  }
  /** Leases with a name: the daemon's index of names is built from them at start (src/daemon/names.ts). */
  namedLeases(): LeaseRow[] { return many(this.s.namedLeases.all()) }

  /** Copy the WAL back into the database; nearly free when nothing was written since the last one. */
  checkpoint(): void {
    if (this.db.open) this.s.checkpoint.get()
  }

  close(): void {
    if (this.db.open) this.db.close()
  }
}

/** A lease id names its port ("l-3001-9f2c4a1b"): the table's key, so no index on id is needed. */
export function newLeaseId(port: number): string {
  // randomUUID draws from a cached pool: randomBytes(4) was a synchronous trip to the kernel per lease.
  return `l-${port}-${crypto.randomUUID().slice(0, 8)}`
}

/** The port an id made by newLeaseId names; undefined for ids from before schema 2. */
export function portOfLeaseId(id: string): number | undefined {
  const m = /^l-(\d{1,5})-[0-9a-f]+$/.exec(id)
  return m ? Number(m[1]) : undefined
}

/** The state directory failed under SQLite (disk full, read-only, corrupt): a clear message naming the file. */
export class StorageError extends StyxyError {}

/**
 * SQLite's failures that are about the file, not about us, as a StorageError naming the file; null for anything
 * else. The daemon answers these with 507/503 (the interceptor then fails open) and refuses to start on them.
 */
export function storageFailure(error: unknown, file: string): StorageError | null {
  if (error instanceof StorageError) return error
  const code = String((error as {code?: unknown})?.code ?? '')
  const why = (error as Error)?.message ?? String(error)
  if (code === 'SQLITE_FULL') return new StorageError('STORAGE_FULL', `cannot write ${file}: the disk is full (${why})`)
  if (code.startsWith('SQLITE_READONLY')) return new StorageError('STORAGE_UNAVAILABLE', `cannot write ${file}: it is read-only (${why})`)
  if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) {
    return new StorageError('STORAGE_UNAVAILABLE', `the database ${file} is corrupt (${why}): move it aside to start afresh (its leases are lost), or restore a copy`)
  }
  if (code.startsWith('SQLITE_IOERR') || code.startsWith('SQLITE_CANTOPEN')) return new StorageError('STORAGE_UNAVAILABLE', `cannot use ${file}: ${why}`)
  const errno = (error as NodeJS.ErrnoException)?.code
  if (errno === 'ENOSPC') return new StorageError('STORAGE_FULL', `cannot write in the state directory: the disk is full (${why})`)
  if (errno === 'EROFS') return new StorageError('STORAGE_UNAVAILABLE', `cannot write in the state directory: it is read-only (${why})`)
  return null
}
