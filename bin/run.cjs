#!/usr/bin/env node
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
