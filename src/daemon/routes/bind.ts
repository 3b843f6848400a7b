import {Routes} from '../../protocol/routes.js'
import {BindRequestSchema, describeZodError} from '../../protocol/schemas.js'
import {StyxyError} from '../../protocol/errors.js'
import {bodyOf, errorAnswer, validate} from '../middleware.js'
import {laneRequest, type LaneAnswer} from '../bind-lane.js'
import {rawAnswer} from '../raw-answer.js'
import type {FrontServe} from '../front.js'
import type {Mount, RouteDeps} from './deps.js'

export const mountBind: Mount = (router, {coordinator}) => {
  router.post(Routes.bind.path, async (ctx) => {
    ctx.body = await coordinator.bind(validate(BindRequestSchema, bodyOf(ctx)))
  })
}

/**
 * The same route for the Unix socket's lane (bind-lane.ts), answered as the app would. A body that does not
 * validate is left to the app (undefined), which refuses it with its usual error and changes nothing; unless
 * there is no app behind (the native front): then that error is answered here.
 * Answered in the same turn whenever the kernel table's snapshot is fresh (see Coordinator.bindIfFresh).
 */
export function serveBindLane({coordinator, metrics}: RouteDeps, log: (msg: string) => void, storage: (error: unknown) => StyxyError | null, invalid: 'to-app' | 'answer' = 'to-app') {
  const refuse = (error: unknown): LaneAnswer => errorAnswer(error, `POST ${Routes.bind.path}`, log, storage)
  return (body: unknown): LaneAnswer | Promise<LaneAnswer> | undefined => {
    const parsed = BindRequestSchema.safeParse(body)
    if (!parsed.success) {
      if (invalid === 'to-app') return undefined
      return refuse(new StyxyError('VALIDATION_FAILED', describeZodError(parsed.error)))
    }
    const started = process.hrtime.bigint()
    const observed = (answer: LaneAnswer): LaneAnswer => {
      metrics.observeRequest(Number(process.hrtime.bigint() - started) / 1e9)
      return answer
    }
    try {
      const now = coordinator.bindIfFresh(parsed.data)
      if (now !== undefined) return observed({status: 200, body: now})
    } catch (error) {
      return observed(refuse(error))
    }
    return coordinator.bind(parsed.data).then((out): LaneAnswer => ({status: 200, body: out}), refuse).then(observed)
  }
}

/**
 * The same route for the native front's link (front.ts). The front forwards whatever a client sends, so every
 * request gets its answer here: one that is not exactly the interceptor's (another route, an Origin or any
 * other header the lane does not know) is refused, and the rest are the lane's.
 */
export function serveBindFront(deps: RouteDeps, log: (msg: string) => void, storage: (error: unknown) => StyxyError | null): FrontServe {
  const lane = serveBindLane(deps, log, storage, 'answer')
  const text = ({status, body}: LaneAnswer) => rawAnswer(status, body)
  return (request) => {
    const taken = laneRequest(request)
    if (taken?.route !== 'bind') {
      return text(errorAnswer(new StyxyError('BAD_REQUEST', `${deps.paths.frontSocket} answers only the interceptor's POST ${Routes.bind.path} (JSON, Connection: close, no other headers); ask ${deps.paths.socket} for anything else`), 'front', log))
    }
    const answer = lane(taken.body)!
    return answer instanceof Promise ? answer.then(text) : text(answer)
  }
}
