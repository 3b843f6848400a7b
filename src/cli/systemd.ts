// The systemd user units of `styxy daemon install`, as text: a pure function of where things are.

export const UNITS = {service: 'styxy.service', socket: 'styxy.socket', tcp: 'styxy-tcp.socket'} as const

export interface UnitInputs {
  /** The node binary and its flags, and the daemon's entry script (absolute paths). */
  node: string
  nodeFlags: readonly string[]
  entry: string
  socket: string
  /** The TCP fallback's port on 127.0.0.1; null: no TCP socket unit (the daemon binds it itself, port 0). */
  port: number | null
  log: string
  /** The daemon's environment: where its state, socket and config are, whatever the manager's own is. */
  environment: Record<string, string>
}

export interface UnitFile {
  name: string
  text: string
}

/**
 * systemd's quoting: '%' starts a specifier everywhere, '$' a variable in ExecStart= only; a word with spaces,
 * quotes or backslashes is double-quoted.
 */
function word(s: string, exec = true): string {
  const escaped = exec ? s.replace(/%/g, '%%').replace(/\$/g, '$$$$') : s.replace(/%/g, '%%')
  return /[\s"'\\;]/.test(escaped) || escaped === '' ? `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"` : escaped
}

/** A path as a setting's whole value (ListenStream=, append:): only specifiers need escaping. */
const pathValue = (s: string) => s.replace(/%/g, '%%')

/**
 * Two socket units, not one: a unit whose TCP port is taken (another user's daemon) fails as a whole, and would
 * take the Unix socket, the main transport, down with it. Apart, the Unix socket always comes up; without its
 * TCP fd the daemon binds the port itself and retries in the background (tcp-listener.ts).
 */
export function renderUnits(i: UnitInputs): UnitFile[] {
  const sockets = [UNITS.socket, ...(i.port === null ? [] : [UNITS.tcp])]
  const env = Object.entries(i.environment).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `Environment=${word(`${k}=${v}`, false)}`)
  const service = [
    '[Unit]',
    'Description=Styxy port coordinator (per-user daemon)',
    `Requires=${UNITS.socket}`,
    `After=${sockets.join(' ')}`,
    // Crash loops stop after 10 starts in 30 s (a corrupt database, a bad config): the log says why.
    'StartLimitIntervalSec=30',
    'StartLimitBurst=10',
    '',
    '[Service]',
    // READY=1 comes once both listeners serve; from the daemon's own pid, or from systemd-notify where the kernel addon is missing.
    'Type=notify',
    'NotifyAccess=all',
    `ExecStart=${[i.node, ...i.nodeFlags, i.entry].map((w) => word(w)).join(' ')}`,
    `Sockets=${sockets.join(' ')}`,
    'Restart=on-failure',
    'RestartSec=100ms',
    'UMask=0077',
    ...env,
    `StandardOutput=append:${pathValue(i.log)}`,
    `StandardError=append:${pathValue(i.log)}`,
    '',
  ]
  const unix = [
    '[Unit]',
    'Description=Styxy daemon socket (Unix)',
    '',
    '[Socket]',
    `ListenStream=${pathValue(i.socket)}`,
    'SocketMode=0600',
    'DirectoryMode=0700',
    'RemoveOnStop=yes',
    'FileDescriptorName=unix',
    `Service=${UNITS.service}`,
    '',
    '[Install]',
    'WantedBy=sockets.target',
    '',
  ]
  const files: UnitFile[] = [{name: UNITS.service, text: service.join('\n')}, {name: UNITS.socket, text: unix.join('\n')}]
  if (i.port !== null) {
    files.push({name: UNITS.tcp, text: [
      '[Unit]',
      'Description=Styxy daemon socket (TCP fallback, loopback only)',
      '',
      '[Socket]',
      `ListenStream=127.0.0.1:${i.port}`,
      'FileDescriptorName=tcp',
      `Service=${UNITS.service}`,
      '',
      '[Install]',
      'WantedBy=sockets.target',
      '',
    ].join('\n')})
  }
  return files
}
