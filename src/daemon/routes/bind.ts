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
 */
export function serveBindLane({coordinator, metrics}: RouteDeps, log: (msg: string) => void, storage: (error: unknown) => StyxyError | null, invalid: 'to-app' | 'answer' = 'to-app') {
  return (body: unknown): Promise<LaneAnswer> | undefined => {
    const parsed = BindRequestSchema.safeParse(body)
    if (!parsed.success) {
      if (invalid === 'to-app') return undefined
      const refused = new StyxyError('VALIDATION_FAILED', describeZodError(parsed.error))
      return Promise.resolve(errorAnswer(refused, `POST ${Routes.bind.path}`, log))
    }
    const started = process.hrtime.bigint()
    return coordinator.bind(parsed.data).then(
      (out): LaneAnswer => ({status: 200, body: out}),
      (error: unknown): LaneAnswer => errorAnswer(error, `POST ${Routes.bind.path}`, log, storage),
    ).finally(() => metrics.observeRequest(Number(process.hrtime.bigint() - started) / 1e9))
  }
}

/**
 * The same route for the native front's link (front.ts). The front forwards whatever a client sends, so every
 * request gets its answer here: one that is not exactly the interceptor's (another route, an Origin or any
 * other header the lane does not know) is refused, and the rest are the lane's.
 */
export function serveBindFront(deps: RouteDeps, log: (msg: string) => void, storage: (error: unknown) => StyxyError | null): FrontServe {
  const lane = serveBindLane(deps, log, storage, 'answer')
  return async (request) => {
    const taken = laneRequest(request)
    const {status, body} = taken?.route === 'bind'
      ? await lane(taken.body)!
      : errorAnswer(new StyxyError('BAD_REQUEST', `${deps.paths.frontSocket} answers only the interceptor's POST ${Routes.bind.path} (JSON, Connection: close, no other headers); ask ${deps.paths.socket} for anything else`), 'front', log)
    return rawAnswer(status, body)
  }
}
