import {StyxyClient} from '../client/client.js'
import {startDetached} from '../client/ensure-daemon.js'

/** For commands that need a daemon to do their job (allocate, suggest, ...): start it if it is not running. */
export async function clientWithDaemon(): Promise<StyxyClient> {
  await startDetached()
  return new StyxyClient()
}
