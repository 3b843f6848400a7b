#!/usr/bin/env node
// The CLI entry. CommonJS on purpose: `styxy run -- <cmd>` sits in front of every dev server's start, and an
// ES module entry costs Node several milliseconds more to start. That fast path is one bundled file
// (dist/src/run-fast.cjs, built by `make`) and skips oclif; everything else, including run's help and its
// errors, goes through oclif.
const args = process.argv.slice(2)
const oclif = () => import('@oclif/core').then(({execute}) => execute({dir: __dirname}))
if (args[0] === 'run') require('../dist/src/run-fast.cjs').tryRunFast(args.slice(1)).then((ran) => ran || oclif())
else oclif()
