import {expect} from 'chai'
import {jsonArrayChunks} from '../../src/daemon/json-chunks.js'

describe('a long JSON array answered in pieces', () => {
  for (const n of [0, 1, 255, 256, 257, 513]) {
    it(`${n} items: the pieces join into the array's JSON, a few hundred items per piece`, () => {
      const items = Array.from({length: n}, (_, i) => ({i, text: `"quoted" ${i}\n`}))
      const pieces = [...jsonArrayChunks(items, (x) => ({...x, twice: x.i * 2}))]
      expect(pieces.join('')).to.equal(JSON.stringify(items.map((x) => ({...x, twice: x.i * 2}))))
      expect(pieces).to.have.length(Math.max(1, Math.ceil(n / 256)))
    })
  }
})
