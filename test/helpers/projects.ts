import {execFileSync} from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

/**
 * A git worktree of its own (a temp dir with `git init`): a project. Its real path, since that is what a process
 * started in it sees as its working directory. Removed by the caller with removeHome.
 */
export function makeWorktree(prefix = 'styxy-wt-'): string {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)))
  execFileSync('git', ['init', '-q', dir], {stdio: 'ignore'})
  return dir
}
