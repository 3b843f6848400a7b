// A long JSON array answered in pieces, so a daemon asked for every one of its leases (up to one per port)
// never holds the whole text, and the objects it is made of, at once: with many thousands of leases that peak
// stayed in the daemon's resident memory long after the answer was gone (docs/performance.md, History).

const PER_CHUNK = 256

/** The JSON text of `items.map(map)`, a few hundred items at a time. */
export function* jsonArrayChunks<T, U>(items: readonly T[], map: (item: T) => U): Generator<string> {
  if (items.length === 0) {
    yield '[]'
    return
  }
  for (let i = 0; i < items.length; i += PER_CHUNK) {
    const part = items.slice(i, i + PER_CHUNK).map((item) => JSON.stringify(map(item))).join(',')
    yield (i === 0 ? '[' : ',') + part + (i + PER_CHUNK >= items.length ? ']' : '')
  }
}
