import fs from 'node:fs'
import path from 'node:path'
import {createRequire} from 'node:module'
import {PROJECT_ROOT} from '../project.js'
import type {PidfdAddon} from './exits.js'

/** kernel/addon.zig, as JavaScript sees it. */
export interface NativeKernel extends PidfdAddon {
  sockets(port: number, listenOnly: boolean): Buffer
  /** Could a socket without SO_REUSEADDR bind this port now (null: the kernel would not say). */
  bindable(port: number): boolean | null
  stats(): {queries: number; examined: number}
  probe(): string
}

export function addonPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.STYXY_KERNEL_ADDON ? path.resolve(env.STYXY_KERNEL_ADDON) : path.join(PROJECT_ROOT, 'zig-out', 'lib', 'styxy_kernel.node')
}

/** The addon, or why it cannot be had (not built, or built for another ABI). */
export function loadNative(env: NodeJS.ProcessEnv = process.env): {addon: NativeKernel} | {error: string} {
  const file = addonPath(env)
  if (!fs.existsSync(file)) return {error: `${file} is missing (build it: make)`}
  try {
    return {addon: createRequire(import.meta.url)(file) as NativeKernel}
  } catch (error) {
    return {error: `${file} did not load (${(error as Error).message})`}
  }
}
