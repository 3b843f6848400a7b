// Ports browsers refuse to connect to (Chromium's kRestrictedPorts and Firefox's banned list, which
// agree above 1024). A dev server there would look broken in the browser, so they are never handed out.
const BLOCKED = new Set([
  1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669,
  6679, 6697, 10080,
])

export function isBrowserBlocked(port: number): boolean {
  return BLOCKED.has(port)
}

export function browserBlockedPorts(): number[] {
  return [...BLOCKED].sort((a, b) => a - b)
}
