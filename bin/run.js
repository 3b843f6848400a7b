#!/usr/bin/env node
// The CLI entry. `styxy run -- <cmd>` takes a fast path that skips loading oclif (it is on every dev
// server's start-up); everything else, including run's help and errors, goes through oclif.
const args = process.argv.slice(2)
if (args[0] === 'run') {
  const {tryRunFast} = await import('../dist/src/cli/run-fast.js')
  await tryRunFast(args.slice(1))
}
const {execute} = await import('@oclif/core')
await execute({dir: import.meta.url})
