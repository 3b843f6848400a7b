import {expect} from 'chai'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {inspectElf, parseShebang} from '../../src/core/elf.js'
import {chooseBackend, resolveCommand, throughEnv} from '../../src/cli/backend.js'
import {BINDPROBE, HTTPSTATIC} from '../helpers/programs.js'

const readerOf = (file: string) => {
  const data = fs.readFileSync(file)
  return (offset: number, length: number) => data.subarray(offset, offset + length)
}

describe('ELF inspection and the auto backend', () => {
  let dir: string
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'styxy-elf-')) })
  after(() => fs.rmSync(dir, {recursive: true, force: true}))

  const script = (name: string, text: string) => {
    const p = path.join(dir, name)
    fs.writeFileSync(p, text, {mode: 0o755})
    return p
  }

  it('tells a dynamic program from a static one by its PT_INTERP', () => {
    expect(inspectElf(readerOf(BINDPROBE))).to.deep.include({bits: 64, dynamic: true, go: false})
    expect(inspectElf(readerOf(BINDPROBE))!.interpreter).to.match(/ld-linux/)
    expect(inspectElf(readerOf(HTTPSTATIC))).to.deep.include({bits: 64, dynamic: false, go: false})
  })

  it('refuses what is not ELF, or ELF cut short, without throwing', () => {
    expect(inspectElf(() => Buffer.from('#!/bin/sh\n'))).to.equal(null)
    const head = readerOf(BINDPROBE)(0, 20)
    expect(inspectElf((o, l) => head.subarray(o, o + l))).to.equal(null)
    // Headers pointing past the end of a truncated file read as "nothing there".
    const cut = readerOf(BINDPROBE)(0, 64)
    expect(inspectElf((o, l) => cut.subarray(o, o + l))).to.deep.include({dynamic: false, go: false})
  })

  it('parses #! lines the way the kernel does: one optional argument', () => {
    expect(parseShebang(Buffer.from('#!/bin/sh\necho'))).to.deep.equal({interpreter: '/bin/sh'})
    expect(parseShebang(Buffer.from('#! /usr/bin/env -S node --inspect\n'))).to.deep.equal({interpreter: '/usr/bin/env', arg: '-S node --inspect'})
    expect(parseShebang(Buffer.from('#!\n'))).to.equal(null)
    expect(parseShebang(Buffer.from('echo'))).to.equal(null)
  })

  it('resolves a command as execvp would, and follows scripts to their interpreter', () => {
    const env = {PATH: `${dir}:/usr/bin:/bin`}
    expect(resolveCommand('sh', env)).to.match(/\/sh$/)
    expect(resolveCommand('no-such-command-styxy', env)).to.equal(null)
    const direct = script('direct', `#!${HTTPSTATIC}\n`)
    expect(chooseBackend([direct], env)).to.deep.include({backend: 'seccomp'})
    expect(chooseBackend([direct], env).why).to.contain(`${direct} → ${HTTPSTATIC}: statically linked`)
    fs.symlinkSync(HTTPSTATIC, path.join(dir, 'static-server'))
    script('via-env', '#!/usr/bin/env -S static-server --threads 2\n')
    expect(chooseBackend(['via-env'], env)).to.deep.include({backend: 'seccomp'})
    expect(chooseBackend(['sh'], env)).to.deep.include({backend: 'preload'})
    script('loop', `#!${path.join(dir, 'loop')}\n`)
    expect(chooseBackend(['loop'], env).why).to.contain('nested deeper')
    expect(chooseBackend(['no-such-command-styxy'], env)).to.deep.include({backend: 'preload'})
  })

  it('sees through env: a cleared environment needs seccomp, otherwise the command env runs decides', () => {
    expect(throughEnv(['-i', 'PATH=/bin', 'python3', '-m', 'http.server'])).to.deep.equal({dropsPreload: true, command: ['python3', '-m', 'http.server']})
    expect(throughEnv(['-u', 'LD_PRELOAD', 'node'])).to.deep.equal({dropsPreload: true, command: ['node']})
    expect(throughEnv(['--unset=LD_PRELOAD', 'node']).dropsPreload).to.equal(true)
    expect(throughEnv(['LD_PRELOAD=', 'node']).dropsPreload).to.equal(true)
    expect(throughEnv(['-u', 'HOME', 'FOO=1', '-C', '/tmp', 'node', '-i'])).to.deep.equal({dropsPreload: false, command: ['node', '-i']})
    const env = {PATH: '/usr/bin:/bin'}
    expect(chooseBackend(['env', '-i', 'sh'], env)).to.deep.include({backend: 'seccomp'})
    expect(chooseBackend(['env', '-i', 'sh'], env).why).to.contain('clears the environment')
    expect(chooseBackend(['env', 'FOO=1', HTTPSTATIC], env)).to.deep.include({backend: 'seccomp'})
    expect(chooseBackend(['env', 'FOO=1', 'sh'], env)).to.deep.include({backend: 'preload'})
  })
})
