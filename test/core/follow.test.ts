import {expect} from 'chai'
import {followMoves, MAX_MOVES, type MoveSource} from '../../src/core/follow.js'
import {allocationCandidates} from '../../src/core/decide.js'
import {mergeServiceTypes} from '../../src/core/service-types.js'

const lease = (project: string | null, requestedPort: number | null, port: number): MoveSource => ({project, requestedPort, port})
const nobody = () => undefined

describe('core: the moves a project follows', () => {
  it('a lease away from its asked port, with a project, is followed; one on its port, without a project or without an ask, is not', () => {
    const moves = followMoves([lease('/b', 8000, 8002), lease('/a', 8000, 8000), lease(null, 8001, 8003), lease('/c', null, 8004)], nobody)
    expect(moves).to.deep.equal([{project: '/b', asked: 8000, port: 8002}])
  })

  it('two servers of one project moved from the same port: the newest (listed first) is followed', () => {
    const moves = followMoves([lease('/b', 8000, 8005), lease('/b', 8000, 8002), lease('/c', 8000, 8003)], nobody)
    expect(moves).to.deep.equal([{project: '/b', asked: 8000, port: 8005}, {project: '/c', asked: 8000, port: 8003}])
  })

  it("a project's own server on the asked port wins: no follow for that project, others still follow", () => {
    const projectOn = (port: number) => (port === 8000 ? '/b' : undefined)
    const moves = followMoves([lease('/b', 8000, 8002), lease('/c', 8000, 8003)], projectOn)
    expect(moves).to.deep.equal([{project: '/c', asked: 8000, port: 8003}])
  })

  it('at most the table holds', () => {
    const many = Array.from({length: MAX_MOVES + 10}, (_, i) => lease(`/p${i}`, 9000, 10000 + i))
    const moves = followMoves(many, nobody)
    expect(moves).to.have.length(MAX_MOVES)
    expect(moves[0]).to.deep.equal({project: '/p0', asked: 9000, port: 10000})
  })
})

describe('core: allocation candidates', () => {
  const api = mergeServiceTypes(undefined).find((t) => t.name === 'api')!
  it('the port asked for, then the one the project got last time, then the ports after it', () => {
    const first = [...allocationCandidates(api, 8000, 8042)].slice(0, 3)
    expect(first).to.deep.equal([8000, 8042, 8001])
    expect([...allocationCandidates(api, 8000)].slice(0, 2)).to.deep.equal([8000, 8001])
  })
})
