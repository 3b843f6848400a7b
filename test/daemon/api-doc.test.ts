import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'
import {DashboardRoutes, LegacyRoutes, Routes} from '../../src/protocol/routes.js'
import {EVENT_TYPES} from '../../src/protocol/events.js'
import {ErrorCodes} from '../../src/protocol/errors.js'
import {PROJECT_ROOT} from '../../src/project.js'

describe('docs/api.md is kept in step with the protocol module', () => {
  const doc = fs.readFileSync(path.join(PROJECT_ROOT, 'docs', 'api.md'), 'utf8')
  for (const [name, r] of Object.entries(Routes)) {
    it(`documents ${name}: ${r.method} ${r.path}`, () => expect(doc).to.contain(`\`${r.method} ${r.path}\``))
  }
  // The legacy group is documented in its own section, after every v1 route.
  const legacy = doc.indexOf('## Legacy routes (compatibility only)')
  it('has one section for the legacy routes', () => {
    expect(legacy).to.be.above(0)
    expect(doc.indexOf('## Legacy routes', legacy + 1)).to.equal(-1)
  })
  for (const [name, r] of Object.entries(LegacyRoutes)) {
    it(`documents legacy ${name}: ${r.method} ${r.path} in that section`, () => expect(doc.slice(legacy)).to.contain(`\`${r.method} ${r.path}\``))
  }
  const dashboard = doc.indexOf('## The dashboard')
  for (const [name, r] of Object.entries(DashboardRoutes)) {
    it(`documents dashboard ${name}: ${r.method} ${r.path} in its section`, () => {
      expect(dashboard).to.be.above(0)
      expect(doc.slice(dashboard, legacy)).to.contain(`\`${r.method} ${r.path}\``)
    })
  }
  it('documents every event type and error code', () => {
    for (const t of EVENT_TYPES) expect(doc, t).to.contain(`\`${t}\``)
    for (const c of Object.keys(ErrorCodes)) expect(doc, c).to.contain(`\`${c}\``)
  })
})
