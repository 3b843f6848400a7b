import {expect} from 'chai'
import {describeSetId, setIdEffect, type SetIdFacts} from '../../src/core/setid.js'

const facts = (over: Partial<SetIdFacts>): SetIdFacts => ({mode: 0o100755, uid: 1000, gid: 1000, callerUid: 1000, callerGid: 1000, nosuid: false, noNewPrivs: false, ...over})

describe('set-id programs: what the kernel really does', () => {
  it('no bits: nothing to say', () => {
    expect(setIdEffect(facts({}))).to.deep.equal({kind: 'none'})
    expect(describeSetId('/bin/x', {kind: 'none'}, 'preload', 1000)).to.equal(null)
  })

  it('set-user-ID to another user changes the identity', () => {
    expect(setIdEffect(facts({mode: 0o104755, uid: 0}))).to.deep.equal({kind: 'changes', bits: 'set-user-ID (uid 0)', to: 'uid 0'})
  })

  it('set-group-ID to another group changes it too; without group execute the bit is not set-group-ID', () => {
    expect(setIdEffect(facts({mode: 0o102755, gid: 42}))).to.include({kind: 'changes', to: 'gid 42'})
    expect(setIdEffect(facts({mode: 0o102745, gid: 42}))).to.deep.equal({kind: 'none'})
  })

  it('to the ids the caller has, on a nosuid mount, or under no_new_privs: inert, and why', () => {
    expect(setIdEffect(facts({mode: 0o106755}))).to.include({kind: 'inert'})
    expect((setIdEffect(facts({mode: 0o104755, uid: 0, nosuid: true})) as {why: string}).why).to.contain('nosuid')
    expect((setIdEffect(facts({mode: 0o104755, uid: 0, noNewPrivs: true})) as {why: string}).why).to.contain('no_new_privs')
  })

  it('says what each backend does with an identity change', () => {
    const e = setIdEffect(facts({mode: 0o104755, uid: 0}))
    expect(describeSetId('/usr/bin/sudo', e, 'preload', 1000)).to.equal('/usr/bin/sudo is set-user-ID (uid 0): it runs as uid 0, so the loader ignores LD_PRELOAD (secure execution) and drops it from the environment: neither its binds nor those of what it starts are coordinated')
    expect(describeSetId('/usr/bin/sudo', e, 'seccomp', 1000)).to.contain('under the seccomp backend it runs without that identity, as you (uid 1000)')
  })
})
