// The CLI as it is run: `styxy run -- true` against a plain `true`, and the other commands' start-up against
// `node -e 0`, each the median of several runs taken in the same section.
import {CLI} from '../test/helpers/daemon.js'
import {benchDaemon, f, median, quick, row, section, stopDaemon, target, timeCommand} from './lib.js'

export async function cli(): Promise<void> {
  const runs = quick ? 5 : 15
  const d = await benchDaemon()
  try {
    section(`The CLI (median of ${runs} runs each)`, 'what | median ms | | overhead, ratio, target')
    // `styxy` as it is run: the command itself (bin/run.cjs, through its shebang, as `npm link` installs it), which
    // starts Node without NODE_EXTRA_CA_CERTS and hands the variable back to the command (see bin/run.cjs).
    // `node bin/run.cjs` is shown too: Node then reads that bundle before any of our code runs.
    timeCommand(CLI, ['run', '--', 'true'], d.env, 2) // the page cache, not the first run's disk
    const t = median(timeCommand('true', [], d.env, runs))
    const r = median(timeCommand(CLI, ['run', '--', 'true'], d.env, runs))
    const rn = median(timeCommand(process.execPath, [CLI, 'run', '--', 'true'], d.env, runs))
    const n0 = median(timeCommand(process.execPath, ['-e', '0'], d.env, runs))
    row('`true`', f(t), '', '')
    row('`node -e 0`', f(n0), '', d.env.NODE_EXTRA_CA_CERTS ? 'with NODE_EXTRA_CA_CERTS, as this machine sets it' : '')
    row('`styxy run -- true`', f(r), '', `overhead ${f(r - t)} ms over \`true\` (target <= 60)`)
    row('`node bin/run.cjs run -- true`', f(rn), '', `overhead ${f(rn - t)} ms`)
    target('`styxy run -- true` overhead over `true`', '<= 60 ms', `${f(r - t)} ms (${f(r)} vs ${f(t)} ms; node -e 0: ${f(n0)} ms)`, r - t <= 60)
    if (d.env.NODE_EXTRA_CA_CERTS) {
      // Node 20 reads and parses NODE_EXTRA_CA_CERTS (with its own root store) while it starts, before any of our
      // code runs. Without it, our own part shows.
      const {NODE_EXTRA_CA_CERTS: _, ...plain} = d.env
      const n0p = median(timeCommand(process.execPath, ['-e', '0'], plain, runs))
      const rp = median(timeCommand(CLI, ['run', '--', 'true'], plain, runs))
      row('`node -e 0`, without NODE_EXTRA_CA_CERTS', f(n0p), '', `Node's start-up with it: +${f(n0 - n0p)} ms`)
      row('`styxy run -- true`, without NODE_EXTRA_CA_CERTS', f(rp), '', `overhead ${f(rp - t)} ms; over node -e 0 ${f(rp - n0p)} ms`)
    }
    const status = median(timeCommand(CLI, ['status', '--json'], d.env, runs))
    const check = median(timeCommand(CLI, ['check', '1'], d.env, runs, true))
    row('`styxy status --json`', f(status), '', `${f(status / n0, 2)}x node -e 0 (target <= 3)`)
    row('`styxy check 1`', f(check), '', `${f(check / n0, 2)}x node -e 0 (target <= 3)`)
    target('`styxy status --json` / `node -e 0`', '<= 3', f(status / n0, 2), status / n0 <= 3)
    target('`styxy check 1` / `node -e 0`', '<= 3', f(check / n0, 2), check / n0 <= 3)
  } finally {
    await stopDaemon(d)
  }
}
