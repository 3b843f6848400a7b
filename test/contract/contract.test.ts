// The bind exchange's contract, the daemon's side: what the interceptor sends (written out by
// interceptor/contract.zig) must pass the daemon's request schema, and what the daemon answers must pass the
// answer schema; `zig build test` holds the interceptor to the same files. See test/contract/generate.ts.
import {expect} from 'chai'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {BindRequestSchema, BindResponseSchema, describeZodError, FollowReportSchema} from '../../src/protocol/schemas.js'
import {CONTRACT_FIXTURES, interceptorRequest} from '../helpers/proof.js'
import {ANSWERS, generateAnswers} from './generate.js'

const fixture = (name: string) => fs.readFileSync(path.join(CONTRACT_FIXTURES, name), 'utf8')

function bodyOf(raw: string): string {
  const at = raw.indexOf('\r\n\r\n')
  expect(at, 'an HTTP answer').to.be.greaterThan(0)
  return raw.slice(at + 4)
}

describe('contract: the bind exchange', () => {
  it('the committed answers are what the daemon writes now', async function () {
    this.timeout(30_000)
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'styxy-contract-'))
    try {
      await generateAnswers(dir)
      for (const name of Object.values(ANSWERS)) {
        expect(fs.readFileSync(path.join(dir, name), 'utf8'), `test/fixtures/contract/${name} is stale: run \`make contract\` to refresh it`)
          .to.equal(fixture(name))
      }
    } finally {
      fs.rmSync(dir, {recursive: true, force: true})
    }
  })

  for (const [action, name] of Object.entries(ANSWERS)) {
    it(`the daemon's ${action} answer is a whole 200 that the answer schema accepts`, () => {
      const raw = fixture(name)
      expect(raw).to.match(/^HTTP\/1\.1 200 OK\r\n/)
      const body = bodyOf(raw)
      expect(raw).to.match(new RegExp(`\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`, 'i'))
      const parsed = BindResponseSchema.safeParse(JSON.parse(body))
      expect(parsed.success, parsed.error && describeZodError(parsed.error)).to.equal(true)
      expect(parsed.data!.action).to.equal(action)
    })
  }

  it('every body the interceptor encodes is accepted by the request schema, unknown keys refused', () => {
    const lines = fixture('requests.jsonl').split('\n').filter(Boolean)
    expect(lines.length).to.be.greaterThan(2)
    for (const line of lines) {
      const parsed = BindRequestSchema.safeParse(JSON.parse(line))
      expect(parsed.success, `${line.slice(0, 120)}: ${parsed.error && describeZodError(parsed.error)}`).to.equal(true)
    }
  })

  it('every follow report the interceptor encodes is accepted by the follows route\'s schema', () => {
    const lines = fixture('follows.jsonl').split('\n').filter(Boolean)
    expect(lines.length).to.be.greaterThan(1)
    for (const line of lines) {
      const parsed = FollowReportSchema.safeParse(JSON.parse(line))
      expect(parsed.success, `${line}: ${parsed.error && describeZodError(parsed.error)}`).to.equal(true)
    }
  })

  it("the tests' interceptor request is the interceptor's, byte for byte", () => {
    const framed = fixture('request.http')
    expect(interceptorRequest(bodyOf(framed))).to.equal(framed)
  })
})
