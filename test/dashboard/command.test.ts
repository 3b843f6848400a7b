// `styxy dashboard` hands its link to the desktop's browser through xdg-open, only where there is a display.
// xdg-open here is a stand-in script on PATH that writes down what it was given (the desktop is not ours to open).
import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'
import {pollUntil} from '../../src/retry.js'
import {removeHome, runCli, startDaemon, type TestDaemon} from '../helpers/daemon.js'

describe('styxy dashboard opens its link where there is a display', () => {
  let d: TestDaemon
  let bin: string
  let seen: string
  before(async () => {
    d = await startDaemon()
    bin = path.join(d.home, 'bin')
    seen = path.join(d.home, 'opened.txt')
    fs.mkdirSync(bin)
    fs.writeFileSync(path.join(bin, 'xdg-open'), `#!/bin/sh\nprintf '%s\\n' "$1" >> '${seen}'\n`, {mode: 0o755})
  })
  after(async () => {
    await d.stop()
    removeHome(d.home)
  })

  it('with a display: xdg-open gets the link, and the link is printed too', async () => {
    const env = {...d.env, DISPLAY: ':99', WAYLAND_DISPLAY: undefined, PATH: `${bin}:${d.env.PATH}`}
    const out = await runCli(['dashboard'], env)
    expect(out.code, out.stderr).to.equal(0)
    const url = /(http:\/\/127\.0\.0\.1:\d+\/dashboard\/login\?code=[\w-]{43})/.exec(out.stdout)![1]
    expect(out.stdout).to.contain('Opened the dashboard in your browser')
    const opened = await pollUntil(() => (fs.existsSync(seen) ? fs.readFileSync(seen, 'utf8') : undefined), {
      timeoutMs: 10_000, firstMs: 10, maxMs: 200, timeoutError: () => new Error('xdg-open was never run'),
    })
    expect(opened.trim()).to.equal(url)
  })

  it('without a display, or with --no-open: only printed', async () => {
    fs.rmSync(seen, {force: true})
    const headless = await runCli(['dashboard', '--json'], {...d.env, DISPLAY: undefined, WAYLAND_DISPLAY: undefined, PATH: `${bin}:${d.env.PATH}`})
    expect(JSON.parse(headless.stdout)).to.include({opened: false, port: d.port})
    const asked = await runCli(['dashboard', '--no-open'], {...d.env, DISPLAY: ':99', PATH: `${bin}:${d.env.PATH}`})
    expect(asked.stdout).to.contain('Open this link to log in')
    expect(fs.existsSync(seen)).to.equal(false)
  })
})
