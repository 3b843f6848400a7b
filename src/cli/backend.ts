// `styxy run --backend auto`: which interception reaches this command. LD_PRELOAD when the program binds
// through a dynamic libc; the seccomp supervisor when it can't (static binaries, Go). Scripts are followed
// through their #! line to the interpreter that will really run.
import fs from 'node:fs'
import path from 'node:path'
import {inspectElf, isElf, parseShebang} from '../core/elf.js'
import {setIdEffect, type SetIdFacts} from '../core/setid.js'

export type Backend = 'preload' | 'seccomp'
export type BackendFlag = Backend | 'auto'
export const BACKEND_FLAGS: readonly BackendFlag[] = ['auto', 'preload', 'seccomp']

export interface Choice {
  backend: Backend
  /** One line for --explain. */
  why: string
  /** The executable the kernel will run (a script's interpreter), when it was found: its set-id bits matter. */
  program?: string
}

/** What execvp would run: a name with a slash as given, otherwise the first executable file on PATH. */
export function resolveCommand(name: string, env: NodeJS.ProcessEnv, cwd = process.cwd()): string | null {
  // Most PATH entries do not hold the command: a throwing stat per miss (an Error with its stack each) adds up
  // on a long PATH, on every `styxy run`; existsSync builds nothing for a miss.
  const executable = (p: string) => {
    try {
      return fs.existsSync(p) && fs.statSync(p).isFile() && (fs.accessSync(p, fs.constants.X_OK), true)
    } catch {
      return false
    }
  }
  if (name.includes('/')) return executable(path.resolve(cwd, name)) ? path.resolve(cwd, name) : null
  for (const dir of (env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':')) {
    const p = path.resolve(cwd, dir || '.', name)
    if (executable(p)) return p
  }
  return null
}

function readerFor(fd: number) {
  return (offset: number, length: number) => {
    const buf = Buffer.alloc(length)
    return buf.subarray(0, fs.readSync(fd, buf, 0, length, offset))
  }
}

const MAX_SCRIPT_DEPTH = 4

/**
 * `env [OPTION]... [NAME=VALUE]... COMMAND`: whether it drops LD_PRELOAD on the way (-i, -u LD_PRELOAD, or an
 * LD_PRELOAD= assignment of its own), and the command it runs.
 */
export function throughEnv(args: string[]): {dropsPreload: boolean; command: string[]} {
  let dropsPreload = false
  let i = 0
  for (; i < args.length; i++) {
    const a = args[i]
    if (a === '-i' || a === '--ignore-environment' || a === '-') dropsPreload = true
    else if (a === '-u' || a === '--unset') dropsPreload ||= args[++i] === 'LD_PRELOAD'
    else if (a.startsWith('--unset=') || (a.startsWith('-u') && a.length > 2)) dropsPreload ||= a.replace(/^(--unset=|-u)/, '') === 'LD_PRELOAD'
    else if (a === '-C' || a === '--chdir' || a === '-S' || a === '--split-string') i++
    else if (a === '--') { i++; break }
    else if (a.startsWith('-')) continue
    else if (a.includes('=')) dropsPreload ||= a.startsWith('LD_PRELOAD=')
    else break
  }
  return {dropsPreload, command: args.slice(i)}
}

export function chooseBackend(argv: string[], env: NodeJS.ProcessEnv, cwd = process.cwd()): Choice {
  const first = resolveCommand(argv[0] ?? '', env, cwd)
  if (first && path.basename(first) === 'env' && argv.length > 1) {
    const inner = throughEnv(argv.slice(1))
    if (inner.dropsPreload) return {backend: 'seccomp', why: `${first}: clears the environment (LD_PRELOAD with it) before it runs ${inner.command[0] ?? 'its command'}`}
    if (inner.command.length) {
      const c = chooseBackend(inner.command, env, cwd)
      return {...c, why: `${first} → ${c.why}`}
    }
  }
  let name = argv[0] ?? ''
  const via: string[] = []
  for (let depth = 0; depth <= MAX_SCRIPT_DEPTH; depth++) {
    const file = depth === 0 ? first : resolveCommand(name, env, cwd)
    const chain = [...via, file ?? name].join(' → ')
    if (!file) return {backend: 'preload', why: `${chain}: not found on PATH, nothing to inspect`}
    let fd: number
    try {
      fd = fs.openSync(file, 'r')
    } catch (error) {
      return {backend: 'preload', why: `${chain}: cannot be read (${(error as NodeJS.ErrnoException).code}), assuming a dynamic program`}
    }
    try {
      const read = readerFor(fd)
      const head = read(0, 256)
      const bang = parseShebang(head)
      if (bang) {
        via.push(file)
        // `#!/usr/bin/env [-S] prog ...`: the program env will look up on PATH is what runs.
        if (path.basename(bang.interpreter) === 'env' && bang.arg) {
          const words = bang.arg.split(/[ \t]+/).filter((w) => w && !w.startsWith('-'))
          name = words[0] ?? bang.interpreter
        } else name = bang.interpreter
        continue
      }
      if (!isElf(head)) return {backend: 'preload', why: `${chain}: not an ELF executable, left to LD_PRELOAD`}
      const elf = inspectElf(read)
      if (!elf) return {backend: 'preload', why: `${chain}: unreadable ELF headers, left to LD_PRELOAD`}
      if (elf.go) return {backend: 'seccomp', why: `${chain}: a Go binary (its runtime calls bind(2) directly, past LD_PRELOAD)`, program: file}
      if (!elf.dynamic) return {backend: 'seccomp', why: `${chain}: statically linked (no dynamic loader, so LD_PRELOAD is never read)`, program: file}
      const secure = setIdEffect(setIdFacts(file)).kind === 'changes'
      return {backend: 'preload', why: `${chain}: dynamically linked (${elf.interpreter}), ${secure ? 'but set-id: the loader ignores LD_PRELOAD for it' : 'LD_PRELOAD reaches its bind()'}`, program: file}
    } finally {
      fs.closeSync(fd)
    }
  }
  return {backend: 'preload', why: `${via.join(' → ')}: #! scripts nested deeper than ${MAX_SCRIPT_DEPTH}, left to LD_PRELOAD`}
}

/** Whether the mount holding `file` ignores set-id bits: the deepest mount point above it in /proc/self/mountinfo. */
function onNosuidMount(file: string): boolean {
  let real: string
  let info: string
  try {
    real = fs.realpathSync(file)
    info = fs.readFileSync('/proc/self/mountinfo', 'utf8')
  } catch {
    return false
  }
  let best = ''
  let nosuid = false
  for (const line of info.split('\n')) {
    const f = line.split(' ')
    if (f.length < 6) continue
    const at = f[4].replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
    const under = at === '/' || real === at || real.startsWith(at + '/')
    // Later lines are mounted over earlier ones at the same point.
    if (under && at.length >= best.length) {
      best = at
      nosuid = f[5].split(',').includes('nosuid')
    }
  }
  return nosuid
}

function noNewPrivs(): boolean {
  try {
    return /^NoNewPrivs:\s*1$/m.test(fs.readFileSync('/proc/self/status', 'utf8'))
  } catch {
    return false
  }
}

/** What setIdEffect needs to know of an executable and of us. */
export function setIdFacts(file: string): SetIdFacts {
  const st = fs.statSync(file)
  const setid = (st.mode & 0o6000) !== 0
  return {
    mode: st.mode, uid: st.uid, gid: st.gid, callerUid: process.getuid?.() ?? -1, callerGid: process.getgid?.() ?? -1,
    // Only read when it matters: most programs have neither bit.
    nosuid: setid && onNosuidMount(file), noNewPrivs: setid && noNewPrivs(),
  }
}
