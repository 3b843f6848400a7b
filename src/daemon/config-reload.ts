import fs from 'node:fs'
import path from 'node:path'
import {ConfigError, loadConfig} from '../config.js'
import {StyxyError} from '../protocol/errors.js'
import type {ConfigReload, ConfigTrigger, ServiceType} from '../protocol/types.js'
import type {EventHub} from './hub.js'

// Editors save in bursts (write a temporary file, rename it over the old one, touch a backup): one read once the
// directory has been quiet this long, rather than one per event, some of which would see a half-written file.
const SETTLE_MS = 60

/**
 * The config file, read again on SIGHUP, on request and when its directory changes. A file that does not
 * validate is refused with the field named, and the types in use stay: a typo must not take the daemon down.
 */
export class ConfigReloader {
  private applied: string
  private rejected: string | null = null
  private watcher: fs.FSWatcher | undefined
  private timer: NodeJS.Timeout | undefined

  constructor(
    readonly file: string,
    private readonly apply: (types: ServiceType[]) => void,
    private readonly hub: EventHub,
    private readonly log: (msg: string) => void,
    /** The types in use at start-up, as loaded from `file`. */
    initial: ServiceType[],
  ) {
    this.applied = JSON.stringify(initial)
  }

  /** Read the file now; throws INVALID_CONFIG (the running types stay) when it does not validate. */
  reload(trigger: ConfigTrigger): ConfigReload {
    let loaded
    try {
      loaded = loadConfig(this.file)
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error
      // One event and one log line per broken version of the file, however often it is looked at.
      if (trigger !== 'watch' || this.rejected !== error.message) {
        this.log(`config not reloaded (${trigger}), the previous types stay: ${error.message}`)
        this.hub.publish({type: 'config.rejected', data: {file: this.file, trigger, message: error.message}})
      }
      this.rejected = error.message
      throw new StyxyError('INVALID_CONFIG', `${error.message}; the daemon keeps the types it had`)
    }
    this.rejected = null
    const text = JSON.stringify(loaded.serviceTypes)
    const changed = text !== this.applied
    const result: ConfigReload = {file: this.file, exists: loaded.exists, trigger, changed, serviceTypes: loaded.serviceTypes.length}
    if (!changed && trigger === 'watch') return result
    if (changed) {
      this.apply(loaded.serviceTypes)
      this.applied = text
      this.log(`config reloaded (${trigger}): ${loaded.serviceTypes.length} service types from ${loaded.exists ? this.file : 'the built-ins'}`)
    }
    this.hub.publish({type: 'config.reloaded', data: result})
    return result
  }

  /**
   * Watch the file's directory (an editor's rename replaces the file, which a watch on the file itself would
   * lose). The directory is made if missing, so a file created later is seen too.
   */
  watch(): void {
    const dir = path.dirname(this.file)
    const name = path.basename(this.file)
    try {
      fs.mkdirSync(dir, {recursive: true, mode: 0o700})
      this.watcher = fs.watch(dir, {persistent: false}, (_event, changed) => {
        if (changed !== null && changed !== name) return
        clearTimeout(this.timer)
        this.timer = setTimeout(() => this.settled(), SETTLE_MS)
      })
      this.watcher.on('error', (error) => {
        this.log(`config watch on ${dir} ended (${error.message}); SIGHUP or styxy daemon reload still apply changes`)
        this.close()
      })
    } catch (error) {
      this.log(`config: not watching ${dir} (${(error as Error).message}); SIGHUP or styxy daemon reload apply changes`)
    }
  }

  private settled(): void {
    try {
      this.reload('watch')
    } catch (error) {
      if (!(error instanceof StyxyError)) this.log(`config reload: ${(error as Error).message}`)
    }
  }

  close(): void {
    clearTimeout(this.timer)
    this.watcher?.close()
    this.watcher = undefined
  }
}
