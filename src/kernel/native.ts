import {createRequire} from 'node:module'
import path from 'node:path'
import {PROJECT_ROOT} from '../project.js'

/**
 * zig-out/lib/styxy_kernel.node (kernel/addon.zig, which documents each call). What the kernel refuses is thrown
 * as Node's own system errors are: `code` 'EPERM', `errno` negative, `syscall`.
 */
export interface KernelAddon {
  /** 32-byte records (decodeSockets reads them) of the TCP sockets on `port`, every port when 0. */
  sockets(port: number, listenOnly: boolean): Buffer
  /** The one TCP socket whose local end is client:clientPort and whose peer is server:serverPort, as one record; null: none. */
  connection(client: string, clientPort: number, server: string, serverPort: number): Buffer | null
  /** Could a socket without SO_REUSEADDR bind this port now (null: the kernel would not say); kernel/bindable.zig. */
  bindable(port: number): boolean | null
  stats(): {queries: number; examined: number}
  /** 'sock_diag', or throws with the errno (the daemon then reads /proc/net/tcp instead). */
  probe(): 'sock_diag'
  /** The pids of watched processes that exited, in batches. A throw in `callback` is dropped. */
  onExit(callback: (pids: number[]) => void): void
  /** false: no such process. Throws with code 'ENOSYS' where the kernel has no pidfd_open. */
  watch(pid: number): boolean
  unwatch(pid: number): boolean
  watching(): number
  /** sd_notify: one datagram to the AF_UNIX socket `socket` ('@' first: abstract), from this process. */
  notify(socket: string, message: string): void
}

export type KernelLoad = {addon: KernelAddon; error: null} | {addon: null; error: string}

/** The addon, by absolute path; STYXY_KERNEL_ADDON overrides it. */
export function kernelAddonPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.STYXY_KERNEL_ADDON ? path.resolve(env.STYXY_KERNEL_ADDON) : path.join(PROJECT_ROOT, 'zig-out', 'lib', 'styxy_kernel.node')
}

/** Loads the addon, or says why it could not: the daemon falls back to /proc and says so. */
export function loadKernelAddon(file: string = kernelAddonPath()): KernelLoad {
  try {
    return {addon: createRequire(import.meta.url)(file) as KernelAddon, error: null}
  } catch (error) {
    return {addon: null, error: error instanceof Error ? error.message : String(error)}
  }
}
