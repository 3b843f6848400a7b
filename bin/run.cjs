#!/bin/sh
":" //; if [ -n "${NODE_EXTRA_CA_CERTS+set}" ]; then export STYXY_CALLER_CA_CERTS="$NODE_EXTRA_CA_CERTS"; unset NODE_EXTRA_CA_CERTS; fi; exec node "$0" "$@"
// Lines 1-2 are a shell script and, to Node, a comment: run as a command (`styxy`, or bin/run.cjs), the file
// starts under sh, which starts Node on it without NODE_EXTRA_CA_CERTS. Node 20 reads and parses that bundle
// while it starts, before any JavaScript (most of a `styxy run` where it is set: docs/performance.md, History), and this
// CLI never speaks TLS: it talks to its daemon over a Unix socket or loopback HTTP. The variable is put back
// below, so everything the CLI starts (the command under `styxy run`, the daemon) gets it exactly as it was.
if (process.env.STYXY_CALLER_CA_CERTS !== undefined) {
  process.env.NODE_EXTRA_CA_CERTS = process.env.STYXY_CALLER_CA_CERTS
  delete process.env.STYXY_CALLER_CA_CERTS
}
// The CLI entry. CommonJS on purpose: `styxy run -- <cmd>` sits in front of every dev server's start, and an
// ES module entry costs Node several milliseconds more to start. That fast path is one bundled file
// (dist/src/run-fast.cjs, built by `make` or `npm run build`) and skips oclif; everything else, including
// run's help and its errors, goes through oclif, as does `run` itself when the bundle was not built.
const args = process.argv.slice(2)
const oclif = () => import('@oclif/core').then(({execute}) => execute({dir: __dirname}))
let fast = null
if (args[0] === 'run') {
  try {
    fast = require('../dist/src/run-fast.cjs')
  } catch (error) {
    if (error.code !== 'MODULE_NOT_FOUND') throw error
  }
}
if (fast) fast.tryRunFast(args.slice(1)).then((ran) => ran || oclif())
else oclif()
