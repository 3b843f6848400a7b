import type {Hook} from '@oclif/core'
import {distance} from 'fastest-levenshtein'
import {ExitCode} from '../exit-codes.js'

/**
 * An unknown command: say so, name the closest command (or topic) when one is close enough, and exit as a usage
 * error. No prompt: agents and scripts run the CLI without a terminal to answer one.
 */
const hook: Hook.CommandNotFound = async function (opts) {
  const typed = opts.id.replaceAll(':', ' ')
  const known = [...new Set([...opts.config.commandIDs, ...opts.config.topics.map((t) => t.name)])].map((id) => id.replaceAll(':', ' '))
  const best = known.map((id) => ({id, d: distance(typed, id)})).sort((a, b) => a.d - b.d || a.id.localeCompare(b.id))[0]
  // Close enough to be a typo (lsit, stauts, daemon strat): two edits, or a third of a longer word.
  const hint = best && best.d < typed.length && best.d <= Math.max(2, Math.floor(typed.length / 3)) ? `; did you mean "${opts.config.bin} ${best.id}"?` : ''
  process.stderr.write(`styxy: "${typed}" is not a ${opts.config.bin} command${hint} (${opts.config.bin} help lists them)\n`)
  this.exit(ExitCode.USAGE)
}

export default hook
