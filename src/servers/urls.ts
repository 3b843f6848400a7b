import type {StyxyClient} from '../client/client.js'
import type {Lease} from '../protocol/types.js'

// `styxy url` and `styxy open`: a server's stable address by its name (src/cli/open-browser.ts opens it) (src/core/names.ts has how names are made).

export class UnknownNameError extends Error {
  constructor(readonly serverName: string, readonly known: string[], readonly why: 'unknown' | 'no-url') {
    super(why === 'unknown'
      ? `no server is named "${serverName}"; ${known.length ? `names now: ${known.join(', ')}` : 'no server has a name now (styxy run names them)'}`
      : `"${serverName}" has no URL: its name is not a host name (an allocation's free-form name), the names proxy is off (STYXY_PROXY_PORT=off), or the name leads to another project's server`)
  }
}

/** The URL of the server named `name`, from the daemon's leases now. */
export async function urlOfName(client: StyxyClient, name: string): Promise<{url: string; lease: Lease}> {
  const leases = await client.leases()
  // A name given to allocations in two projects leads to the first of them: the one with the URL.
  const named = leases.filter((l) => l.name === name)
  const lease = named.find((l) => l.url !== null) ?? named[0]
  if (!lease) throw new UnknownNameError(name, leases.map((l) => l.name).filter((n): n is string => n !== null).sort(), 'unknown')
  if (lease.url === null) throw new UnknownNameError(name, [], 'no-url')
  return {url: lease.url, lease}
}
