import {expect} from 'chai'
import {DashboardSessions, LOGIN_CODE_MS, SESSION_IDLE_MS} from '../../src/daemon/dashboard/sessions.js'
import net from 'node:net'
import {cookieValue, dashboardRefusal} from '../../src/daemon/dashboard/access.js'
import type {PeerCheck} from '../../src/daemon/dashboard/peer.js'

// The clock is passed in: expiry is checked at its edges without waiting a minute (or twelve hours).
describe('dashboard sessions: login codes and sessions expire', () => {
  let now = 1_000_000
  const clock = () => now

  it('a login code works once, and not after 60 s', () => {
    const s = new DashboardSessions(clock)
    const late = s.newCode()
    expect(late.expiresAt).to.equal(now + LOGIN_CODE_MS)
    const soon = s.newCode()
    expect(s.redeem(soon.code)).to.match(/^[\w-]{43}$/)
    expect(s.redeem(soon.code)).to.equal(null)
    now += LOGIN_CODE_MS
    expect(s.redeem(late.code)).to.equal(null)
  })

  it('a session lasts 12 hours from its last use', () => {
    const s = new DashboardSessions(clock)
    const id = s.redeem(s.newCode().code)!
    now += SESSION_IDLE_MS - 1
    expect(s.check(id)).to.equal(true)
    now += SESSION_IDLE_MS - 1
    expect(s.check(id)).to.equal(true)
    now += SESSION_IDLE_MS
    expect(s.check(id)).to.equal(false)
    expect(s.check(undefined)).to.equal(false)
  })

  it('keeps at most 64 codes: a flood of links pushes out the oldest, not the daemon\'s memory', () => {
    const s = new DashboardSessions(clock)
    const first = s.newCode().code
    for (let i = 0; i < 64; i++) s.newCode()
    expect(s.redeem(first)).to.equal(null)
  })

  it('reads its cookie among others, and only its own name', () => {
    expect(cookieValue('a=1; styxy_dashboard_9876=abc; b=2', 'styxy_dashboard_9876')).to.equal('abc')
    expect(cookieValue('styxy_dashboard_98760=abc', 'styxy_dashboard_9876')).to.equal(undefined)
    expect(cookieValue(undefined, 'x')).to.equal(undefined)
  })

  it('judges Host, then Origin, then whose the connection is, then the session', () => {
    const s = new DashboardSessions(clock)
    const id = s.redeem(s.newCode().code)!
    const cookie = `styxy_dashboard_9876=${id}`
    // The connection's owner is asked of the kernel in the daemon (peer.ts); here a verdict stands in for it.
    const ours: PeerCheck = () => ({ours: true})
    const stranger: PeerCheck = () => ({ours: false, why: 'it was made by a process of another user (uid 65534)'})
    const judge = (headers: Record<string, string>, transport: 'tcp' | 'unix', peer = ours) => dashboardRefusal({headers, socket: new net.Socket()}, transport, 9876, s, peer)?.code ?? null
    expect(judge({host: 'x.localhost:9876', origin: 'http://evil', cookie}, 'tcp', stranger)).to.equal('FORBIDDEN_HOST')
    expect(judge({host: 'LOCALHOST:9876', origin: 'http://evil'}, 'tcp', stranger)).to.equal('FORBIDDEN_ORIGIN')
    expect(judge({host: 'localhost:9876', origin: 'http://localhost:9876', cookie}, 'tcp', stranger)).to.equal('FORBIDDEN_PEER')
    expect(judge({host: 'localhost:9876', origin: 'http://localhost:9876'}, 'tcp')).to.equal('NO_SESSION')
    expect(judge({host: 'localhost:9876', origin: 'http://localhost:9876', cookie}, 'tcp')).to.equal(null)
    expect(judge({host: 'localhost:9876', cookie}, 'unix')).to.equal('NOT_FOUND')
  })
})
