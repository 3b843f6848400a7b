import fs from 'node:fs'
import path from 'node:path'

/**
 * A process's project: the top of its git worktree (the nearest ancestor of its working directory holding
 * `.git`, a directory in a main checkout or a file in a linked worktree), else the directory itself.
 * interceptor/project.zig applies the same rule, so a client and the daemon name the same project.
 */
export function projectRoot(dir: string): string {
  const start = path.resolve(dir)
  for (let d = start; ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, '.git'))) return d
    if (path.dirname(d) === d) return start
  }
}

/** STYXY_PROJECT (set by `styxy run --project DIR`) wins over the working directory. */
export function projectOf(cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  const forced = env.STYXY_PROJECT
  return forced ? path.resolve(cwd, forced) : projectRoot(cwd)
}

const FNV_OFFSET = 0xcbf29ce484222325n
const FNV_PRIME = 0x100000001b3n
const MASK = 0xffffffffffffffffn

/** FNV-1a 64 of the project path's UTF-8 bytes: the follow table's key (docs/follow-table.md). */
export function projectHash(project: string): bigint {
  let h = FNV_OFFSET
  for (const b of Buffer.from(project, 'utf8')) h = ((h ^ BigInt(b)) * FNV_PRIME) & MASK
  return h
}
