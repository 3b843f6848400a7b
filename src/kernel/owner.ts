import {decodeSockets} from './decode.js'
import {kernelAddonPath, loadKernelAddon, type KernelAddon} from './native.js'
import {isOurListener, tcpListenerIsOurs as fromProcTable} from '../shared/proc-net.js'

let addon: KernelAddon | null | undefined

/**
 * Is the IPv4 listener on host:port (or on the wildcard) this user's? Port 9876 is one port for every user of
 * the machine: the token must never be sent to another user's listener there. Asked of sock_diag for that one
 * port when the addon loads (tens of µs), else read from /proc/net/tcp, whose cost grows with every socket on
 * the host (tens of ms with a test run's TIME_WAIT leftovers, on every TCP request).
 */
export function tcpListenerIsOurs(host: string, port: number, env: NodeJS.ProcessEnv = process.env): boolean {
  if (addon === undefined) addon = loadKernelAddon(kernelAddonPath(env)).addon
  if (addon !== null) {
    try {
      const ours = isOurListener(host, port)
      return decodeSockets(addon.sockets(port, true)).some((s) => s.family === 'ipv4' && ours(s))
    } catch {
      // The kernel refused netlink: the table it is.
    }
  }
  return fromProcTable(host, port)
}
