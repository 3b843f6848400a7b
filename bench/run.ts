// `make bench`: every figure measured next to its baseline in the same run, printed as absolute figures and
// ratios (these machines are shared and noisy: ratios travel better than milliseconds), then a summary of the
// targets. STYXY_BENCH_QUICK=1: shorter series, for a quick pass while developing. STYXY_BENCH_ONLY=idle,exits:
// only those sections (names below).
import fs from 'node:fs'
import os from 'node:os'
import {bindRoute} from './bind-route.js'
import {manyLeases} from './many-leases.js'
import {interceptor} from './interceptor.js'
import {connectFollow} from './connect.js'
import {idle} from './idle.js'
import {exitToRelease} from './exits.js'
import {loneBindQuiet} from './lone-bind.js'
import {loneBindBusyHost} from './busy-host.js'
import {cli} from './cli.js'
import {namesProxy} from './proxy.js'
import {cpuTimes, f, machineSince, quick, targets} from './lib.js'

// In this order: the busy host's TIME_WAIT sockets last a minute, so they come last; the idle window comes after
// the bind route's TCP requests have had time to leave the table.
const SECTIONS: [string, () => Promise<void>][] = [
  ['bind-route', bindRoute],
  ['many-leases', manyLeases],
  ['interceptor', interceptor],
  ['connect', connectFollow],
  ['idle', idle],
  ['exits', exitToRelease],
  ['lone-bind', loneBindQuiet],
  ['cli', cli],
  ['proxy', namesProxy],
  ['busy-host', loneBindBusyHost],
]

async function main(): Promise<void> {
  const only = process.env.STYXY_BENCH_ONLY?.split(',').map((s) => s.trim()).filter(Boolean)
  const unknown = only?.filter((s) => !SECTIONS.some(([name]) => name === s)) ?? []
  if (unknown.length) throw new Error(`STYXY_BENCH_ONLY: no section ${unknown.join(', ')} (sections: ${SECTIONS.map(([n]) => n).join(', ')})`)
  const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
  console.log(`# styxy bench (${quick ? 'quick' : 'full'}), ${new Date().toISOString()}`)
  console.log(`node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), kernel ${os.release()}; loadavg at start ${load}`)
  const started = Date.now()
  const from = cpuTimes()
  for (const [name, run] of SECTIONS) {
    if (only && !only.includes(name)) continue
    const t = Date.now()
    await run()
    console.log(`(section ${name}: ${f((Date.now() - t) / 1000, 0)} s)`)
  }

  console.log('\n## Summary\n\ntarget | wanted | measured | met')
  for (const t of targets) console.log(`${t.what} | ${t.target} | ${t.measured} | ${t.met ? 'yes' : 'NO'}`)
  console.log(`\n${targets.filter((t) => t.met).length} of ${targets.length} targets met; the whole run took ${f((Date.now() - started) / 1000, 0)} s; ${machineSince(from)}`)
}

await main()
