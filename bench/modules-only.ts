// For bench/memory.ts: a Node process that loads everything the daemon loads (its entry's modules: koa,
// @koa/router, ws, zod, better-sqlite3 and its native library, the kernel addon) and starts nothing, so the
// RSS of the code alone sits between bare Node's and the daemon's.
import Database from 'better-sqlite3'
import {kernelAddonPath, loadKernelAddon} from '../src/kernel/native.js'

await import('../src/daemon/foreground.js')
new Database(':memory:').close() // better-sqlite3 loads its native library at the first database
loadKernelAddon(kernelAddonPath(process.env))
setInterval(() => {}, 1e9)
process.stdout.write('ready\n')
