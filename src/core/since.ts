/** `--since` and recent_moves' `since`: an ISO time, or a duration back from `now` (30s, 30m, 2h, 1d). Null when it is neither. */
export function sinceToIso(since: string, now = Date.now()): string | null {
  const m = /^(\d+)([smhd])$/.exec(since)
  if (m) return new Date(now - Number(m[1]) * {s: 1e3, m: 6e4, h: 36e5, d: 864e5}[m[2] as 's']).toISOString()
  return Number.isNaN(Date.parse(since)) ? null : since
}
