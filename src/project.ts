import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

// Compiled files live in dist/src/: the project root is two levels up from here.
export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')

export const VERSION: string = (JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as {version: string}).version

/** The interceptor library, by absolute path (LD_PRELOAD of a relative path breaks as soon as the child changes directory). */
export function preloadLibraryPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.STYXY_PRELOAD_LIB ? path.resolve(env.STYXY_PRELOAD_LIB) : path.join(PROJECT_ROOT, 'zig-out', 'lib', 'libstyxy_preload.so')
}

/** The seccomp backend's supervisor, built beside the library by build.zig. */
export function supervisorPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.STYXY_SUPERVISOR ? path.resolve(env.STYXY_SUPERVISOR) : path.join(PROJECT_ROOT, 'zig-out', 'bin', 'styxy-seccomp')
}
