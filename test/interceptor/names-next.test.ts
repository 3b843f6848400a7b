// Next.js's HMR through the names proxy, in a real headless Chromium: issue 20 names Vite's and Next's. Vite's is
// proven in names-proxy.test.ts over a bare WebSocket; Next's protocol is its own, so here the browser speaks it.
import fs from 'node:fs'
import type net from 'node:net'
import path from 'node:path'
import {expect} from 'chai'
import type {Browser, Page} from 'playwright-core'
import {PROJECT_ROOT} from '../../src/project.js'
import {launchChromium} from '../helpers/browser.js'
import {CLI, removeHome, startDaemon, type TestDaemon} from '../helpers/daemon.js'
import {closeServer, listenOn, portOf} from '../helpers/processes.js'
import {startProgram, type Program} from '../helpers/programs.js'
import {makeWorktree, type Worktree} from '../helpers/worktrees.js'

const NEXT = path.join(PROJECT_ROOT, 'node_modules', 'next', 'dist', 'bin', 'next')
const page = (word: string) => `export default function Page() { return <h1 id="word">${word}</h1> }\n`

/** The deepest directory holding both paths. */
function commonAncestor(a: string, b: string): string {
  const x = a.split(path.sep)
  const y = b.split(path.sep)
  let i = 0
  while (i < x.length && i < y.length && x[i] === y[i]) i++
  return x.slice(0, i).join(path.sep) || path.sep
}

describe('names and URLs: a Next.js dev server\'s HMR through the names proxy (real Chromium)', function () {
  this.timeout(180_000)
  let d: TestDaemon
  let held: net.Server
  let heldPort: number
  let app: Worktree
  let next: Program
  let nextPort: number
  let browser: Browser

  before(async () => {
    d = await startDaemon()
    held = await listenOn('127.0.0.1')
    heldPort = portOf(held)
    app = makeWorktree('next-app')
    fs.mkdirSync(path.join(app.dir, 'app'))
    fs.writeFileSync(path.join(app.dir, 'app', 'layout.js'), 'export default function RootLayout({children}) { return <html><body>{children}</body></html> }\n')
    fs.writeFileSync(path.join(app.dir, 'app', 'page.js'), page('one'))
    fs.writeFileSync(path.join(app.dir, 'package.json'), '{"private": true}\n')
    // The app borrows the project's node_modules (next is a devDependency). Turbopack reads no file above its root,
    // and a linked node_modules resolves outside the app: its root is set above both, as a monorepo would set it.
    fs.symlinkSync(path.join(PROJECT_ROOT, 'node_modules'), path.join(app.dir, 'node_modules'))
    fs.writeFileSync(path.join(app.dir, 'next.config.mjs'), `export default {turbopack: {root: ${JSON.stringify(commonAncestor(app.dir, fs.realpathSync(PROJECT_ROOT)))}}}\n`)
    const env = {...d.env, NEXT_TELEMETRY_DISABLED: '1'} // nothing leaves this machine
    next = startProgram(process.execPath, [CLI, 'run', '--name', 'shop', '--', process.execPath, NEXT, 'dev', '--port', String(heldPort), '--hostname', '127.0.0.1'], env, {cwd: app.dir, preload: false})
    nextPort = Number((await next.waitFor(/Local:\s+http:\/\/127\.0\.0\.1:(\d+)/))[1])
    browser = await launchChromium()
  })
  after(async () => {
    await browser?.close()
    await next?.stop()
    await closeServer(held)
    await d.stop()
    removeHome(d.home)
    removeHome(app.dir)
  })

  it('is moved off the held port and named shop; its page, loaded by NAME.localhost, is updated live after a save', async () => {
    expect(nextPort).to.not.equal(heldPort)
    const lease = (await d.client.leases()).find((l) => l.port === nextPort)
    const proxyPort = (await d.client.health()).proxyPort!
    const url = `http://shop.localhost:${proxyPort}/`
    expect(lease).to.include({name: 'shop', url})
    const tab: Page = await browser.newPage()
    // Every request of the page: none may bypass the proxy (the page knows only its URL).
    const hosts = new Set<string>()
    tab.on('request', (r) => hosts.add(new URL(r.url()).host))
    // Next's client says when its HMR socket is up; a save before that would reload the page, not update it.
    const socket = tab.waitForEvent('websocket', {timeout: 60_000})
    const connected = tab.waitForEvent('console', {predicate: (m) => m.text().includes('[HMR] connected'), timeout: 60_000})
    await tab.goto(url)
    expect(await tab.textContent('#word')).to.equal('one')
    expect((await socket).url()).to.match(new RegExp(`^ws://shop\\.localhost:${proxyPort}/_next/`))
    await connected
    // A marker that a full reload would wipe: the update must arrive over the socket, not by reloading the page.
    await tab.evaluate(() => { (window as unknown as {kept: boolean}).kept = true })
    fs.writeFileSync(path.join(app.dir, 'app', 'page.js'), page('two'))
    await tab.waitForFunction(() => document.getElementById('word')?.textContent === 'two', null, {timeout: 60_000})
    expect(await tab.evaluate(() => (window as unknown as {kept?: boolean}).kept)).to.equal(true)
    expect([...hosts]).to.deep.equal([`shop.localhost:${proxyPort}`])
    await tab.close()
  })
})
