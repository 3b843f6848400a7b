import type Database from 'better-sqlite3'

// One numbered step per schema change, tracked in PRAGMA user_version. Never edit a shipped step: add one.
export const MIGRATIONS: readonly {version: number; sql: string}[] = [
  {
    version: 1,
    sql: `
      -- Keyed by port (the rowid): a port has at most one lease, and every decision looks up by port. Each
      -- index is one more page written per decision, so there are only the two lookups that need one.
      CREATE TABLE leases (
        port           INTEGER PRIMARY KEY,
        id             TEXT NOT NULL UNIQUE,
        service        TEXT NOT NULL,
        kind           TEXT NOT NULL CHECK (kind IN ('allocation', 'bind')),
        requested_port INTEGER,
        pid            INTEGER,
        pid_start      INTEGER,
        instance_id    TEXT,
        name           TEXT,
        project        TEXT,
        command        TEXT,
        created_at     INTEGER NOT NULL,
        last_listening INTEGER
      );
      CREATE INDEX leases_holder ON leases (pid, requested_port);

      CREATE TABLE instances (
        id             TEXT PRIMARY KEY,
        pid            INTEGER,
        pid_start      INTEGER,
        name           TEXT,
        project        TEXT,
        registered_at  INTEGER NOT NULL,
        last_heartbeat INTEGER NOT NULL
      );

      CREATE TABLE reassignments (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        at        INTEGER NOT NULL,
        pid       INTEGER NOT NULL,
        from_port INTEGER NOT NULL,
        to_port   INTEGER NOT NULL,
        service   TEXT NOT NULL,
        command   TEXT,
        project   TEXT
      );
      CREATE INDEX reassignments_at ON reassignments (at);

      -- A program restarted in the same project gets the same replacement port again while it is free.
      CREATE TABLE remembered (
        project        TEXT NOT NULL,
        requested_port INTEGER NOT NULL,
        port           INTEGER NOT NULL,
        updated_at     INTEGER NOT NULL,
        PRIMARY KEY (project, requested_port)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 2,
    // The UNIQUE index on id was one more page written by every decision's commit (docs/performance.md, History). Ids
    // made from now on carry their port ("l-3001-…"), so a lookup by id is a lookup by port; older ids are
    // found by a scan (release by id is rare). SQLite cannot drop a constraint: the table is rebuilt.
    sql: `
      CREATE TABLE leases_v2 (
        port           INTEGER PRIMARY KEY,
        id             TEXT NOT NULL,
        service        TEXT NOT NULL,
        kind           TEXT NOT NULL CHECK (kind IN ('allocation', 'bind')),
        requested_port INTEGER,
        pid            INTEGER,
        pid_start      INTEGER,
        instance_id    TEXT,
        name           TEXT,
        project        TEXT,
        command        TEXT,
        created_at     INTEGER NOT NULL,
        last_listening INTEGER
      );
      INSERT INTO leases_v2 SELECT port, id, service, kind, requested_port, pid, pid_start, instance_id, name, project,
        command, created_at, last_listening FROM leases;
      DROP TABLE leases;
      ALTER TABLE leases_v2 RENAME TO leases;
      CREATE INDEX leases_holder ON leases (pid, requested_port);
    `,
  },
  {
    version: 3,
    // Names are sticky like ports: a project's server restarted with the same type and asked port gets the name
    // it had (src/core/names.ts). Asked port 0: an allocation that asked for none. Leases made before this step
    // keep a null name (no URL) until they are made again.
    sql: `
      CREATE TABLE remembered_names (
        project        TEXT NOT NULL,
        service        TEXT NOT NULL,
        requested_port INTEGER NOT NULL,
        name           TEXT NOT NULL,
        updated_at     INTEGER NOT NULL,
        PRIMARY KEY (project, service, requested_port)
      ) WITHOUT ROWID;
    `,
  },
]

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version

export class SchemaTooNewError extends Error {
  constructor(readonly found: number, readonly supported: number, file: string) {
    super(
      `the database ${file} has schema version ${found}, newer than this Styxy supports (${supported}): ` +
      'it was written by a newer Styxy. Upgrade Styxy, or point STYXY_HOME at another directory.',
    )
  }
}

export function checkNotTooNew(db: Database.Database, file: string): number {
  const current = db.pragma('user_version', {simple: true}) as number
  if (current > SCHEMA_VERSION) throw new SchemaTooNewError(current, SCHEMA_VERSION, file)
  return current
}

export function migrate(db: Database.Database, file: string): void {
  const current = checkNotTooNew(db, file)
  for (const m of MIGRATIONS) {
    if (m.version <= current) continue
    db.transaction(() => {
      db.exec(m.sql)
      db.pragma(`user_version = ${m.version}`)
    }).immediate()
  }
}
