// What a set-user-ID or set-group-ID program really does under `styxy run`. The kernel changes the identity
// only where it can (not on a nosuid mount, not under no_new_privs, not to the identity the caller has
// already); where it does, it runs the program in secure-execution mode (AT_SECURE), in which the dynamic loader
// ignores LD_PRELOAD paths and removes LD_PRELOAD from the environment. The seccomp backend's filter needs
// no_new_privs (an unprivileged process can load a filter only under it), and under no_new_privs the kernel
// ignores the set-user-ID and set-group-ID bits: the program runs as the caller.

export interface SetIdFacts {
  /** st_mode, st_uid, st_gid of the executable the kernel will run. */
  mode: number
  uid: number
  gid: number
  /** The caller's real ids. */
  callerUid: number
  callerGid: number
  /** The executable's mount ignores set-id bits. */
  nosuid: boolean
  /** The caller already runs under no_new_privs (a sandbox): set-id bits are ignored for everything it starts. */
  noNewPrivs: boolean
}

export type SetIdEffect =
  | {kind: 'none'}
  /** The bits are there, but the kernel will not change the identity: nothing differs from a plain program. */
  | {kind: 'inert'; bits: string; why: string}
  /** The identity changes when the program is run plainly. */
  | {kind: 'changes'; bits: string; to: string}

const S_ISUID = 0o4000
const S_ISGID = 0o2000
const S_IXGRP = 0o0010

export function setIdEffect(f: SetIdFacts): SetIdEffect {
  const setuid = (f.mode & S_ISUID) !== 0
  // Set-group-ID without group execute is the mandatory-locking mark, not set-group-ID.
  const setgid = (f.mode & S_ISGID) !== 0 && (f.mode & S_IXGRP) !== 0
  if (!setuid && !setgid) return {kind: 'none'}
  const bits = [setuid && `set-user-ID (uid ${f.uid})`, setgid && `set-group-ID (gid ${f.gid})`].filter(Boolean).join(' and ')
  if (f.nosuid) return {kind: 'inert', bits, why: 'its file system is mounted nosuid, so the kernel ignores the bits'}
  if (f.noNewPrivs) return {kind: 'inert', bits, why: 'this session already runs under no_new_privs, so the kernel ignores the bits'}
  const to = [setuid && f.uid !== f.callerUid && `uid ${f.uid}`, setgid && f.gid !== f.callerGid && `gid ${f.gid}`].filter(Boolean).join(' and ')
  if (!to) return {kind: 'inert', bits, why: `you are uid ${f.callerUid}, gid ${f.callerGid} already, so it runs as you either way and LD_PRELOAD reaches it`}
  return {kind: 'changes', bits, to}
}

/** The one line `styxy run` says about it (--explain always; otherwise only when the identity would change). */
export function describeSetId(program: string, effect: SetIdEffect, backend: 'preload' | 'seccomp', callerUid: number): string | null {
  if (effect.kind === 'none') return null
  if (effect.kind === 'inert') return `${program} is ${effect.bits}, but ${effect.why}`
  if (backend === 'seccomp') {
    return `${program} is ${effect.bits}: under the seccomp backend it runs without that identity, as you (uid ${callerUid}), since the filter needs no_new_privs; --backend preload keeps its identity but not its binds`
  }
  return `${program} is ${effect.bits}: it runs as ${effect.to}, so the loader ignores LD_PRELOAD (secure execution) and drops it from the environment: neither its binds nor those of what it starts are coordinated`
}
