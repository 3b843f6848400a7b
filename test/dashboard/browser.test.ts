// The dashboard in a real headless Chromium (Debian's, through playwright-core): the login link `styxy dashboard`
// prints, real servers under the real library, a move and a follow seen live, and the page's buttons.
import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'
import type {Browser, BrowserContext, Page} from 'playwright-core'
import type WebSocket from 'ws'
import {PROJECT_ROOT} from '../../src/project.js'
import type {DashboardLogin} from '../../src/protocol/types.js'
import type {StyxyEvent} from '../../src/protocol/events.js'
import {removeHome, runCli, startDaemon, type TestDaemon} from '../helpers/daemon.js'
import {nextEvent, opened} from '../helpers/events.js'
import {NOTICE, startProgram, type Program} from '../helpers/programs.js'
import {launchChromium} from '../helpers/browser.js'

/** Resolves with the wall-clock time (ms) at which `selector` first matched in the page, observed from inside it. */
async function watchFor(page: Page, selector: string): Promise<() => Promise<number>> {
  await page.evaluate((sel) => {
    const w = window as unknown as {seenAt?: Record<string, number>}
    w.seenAt ??= {}
    const look = () => {
      if (w.seenAt![sel] === undefined && document.querySelector(sel)) w.seenAt![sel] = Date.now()
    }
    new MutationObserver(look).observe(document.body, {childList: true, subtree: true})
    look()
  }, selector)
  return async () => {
    await page.waitForSelector(selector, {timeout: 10_000})
    return page.evaluate((sel) => (window as unknown as {seenAt: Record<string, number>}).seenAt[sel], selector)
  }
}

describe('dashboard: in a real headless Chromium', function () {
  this.timeout(120_000)
  let d: TestDaemon
  let browser: Browser
  let context: BrowserContext
  let page: Page
  let events: WebSocket
  let myapp: string
  let other: string
  let asked: number
  let movedTo: number
  const programs: Program[] = []

  before(async () => {
    d = await startDaemon()
    browser = await launchChromium()
    myapp = path.join(d.home, 'myapp')
    other = path.join(d.home, 'api-worktree')
    for (const dir of [myapp, other]) fs.mkdirSync(dir)
    events = d.client.events()
    await opened(events)
  })
  after(async () => {
    events?.close()
    await context?.close()
    await browser?.close()
    await Promise.all(programs.map((p) => p.stop()))
    await d.stop()
    removeHome(d.home)
  })

  it('logs in through the link `styxy dashboard` prints, and lists a running server with its port and command', async () => {
    asked = (await d.client.suggest('dev', 1)).ports[0]
    const py = startProgram('python3', ['-u', '-m', 'http.server', String(asked), '--bind', '127.0.0.1'], d.env, {cwd: other})
    programs.push(py)
    await py.waitFor(/Serving HTTP on \S+ port (\d+)/)
    // A lease nothing listens on: the page must flag it.
    await d.client.allocate({service: 'api', name: 'backend', project: myapp})

    const cli = await runCli(['dashboard', '--no-open', '--json'], d.env)
    expect(cli.code, cli.stderr).to.equal(0)
    const login = JSON.parse(cli.stdout) as DashboardLogin & {opened: boolean}
    expect(login.url).to.match(new RegExp(`^http://127\\.0\\.0\\.1:${d.port}/dashboard/login\\?code=[\\w-]{43}$`))
    expect(login.opened).to.equal(false)

    context = await browser.newContext({viewport: {width: 1280, height: 800}})
    page = await context.newPage()
    const errors: string[] = []
    page.on('pageerror', (e) => errors.push(e.message))
    await page.goto(login.url)
    expect(page.url()).to.equal(`http://127.0.0.1:${d.port}/dashboard/`)
    const cookie = (await context.cookies()).find((c) => c.name === `styxy_dashboard_${d.port}`)
    expect(cookie).to.include({httpOnly: true, sameSite: 'Strict', path: '/dashboard'})

    const row = page.locator(`tr[data-port="${asked}"]`)
    await row.waitFor()
    const text = await row.textContent()
    expect(text).to.contain(String(asked)).and.contain('http.server').and.contain(`pid ${py.child.pid}`)
    expect(await row.getAttribute('data-listening')).to.equal('true')
    // Its URL by name, as a link, the one `styxy url` gives (issue 20: the dashboard shows every server's URL).
    const lease = (await d.client.leases()).find((l) => l.port === asked)!
    expect(lease.name, 'the server was named').to.be.a('string')
    const byName = await runCli(['url', lease.name!], d.env)
    expect(byName.code, byName.stderr).to.equal(0)
    expect(await row.locator('a.url').getAttribute('href')).to.equal(byName.stdout.trim()).and.match(/^http:\/\/[\w.-]+\.localhost:\d+\/$/)
    expect(await page.locator(`section.project[data-project="${other}"]`).count()).to.equal(1)
    const quiet = page.locator(`section.project[data-project="${myapp}"] tr[data-listening="false"]`)
    expect(await quiet.textContent()).to.contain('backend').and.contain('no listener')
    await page.locator('#connection[data-state="live"]').waitFor()
    expect(errors).to.deep.equal([])
  })

  it('shows a move within 1 s of it happening, and a follow', async () => {
    const created = nextEvent(events, (e) => e.type === 'lease.created' && e.data.requestedPort === asked && e.data.port !== asked)
    const moveSeen = await watchFor(page, `#activity li[data-kind="move"][data-asked="${asked}"]`)
    const py = startProgram('python3', ['-u', '-m', 'http.server', String(asked), '--bind', '127.0.0.1'], d.env, {cwd: myapp})
    programs.push(py)
    const e = await created as Extract<StyxyEvent, {type: 'lease.created'}>
    movedTo = e.data.port
    const [, from, to] = await py.waitFor(NOTICE)
    expect([Number(from), Number(to)]).to.deep.equal([asked, movedTo])
    const rowSeen = await watchFor(page, `section.project[data-project="${myapp}"] tr[data-port="${movedTo}"]`)
    const happened = Date.parse(e.at)
    const inList = await moveSeen()
    const inTable = await rowSeen()
    console.log(`      move in the activity list ${inList - happened} ms after the event, its row ${inTable - happened} ms after`)
    expect(inList - happened).to.be.below(1000)
    expect(inTable - happened).to.be.below(1000)
    const item = await page.locator(`#activity li[data-kind="move"][data-asked="${asked}"]`).textContent()
    expect(item).to.contain(`:${asked}`).and.contain(`:${movedTo}`)
    expect(await page.locator(`tr[data-port="${movedTo}"] td.port`).textContent()).to.contain(`asked ${asked}`)

    // A client of myapp asking for the port it knows is sent on to myapp's server: a follow, live.
    const followed = nextEvent(events, (f) => f.type === 'connect.followed' && f.data.from === asked)
    const client = startProgram('python3', ['-c', `import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:${asked}/").status)`], d.env, {cwd: myapp})
    expect((await client.exited).code, client.stderr()).to.equal(0)
    await followed
    const follow = page.locator(`#activity li[data-kind="follow"][data-asked="${asked}"]`)
    await follow.waitFor({timeout: 5000})
    expect(await follow.textContent()).to.contain(`:${movedTo}`)

    if (process.env.STYXY_SCREENSHOTS === '1') {
      const dir = path.join(PROJECT_ROOT, 'docs', 'images')
      fs.mkdirSync(dir, {recursive: true})
      // The moved server as a reader would see it a moment later: listening (the page asks again 1 s after a lease).
      await page.locator(`tr[data-port="${movedTo}"][data-listening="true"]`).waitFor({timeout: 5000})
      await page.emulateMedia({colorScheme: 'light'})
      await page.screenshot({path: path.join(dir, 'dashboard-light.png')})
      await page.emulateMedia({colorScheme: 'dark'})
      await page.screenshot({path: path.join(dir, 'dashboard-dark.png')})
      await page.emulateMedia({colorScheme: 'light'})
    }
  })

  it('a release clicked in the page removes the lease', async () => {
    const lease = (await d.client.leases()).find((l) => l.port === movedTo)!
    const released = nextEvent(events, (e) => e.type === 'lease.released' && e.data.id === lease.id)
    await page.locator(`tr[data-lease-id="${lease.id}"] button.release`).click()
    const e = await released
    expect(e.type === 'lease.released' && e.data.reason).to.equal('released')
    expect((await d.client.leases()).map((l) => l.id)).to.not.include(lease.id)
    await page.locator(`tr[data-lease-id="${lease.id}"]`).waitFor({state: 'detached', timeout: 5000})
  })

  it('a stop clicked in the page ends the server, and its lease with it', async () => {
    const py = programs[0]
    const lease = (await d.client.leases()).find((l) => l.pid === py.child.pid)!
    const released = nextEvent(events, (e) => e.type === 'lease.released' && e.data.id === lease.id)
    page.once('dialog', (dialog) => void dialog.accept())
    await page.locator(`tr[data-lease-id="${lease.id}"] button.stop`).click()
    const exit = await py.exited
    expect(exit.signal ?? exit.code).to.be.oneOf(['SIGTERM', 0, 143, -15])
    await released
    await page.locator('#notice', {hasText: `Stopped pid ${py.child.pid}`}).waitFor({timeout: 10_000})
    await page.locator(`tr[data-lease-id="${lease.id}"]`).waitFor({state: 'detached', timeout: 5000})
  })

  it('a daemon restart logs the page out (sessions live in its memory), and the page says what to do', async () => {
    const {home, port} = d
    events.close()
    await d.stop()
    d = await startDaemon({home, port})
    await page.locator('#connection[data-state="out"]').waitFor({timeout: 20_000})
    expect(await page.locator('#notice').textContent()).to.contain('Logged out').and.contain('styxy dashboard')
  })
})
