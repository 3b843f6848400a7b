import {StyxyCommand} from '../src/cli/base.js'
import {probe} from '../src/client/ensure-daemon.js'
import {ExitCode} from '../src/cli/exit-codes.js'
import {resolvePaths} from '../src/paths.js'
import type {Status} from '../src/protocol/types.js'

function proxyLine(p: Status['proxy']): string {
  if (p === null) return '  proxy     off (STYXY_PROXY_PORT=off): servers have no *.localhost URL'
  return p.listening
    ? `  proxy     http://NAME.localhost:${p.port}/ (names proxy on ${p.host}:${p.port})`
    : `  proxy     off: ${p.host}:${p.port} ${p.error} (tried again in ${Math.ceil((p.retryMs ?? 0) / 1000)}s; names have no URL meanwhile)`
}

export default class StatusCommand extends StyxyCommand {
  static override description = 'Whether the daemon runs: version, uptime, counts, and where its files are'
  static override examples = ['<%= config.bin %> status', '<%= config.bin %> status --json']

  async run(): Promise<{running: true} & Status | {running: false; paths: ReturnType<typeof resolvePaths>}> {
    await this.parse(StatusCommand)
    if (!(await probe(this.client))) {
      const paths = resolvePaths()
      this.say(`Styxy daemon: not running (start it with: styxy daemon start)\n  state dir ${paths.stateDir}\n  socket    ${paths.socket}`)
      process.exitCode = ExitCode.NO
      return {running: false, paths}
    }
    const s = await this.client.status()
    this.say([
      `Styxy daemon: running (pid ${s.pid}, version ${s.version}, up ${s.uptimeSeconds}s)`,
      `  leases    ${s.leases}${Object.keys(s.leasesByService).length ? ` (${Object.entries(s.leasesByService).map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}`,
      `  instances ${s.instances}   moves ${s.reassignments}   event subscribers ${s.eventSubscribers}   runs ${s.watchedRuns ?? '-'}`,
      `  socket    ${s.paths.socket}`,
      s.tcp.listening === false
        ? `  tcp       off: ${s.tcp.host}:${s.tcp.port} ${s.tcp.error} (tried again in ${Math.ceil((s.tcp.retryMs ?? 0) / 1000)}s; the Unix socket serves meanwhile)`
        : `  tcp       ${s.tcp.host}:${s.tcp.port} (token ${s.paths.token})`,
      // An older daemon has no proxy field (undefined); null is a proxy turned off.
      ...(s.proxy === undefined ? [] : [proxyLine(s.proxy)]),
      `  kernel    ${s.kernel.sockets === 'sock_diag' ? 'sock_diag (netlink)' : '/proc/net/tcp'}, exits by ${s.kernel.exits === 'pidfd' ? `pidfd (${s.kernel.watching} watched)` : 'polling'}${s.kernel.reason ? ` (fallback: ${s.kernel.reason})` : ''}`,
      `  database  ${s.paths.database}`,
      `  logs      ${s.paths.log}, ${s.paths.audit}`,
    ].join('\n'))
    return {running: true, ...s}
  }
}
