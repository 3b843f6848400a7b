// The daemon's own entry point, started detached by the CLI without loading oclif (less memory, faster start).
// The rest is loaded from here, inside the try: with a low hard fd limit the module loader's parallel reads
// run out of descriptors, and that must end in a line naming the limit (the starter shows it) and exit 5,
// never an uncaught EMFILE, whose exit 1 the starter would take for "another daemon is running".
import {fdExhaustion, openFileLimit} from './fd-limit.js'

// Read now: once the loader has run out, reading /proc/self/limits needs a descriptor too.
const limit = openFileLimit()
try {
  const {runForeground} = await import('./foreground.js')
  await runForeground()
  // Stopped, lock released: whatever still holds the event loop (a subscriber's close handshake) must not keep
  // a process without its lock alive beside the next daemon.
  setTimeout(() => process.exit(), 1000).unref()
} catch (error) {
  process.stderr.write(`styxy daemon: ${fdExhaustion(error, limit) ?? (error as Error).message}\n`)
  process.exitCode = (error as {code?: string})?.code === 'ALREADY_RUNNING' ? 1 : 5
}
