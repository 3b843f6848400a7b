// Server names: the handle people use instead of a port (`http://NAME.localhost:<proxy port>/`). Pure functions:
// the daemon supplies what is taken and what was remembered, in its decision's transaction.

/** The longest DNS label (RFC 1035); a longer one makes browsers refuse the host outright. */
export const MAX_LABEL = 63
/** The longest name kept: room for `.localhost` inside a 253-character host name. */
export const MAX_NAME = 240

/** One DNS label: lower-case a-z, 0-9 and '-', no '-' at either end, at most 63 characters; '' when nothing is left. */
export function dnsLabel(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-{2,}/g, '-').slice(0, MAX_LABEL).replace(/^-+|-+$/g, '')
}

/** A name as labels: each label sanitized, empty ones dropped ('My App.v2' -> 'my-app.v2'); '' when nothing is left. */
export function sanitizeName(text: string): string {
  return text.split('.').map(dnsLabel).filter(Boolean).join('.').slice(0, MAX_NAME).replace(/[.-]+$/, '')
}

/** Whether `name` is already a host name of our shape (what `sanitizeName` leaves unchanged). */
export function isHostName(name: string): boolean {
  return name !== '' && sanitizeName(name) === name
}

function lastSegment(dir: string | null | undefined): string {
  if (!dir) return ''
  const parts = dir.split('/').filter(Boolean)
  return parts.length ? parts[parts.length - 1] : ''
}

export interface NameSource {
  /** The name the user gave (`styxy run --name`, STYXY_NAME): used as given, sanitized. */
  explicit?: string | null
  /** The lease's project: its last path segment names it (a worktree's directory). */
  project: string | null
  /** For a lease without a project, the holder's working directory. */
  cwd?: string | null
  service: string
  /** The type that gets the project's bare name (`dev`). */
  devService: string
}

/**
 * What a server is called before uniqueness: the given name; else the project's directory name for a dev
 * server (`myapp`) and `SERVICE.PROJECT` for any other type (`api.myapp`). With no directory to go by, the
 * type's name alone.
 */
export function baseName(s: NameSource): string {
  const given = s.explicit ? sanitizeName(s.explicit) : ''
  if (given) return given
  const where = dnsLabel(lastSegment(s.project ?? s.cwd))
  const service = dnsLabel(s.service) || 'server'
  if (!where) return service
  return s.service === s.devService ? where : `${service}.${where}`
}

/** `base` with the suffix `-n` on its last label, shortened so the label stays within 63 characters. */
export function withSuffix(base: string, n: number): string {
  if (n <= 1) return base
  const dot = base.lastIndexOf('.')
  const head = dot < 0 ? '' : base.slice(0, dot + 1)
  const last = base.slice(dot + 1)
  const suffix = `-${n}`
  return `${head}${last.slice(0, MAX_LABEL - suffix.length).replace(/-+$/, '')}${suffix}`
}

/**
 * The first of `base`, `base-2`, `base-3`... that `taken` does not hold. `remembered` (the name this project's
 * server had last time) comes first when it is free and still one of base's names: a restart keeps its name even
 * while its twin holds the bare one. `from`: no suffix below it is free (the caller's hint), so ten thousand
 * servers of one name cost one look each, not ten thousand.
 */
export function uniqueName(base: string, taken: (name: string) => boolean, remembered?: string | null, from = 2): string {
  if (remembered && !taken(remembered) && isVariantOf(remembered, base)) return remembered
  if (!taken(base)) return base
  for (let n = Math.max(2, from); ; n++) {
    const candidate = withSuffix(base, n)
    if (!taken(candidate)) return candidate
  }
}

/** 1 for `base` itself, n for `base-n`, 0 for a name that is neither. */
export function suffixOf(name: string, base: string): number {
  if (name === base) return 1
  const m = /^(.*)-(\d+)$/.exec(name)
  return m !== null && Number(m[2]) >= 2 && withSuffix(base, Number(m[2])) === name ? Number(m[2]) : 0
}

/** Whether `name` is `base` or one of its suffixed forms. */
export function isVariantOf(name: string, base: string): boolean {
  return suffixOf(name, base) > 0
}

/** The host a name is served on: only names of our shape have one (an allocation's free-form name has none). */
export function hostOf(name: string | null): string | null {
  return name !== null && isHostName(name) ? `${name}.localhost` : null
}

/** The URL of a named server through the proxy on `proxyPort`; null without a host name or a proxy. */
export function urlOf(name: string | null, proxyPort: number | null): string | null {
  const host = hostOf(name)
  return host === null || proxyPort === null ? null : `http://${host}:${proxyPort}/`
}

/**
 * The name a request's Host header asks for: `api.myapp.localhost:9877` -> `api.myapp`. Null for a Host that is
 * not under `.localhost` (those are refused), '' for `localhost` itself.
 */
export function nameFromHost(host: string | undefined): string | null {
  if (host === undefined) return null
  const bare = host.toLowerCase().replace(/:\d+$/, '').replace(/\.$/, '')
  if (bare === 'localhost') return ''
  if (!bare.endsWith('.localhost')) return null
  return bare.slice(0, -'.localhost'.length)
}
