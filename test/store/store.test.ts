import {expect} from 'chai'
import path from 'node:path'
import Database from 'better-sqlite3'
import {MIGRATIONS, SCHEMA_VERSION} from '../../src/store/migrations.js'
import {newLeaseId, portOfLeaseId, Store, type LeaseRow} from '../../src/store/store.js'
import {removeHome, tempHome} from '../helpers/daemon.js'

const row = (port: number, id: string): LeaseRow => ({
  id, port, service: 'dev', kind: 'bind', requested_port: port, pid: 4242, pid_start: 7, instance_id: null, name: null,
  project: '/p', command: 'vite', created_at: 1, last_listening: null,
})

describe('store: lease ids and schema 2', () => {
  it('a lease id names its port; ids from before do not', () => {
    const id = newLeaseId(3001)
    expect(id).to.match(/^l-3001-[0-9a-f]{8}$/)
    expect(portOfLeaseId(id)).to.equal(3001)
    expect(newLeaseId(3001)).to.not.equal(id)
    for (const old of ['l-8f3a9c2b1d4e', 'l-', 'l-3001', 'x-3001-ab', 'l-123456-ab']) expect(portOfLeaseId(old), old).to.equal(undefined)
  })

  it('a schema 1 database is migrated with every lease kept; old ids and new ones are found and released', () => {
    const home = tempHome()
    const file = path.join(home, 'styxy.db')
    try {
      const v1 = new Database(file)
      v1.exec(MIGRATIONS[0].sql)
      v1.pragma('user_version = 1')
      const insert = v1.prepare(`INSERT INTO leases (id, port, service, kind, requested_port, pid, pid_start, instance_id, name, project, command, created_at, last_listening)
        VALUES (@id, @port, @service, @kind, @requested_port, @pid, @pid_start, @instance_id, @name, @project, @command, @created_at, @last_listening)`)
      for (const [port, id] of [[3000, 'l-8f3a9c2b1d4e'], [3001, 'l-0123456789ab']] as const) insert.run(row(port, id))
      v1.close()

      const store = new Store(file)
      try {
        expect(store.leases().map((l) => [l.port, l.id, l.command])).to.deep.equal([[3000, 'l-8f3a9c2b1d4e', 'vite'], [3001, 'l-0123456789ab', 'vite']])
        expect(store.leaseById('l-8f3a9c2b1d4e')?.port).to.equal(3000)
        const id = newLeaseId(3002)
        store.transaction(() => store.insertLease(row(3002, id)))
        expect(store.leaseById(id)?.port).to.equal(3002)
        // An id naming a port whose lease is another's finds nothing, and deletes nothing.
        expect(store.leaseById('l-3001-deadbeef')).to.equal(undefined)
        expect(store.deleteLease({port: 3001, id: 'l-3001-deadbeef'})).to.equal(false)
        expect(store.deleteLease({port: 3000, id: 'l-8f3a9c2b1d4e'})).to.equal(true)
        expect(store.leases().map((l) => l.port)).to.deep.equal([3001, 3002])
      } finally {
        store.close()
      }
      const after = new Database(file, {readonly: true, fileMustExist: true})
      expect(after.pragma('user_version', {simple: true})).to.equal(SCHEMA_VERSION)
      // The only index left on leases is the holder's: no page for id is written by a commit.
      expect(after.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'leases'").pluck().all()).to.deep.equal(['leases_holder'])
      after.close()
    } finally {
      removeHome(home)
    }
  })
})

describe('store: schema 3, remembered names', () => {
  it('a schema 2 database gains remembered_names, its leases kept; a name is remembered per project, type and asked port', () => {
    const home = tempHome()
    const file = path.join(home, 'styxy.db')
    try {
      const v2 = new Database(file)
      for (const m of MIGRATIONS.filter((x) => x.version <= 2)) v2.exec(m.sql)
      v2.pragma('user_version = 2')
      v2.prepare(`INSERT INTO leases (id, port, service, kind, requested_port, pid, pid_start, instance_id, name, project, command, created_at, last_listening)
        VALUES ('l-3000-00000000', 3000, 'dev', 'bind', 3000, 1, 1, NULL, NULL, '/p', 'vite', 1, NULL)`).run()
      v2.close()
      const store = new Store(file)
      try {
        // A lease from before keeps its null name (and so has no URL).
        expect(store.leases().map((l) => [l.port, l.name])).to.deep.equal([[3000, null]])
        expect(store.rememberedName('/p', 'dev', 3000)).to.equal(undefined)
        store.transaction(() => store.rememberName('/p', 'dev', 3000, 'p', 10))
        store.transaction(() => store.rememberName('/p', 'api', 3000, 'api.p', 10))
        store.transaction(() => store.rememberName('/p', 'dev', 3000, 'p-2', 11))
        expect(store.rememberedName('/p', 'dev', 3000)).to.equal('p-2')
        expect(store.rememberedName('/p', 'api', 3000)).to.equal('api.p')
        expect(store.rememberedName('/q', 'dev', 3000)).to.equal(undefined)
        store.transaction(() => store.insertLease({...row(3001, newLeaseId(3001)), name: 'p'}))
        expect(store.namedLeases().map((l) => [l.port, l.name])).to.deep.equal([[3001, 'p']])
      } finally {
        store.close()
      }
      const after = new Database(file, {readonly: true, fileMustExist: true})
      expect(after.pragma('user_version', {simple: true})).to.equal(3)
      after.close()
    } finally {
      removeHome(home)
    }
  })
})
