import {z} from 'zod'

// Request bodies are validated strictly: unknown keys are refused so a typo never silently does nothing.
const port = z.number().int().min(1).max(65535)
const pid = z.number().int().min(1).max(4194304)
const text = (max: number) => z.string().max(max)
// Instance ids come from users (STYXY_INSTANCE_ID) through the interceptor, which passes up to 256 bytes:
// accept any printable id of that size rather than make the interceptor fail open on a slash.
const id = z.string().min(1).max(256).regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces')
const serviceName = z.string().min(1).max(64).regex(/^[a-z0-9][a-z0-9_-]*$/, 'lower-case letters, digits, _ and -')

// Neither a type nor a port says nothing about what is wanted (an empty body is more likely a mistake than a
// request): the CLI and the MCP tool ask for dev themselves when given neither.
export const AllocationRequestSchema = z.strictObject({
  /** Default: the type whose range holds `port`, else dev. */
  service: serviceName.optional(),
  port: port.optional(),
  name: text(200).optional(),
  instanceId: id.optional(),
  pid: pid.optional(),
  project: text(4096).optional(),
}).refine((r) => r.service !== undefined || r.port !== undefined, {message: 'give a service type or a port', path: ['service']})

export const BindRequestSchema = z.strictObject({
  pid,
  port,
  command: text(4096).optional(),
  cwd: text(4096).optional(),
  /** STYXY_PROJECT (`styxy run --project`), resolved against cwd if relative; absent, the project is cwd's worktree top. */
  project: text(4096).optional(),
  instanceId: id.optional(),
  /**
   * STYXY_NAME (`styxy run --name`): the server's name. Any text: the daemon makes a host name of it (core/names.ts)
   * rather than refuse, since a refused bind request means a bind without Styxy.
   */
  name: text(255).optional(),
  /** Ports the caller's real bind found in use (EADDRINUSE) since its first ask. */
  taken: z.array(port).max(64).optional(),
  /** false: record and answer, never move (STYXY_DISABLE_REASSIGN=1). */
  reassign: z.boolean().optional(),
})

/** A process under Styxy connected to `port` on loopback and was sent to `to`, where its project's server moved. */
export const FollowReportSchema = z.strictObject({
  pid,
  port,
  to: port,
  /** The process's project as it found it (STYXY_PROJECT, else its worktree's top); else the daemon finds it. */
  project: text(4096).optional(),
})

// The bind answer is held to a schema too: the interceptor parses it with its own JSON reader, and the
// contract test (test/contract) checks the daemon's real answers against this and the interceptor's parser.
export const BindActionSchema = z.enum(['allow', 'remap', 'deny'])

export const BindResponseSchema = z.strictObject({
  action: BindActionSchema,
  port,
  requestedPort: port,
  service: z.string().min(1),
  leaseId: z.string().min(1).nullable(),
  /** True when this process already asked for this port: the notice was already shown. */
  repeat: z.boolean(),
  /**
   * True when this answer created the lease: the port was not the caller's before it asked (not an earlier
   * answer, not its instance's allocation). The interceptor checks such a port against the other address
   * family's listeners, which its own bind would not collide with.
   */
  newLease: z.boolean(),
  reason: z.string().optional(),
})

/** What `styxy run` leaves to the daemon for when its connection ends (POST /v1/exit-watch). */
export const ExitWatchRequestSchema = z.strictObject({
  /** The command's process: its leases go if it has exited by then. */
  pid,
  // The lease the run made for --service/--port, released in any case. A lease id, never a port: releasing
  // by port is DELETE /v1/allocations/:port, said in so many words.
  leaseId: id.refine((s) => !/^\d+$/.test(s), 'a lease id, not a port number').optional(),
})

export const InstanceRequestSchema = z.strictObject({
  id: id.optional(),
  pid: pid.optional(),
  name: text(200).optional(),
  project: text(4096).optional(),
})

/** The dashboard's stop button: the holder's pid, refused unless it holds a lease now. */
export const DashboardStopSchema = z.strictObject({pid})
/** A login link's code (src/daemon/dashboard/sessions.ts makes them: 32 random bytes, base64url). */
export const LoginCodeSchema = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'a login code from `styxy dashboard`')

export const PortParamSchema = z.coerce.number().int().min(1).max(65535)
export const ScanQuerySchema = z.strictObject({
  start: z.coerce.number().int().min(1).max(65535),
  end: z.coerce.number().int().min(1).max(65535),
}).refine((q) => q.start <= q.end && q.end - q.start < 10000, 'start must not exceed end, and a scan covers at most 10,000 ports')
export const PidQuerySchema = z.coerce.number().int().min(1).max(4194304)
export const CountQuerySchema = z.coerce.number().int().min(1).max(1000).default(5)

const serviceTypeConfig = z.strictObject({
  description: text(500).optional(),
  range: z.tuple([z.number().int().min(1024).max(65535), z.number().int().min(1024).max(65535)])
    .refine(([a, b]) => a <= b, 'range start must not exceed its end'),
  preferredPorts: z.array(z.number().int().min(1024).max(65535)).max(100).optional(),
  singleton: z.boolean().optional(),
})

export const ConfigFileSchema = z.strictObject({
  $schema: z.string().optional(),
  serviceTypes: z.record(serviceName, serviceTypeConfig).optional(),
})

export type ConfigFile = z.infer<typeof ConfigFileSchema>

/** One line naming the field and the problem, e.g. `serviceTypes.web.range: range start must not exceed its end`. */
export function describeZodError(error: z.ZodError): string {
  return error.issues
    .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ')
}
