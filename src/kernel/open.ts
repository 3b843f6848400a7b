import {decodeSockets} from './decode.js'
import {loadNative} from './native.js'
import {DiagTables, ProcTables, type KernelTables} from './tables.js'
import {PidfdExits, PolledExits, type ExitWatcher} from './exits.js'

export interface Kernel {
  tables: KernelTables
  exits: ExitWatcher
}

/**
 * The native addon when it loads and the kernel answers it; else /proc, and the reason why (shown by `status`
 * and `doctor`). STYXY_KERNEL=proc chooses the fallback on purpose (a test of it, or a kernel that misbehaves).
 */
export function openKernel(env: NodeJS.ProcessEnv, onExit: (pids: number[]) => void): Kernel {
  if (env.STYXY_KERNEL === 'proc') {
    const why = 'STYXY_KERNEL=proc'
    return {tables: new ProcTables(why), exits: new PolledExits(why)}
  }
  const native = loadNative(env)
  if ('error' in native) return {tables: new ProcTables(native.error), exits: new PolledExits(native.error)}
  const addon = native.addon
  let tables: KernelTables
  try {
    addon.probe()
    tables = new DiagTables(addon, decodeSockets)
  } catch (error) {
    tables = new ProcTables(`the kernel refused sock_diag (${(error as Error).message})`)
  }
  let exits: ExitWatcher
  try {
    const watcher = new PidfdExits(addon, onExit)
    watcher.watch(process.pid)
    addon.unwatch(process.pid)
    exits = watcher
  } catch (error) {
    exits = new PolledExits(`no pidfd (${(error as Error).message})`)
  }
  return {tables, exits}
}
