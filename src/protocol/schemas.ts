import {z} from 'zod'

// Request bodies are validated strictly: unknown keys are refused so a typo never silently does nothing.
const port = z.number().int().min(1).max(65535)
const pid = z.number().int().min(1).max(4194304)
const text = (max: number) => z.string().max(max)
// Instance ids come from users (STYXY_INSTANCE_ID) through the interceptor, which passes up to 256 bytes:
// accept any printable id of that size rather than make the interceptor fail open on a slash.
const id = z.string().min(1).max(256).regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces')
const serviceName = z.string().min(1).max(64).regex(/^[a-z0-9][a-z0-9_-]*$/, 'lower-case letters, digits, _ and -')

export const AllocationRequestSchema = z.strictObject({
  service: serviceName,
  port: port.optional(),
  name: text(200).optional(),
  instanceId: id.optional(),
  pid: pid.optional(),
  project: text(4096).optional(),
})

export const BindRequestSchema = z.strictObject({
  pid,
  port,
  family: z.enum(['ipv4', 'ipv6']),
  address: text(64),
  command: text(4096).optional(),
  cwd: text(4096).optional(),
  instanceId: id.optional(),
  taken: z.array(port).max(64).optional(),
  reassign: z.boolean().optional(),
})

export const ExitWatchRequestSchema = z.strictObject({
  pid,
  // A lease id, never a port: releasing by port is DELETE /v1/allocations/:port, said in so many words.
  leaseId: id.refine((s) => !/^\d+$/.test(s), 'a lease id, not a port number').optional(),
})

export const InstanceRequestSchema = z.strictObject({
  id: id.optional(),
  pid: pid.optional(),
  name: text(200).optional(),
  project: text(4096).optional(),
})

// The first design's register-instance body: camelCase fields it used, all optional.
export const LegacyInstanceRequestSchema = z.object({
  instanceId: id.optional(),
  id: id.optional(),
  pid: pid.optional(),
  name: text(200).optional(),
  workingDirectory: text(4096).optional(),
  project: text(4096).optional(),
})

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
