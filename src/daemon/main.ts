// The daemon's own entry point, started detached by the CLI without loading oclif (less memory, faster start).
import {runForeground} from './foreground.js'
import {AlreadyRunningError} from './state-dir.js'

try {
  await runForeground()
} catch (error) {
  process.stderr.write(`styxy daemon: ${(error as Error).message}\n`)
  process.exitCode = error instanceof AlreadyRunningError ? 1 : 5
}
