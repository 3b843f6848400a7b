#!/usr/bin/env node
// The CLI entry. `styxy run` reads its child argv raw from process.argv (oclif reorders non-strict argv).
import {execute} from '@oclif/core'

await execute({dir: import.meta.url})
