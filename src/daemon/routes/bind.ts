import {Routes} from '../../protocol/routes.js'
import {BindRequestSchema} from '../../protocol/schemas.js'
import type {StyxyError} from '../../protocol/errors.js'
import {bodyOf, errorAnswer, validate} from '../middleware.js'
import type {LaneAnswer} from '../bind-lane.js'
import type {Mount, RouteDeps} from './deps.js'

export const mountBind: Mount = (router, {coordinator}) => {
  router.post(Routes.bind.path, async (ctx) => {
    ctx.body = await coordinator.bind(validate(BindRequestSchema, bodyOf(ctx)))
  })
}

/**
 * The same route for the Unix socket's lane (bind-lane.ts), answered as the app would. A body that does not
 * validate is left to the app (undefined), which refuses it with its usual error and changes nothing.
 */
export function serveBindLane({coordinator, metrics}: RouteDeps, log: (msg: string) => void, storage: (error: unknown) => StyxyError | null) {
  return (body: unknown): Promise<LaneAnswer> | undefined => {
    const parsed = BindRequestSchema.safeParse(body)
    if (!parsed.success) return undefined
    const started = process.hrtime.bigint()
    return coordinator.bind(parsed.data).then(
      (out): LaneAnswer => ({status: 200, body: out}),
      (error: unknown): LaneAnswer => errorAnswer(error, `POST ${Routes.bind.path}`, log, storage),
    ).finally(() => metrics.observeRequest(Number(process.hrtime.bigint() - started) / 1e9))
  }
}
