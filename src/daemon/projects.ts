import fs from 'node:fs'
import path from 'node:path'
import {projectOf, projectRoot} from '../shared/project.js'

// The project each lease and instance is recorded under (src/shared/project.ts has the rule). The interceptor
// applies the same rule to its own process when it looks up a move to follow, so both must name the same path.

/**
 * A bind's project: STYXY_PROJECT as the interceptor sent it (resolved against its working directory), else the
 * top of the working directory's worktree. A relative path without a working directory names nothing.
 */
export function bindProject(cwd: string | undefined, project: string | undefined): string | null {
  if (cwd !== undefined && path.isAbsolute(cwd)) return projectOf(cwd, {STYXY_PROJECT: project})
  return project !== undefined && path.isAbsolute(project) ? path.resolve(project) : null
}

/**
 * The project of a process that did not say (an allocation or an instance registered with a pid only): its
 * working directory's worktree top, as its own binds would be recorded. Null when /proc does not tell.
 */
export function projectOfPid(pid: number | undefined): string | null {
  if (pid === undefined) return null
  try {
    return projectRoot(fs.readlinkSync(`/proc/${pid}/cwd`))
  } catch {
    return null
  }
}

/**
 * A project named by a caller (`styxy allocate --project`, an API client), else the holder's. An absolute path
 * is normalized (a trailing slash would give the follow table another key); anything else is kept as given.
 */
export function namedProject(project: string | undefined, pid?: number): string | null {
  if (project === undefined || project === '') return projectOfPid(pid)
  return path.isAbsolute(project) ? path.resolve(project) : project
}
