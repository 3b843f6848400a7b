import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'
import {Routes} from '../../src/protocol/routes.js'
import {EVENT_TYPES} from '../../src/protocol/events.js'
import {ErrorCodes} from '../../src/protocol/errors.js'
import {PROJECT_ROOT} from '../../src/project.js'

describe('docs/api.md is kept in step with the protocol module', () => {
  const doc = fs.readFileSync(path.join(PROJECT_ROOT, 'docs', 'api.md'), 'utf8')
  for (const [name, r] of Object.entries(Routes)) {
    it(`documents ${name}: ${r.method} ${r.path}`, () => expect(doc).to.contain(`\`${r.method} ${r.path}\``))
  }
  it('documents every event type and error code', () => {
    for (const t of EVENT_TYPES) expect(doc, t).to.contain(`\`${t}\``)
    for (const c of Object.keys(ErrorCodes)) expect(doc, c).to.contain(`\`${c}\``)
  })
})
