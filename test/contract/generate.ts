// The daemon's half of the bind exchange's contract fixtures: its answers to the interceptor's request, allow,
// remap and deny, as the bytes a real daemon writes to its Unix socket. `make contract` runs this after
// `zig build contract` (the interceptor's half); contract.test.ts regenerates into a temp dir and compares.
import fs from 'node:fs'
import path from 'node:path'
import {pathToFileURL} from 'node:url'
import type {BindRequest} from '../../src/protocol/types.js'
import {removeHome, startDaemon, tempHome} from '../helpers/daemon.js'
import {killAll, spawnHolder} from '../helpers/processes.js'
import {CONTRACT_FIXTURES, interceptorRequest, rawExchange} from '../helpers/proof.js'

/**
 * A type of its own, below the kernel's ephemeral range (a connection's local port there would make the daemon
 * look further) and outside every built-in range: the ports, the service and so the bytes are the same on every
 * run, unless something on this machine holds these ports.
 */
const SERVICE = 'contract'
const FIRST = 27610

export const ANSWERS = {allow: 'answer-allow.http', remap: 'answer-remap.http', deny: 'answer-deny.http'} as const

// What differs from one run to the next, pinned so a file changes only when the exchange does. Both keep their
// length, so Content-Length stays true: a Date is always 29 characters, a lease id's random part 8 hex digits.
const PINNED_DATE = 'Thu, 01 Jan 1970 00:00:00 GMT'
const pin = (raw: string) => raw
  .replace(/^(Date: ).{29}\r$/m, `$1${PINNED_DATE}\r`)
  .replace(/("leaseId":"l-\d+-)[0-9a-f]{8}"/, '$100000000"')

export async function generateAnswers(dir: string): Promise<void> {
  const home = tempHome('styxy-contract-')
  fs.mkdirSync(path.join(home, 'config', 'styxy'), {recursive: true})
  fs.writeFileSync(path.join(home, 'config', 'styxy', 'config.json'), JSON.stringify({
    serviceTypes: {[SERVICE]: {description: 'The contract fixtures', range: [FIRST, FIRST + 9]}},
  }))
  const holders = [spawnHolder(), spawnHolder(), spawnHolder()]
  const d = await startDaemon({home})
  try {
    const socket = {path: path.join(d.home, 'daemon.sock')}
    const ask = (req: BindRequest) => rawExchange(socket, interceptorRequest(JSON.stringify(req)), 10_000, 5000)
    const command = 'node server.js'
    // The first asker gets its port; a second is moved; a third that may not be moved is refused.
    const answers = {
      allow: await ask({pid: holders[0].pid!, port: FIRST, command, cwd: '/srv/app'}),
      remap: await ask({pid: holders[1].pid!, port: FIRST, command, cwd: '/srv/app'}),
      deny: await ask({pid: holders[2].pid!, port: FIRST, command, reassign: false}),
    }
    const expected = {allow: FIRST, remap: FIRST + 1, deny: FIRST}
    fs.mkdirSync(dir, {recursive: true})
    for (const action of ['allow', 'remap', 'deny'] as const) {
      const raw = answers[action]
      const body = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as {action?: string; port?: number}
      if (body.action !== action || body.port !== expected[action]) {
        throw new Error(`expected ${action} on ${expected[action]}, the daemon answered ${raw} (is something on this machine using ports ${FIRST}-${FIRST + 1}?)`)
      }
      fs.writeFileSync(path.join(dir, ANSWERS[action]), pin(raw))
    }
  } finally {
    await killAll(holders)
    await d.stop()
    removeHome(home)
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const dir = path.resolve(process.argv[2] ?? CONTRACT_FIXTURES)
  generateAnswers(dir).then(() => console.log(`wrote the daemon's answers into ${dir}`), (error) => {
    console.error(error)
    process.exitCode = 1
  })
}
