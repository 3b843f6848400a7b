import {parseArgs} from 'node:util'
import {splitAtDoubleDash} from './child-argv.js'
import {runUnderStyxy} from './run-child.js'
import {classify} from './errors.js'
import {BACKEND_FLAGS, type BackendFlag} from './backend.js'
import {sanitizeName} from '../core/names.js'

/**
 * `styxy run` without loading oclif: it sits in front of every dev server start, and oclif's own start-up
 * would double its cost. Anything unusual (help, a bad flag) returns false and goes through oclif, which
 * owns the messages.
 */
export async function tryRunFast(args: string[]): Promise<boolean> {
  const {own, child} = splitAtDoubleDash(args)
  if (child.length === 0) return false
  let values: {service?: string; port?: string; backend?: string; explain?: boolean; project?: string; grace?: string; name?: string}
  try {
    values = parseArgs({args: own, options: {service: {type: 'string', short: 's'}, port: {type: 'string', short: 'p'}, backend: {type: 'string', short: 'b'}, explain: {type: 'boolean'}, project: {type: 'string'}, grace: {type: 'string'}, name: {type: 'string', short: 'n'}}, strict: true, allowPositionals: false}).values
  } catch {
    return false
  }
  const port = values.port === undefined ? undefined : Number(values.port)
  if (port !== undefined && !(Number.isInteger(port) && port >= 1024 && port <= 65535)) return false
  if (values.backend !== undefined && !BACKEND_FLAGS.includes(values.backend as BackendFlag)) return false
  if (values.project === '') return false
  // A name that is not a host name goes to oclif's command, which says why.
  if (values.name !== undefined && sanitizeName(values.name) !== values.name) return false
  const grace = values.grace === undefined ? undefined : Number(values.grace)
  if (grace !== undefined && !(Number.isFinite(grace) && grace >= 0)) return false
  try {
    process.exit(await runUnderStyxy({argv: child, service: values.service, port, backend: values.backend as BackendFlag | undefined, explain: values.explain, project: values.project, name: values.name, grace, warn: (l) => process.stderr.write(`${l}\n`)}))
  } catch (error) {
    const c = classify(error)
    process.stderr.write(`styxy: ${c.message}\n`)
    process.exit(c.exit)
  }
}
