import type net from 'node:net'
import type {KernelTables} from '../../kernel/tables.js'

// Who is at the other end of a dashboard connection, asked of the kernel. The login code and the cookie are not
// enough on their own on a machine with other users: `styxy dashboard` hands the link to xdg-open, and every
// process's argv is readable in /proc by every user; and a cookie for 127.0.0.1 is not kept apart by port, so a
// browser may send it to another user's server there. The dashboard therefore answers only connections made by
// a process of this user, whatever they carry. A connection's owner cannot change: it is asked once per
// connection (one lookup in the kernel's connection hash, kernel/sockdiag.zig), not per request.

export type PeerCheck = (socket: net.Socket) => {ours: true} | {ours: false; why: string}

export function peerCheck(kernel: Pick<KernelTables, 'connectionOwner'>, uid = process.geteuid?.() ?? 0): PeerCheck {
  const judged = new WeakMap<net.Socket, ReturnType<PeerCheck>>()
  return (socket) => {
    let verdict = judged.get(socket)
    if (verdict) return verdict
    verdict = judge(socket, kernel, uid)
    judged.set(socket, verdict)
    return verdict
  }
}

function judge(socket: net.Socket, kernel: Pick<KernelTables, 'connectionOwner'>, uid: number): ReturnType<PeerCheck> {
  const {remoteAddress, remotePort, localAddress, localPort} = socket
  if (!remoteAddress || !remotePort || !localAddress || !localPort) return {ours: false, why: 'the connection is already gone'}
  let owner: number | null
  try {
    owner = kernel.connectionOwner({address: remoteAddress, port: remotePort}, {address: localAddress, port: localPort})
  } catch (error) {
    // Not knowing is a refusal: this is an access check.
    return {ours: false, why: `the kernel would not say who made it (${(error as Error).message})`}
  }
  if (owner === null) return {ours: false, why: 'the kernel knows no such connection (made from another network namespace?)'}
  if (owner !== uid) return {ours: false, why: `it was made by a process of another user (uid ${owner})`}
  return {ours: true}
}
