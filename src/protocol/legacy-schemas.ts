import {z} from 'zod'

// The first Styxy's request bodies (snake_case). Its clients sent more than they needed, so unknown keys are
// dropped rather than refused (z.object strips them); the fields that are read are checked as strictly as v1's.
const port = z.number().int().min(1).max(65535)
const pid = z.number().int().min(1).max(4194304)
const text = (max: number) => z.string().max(max)
const id = z.string().min(1).max(256).regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces')
const serviceName = z.string().min(1).max(64).regex(/^[a-z0-9][a-z0-9_-]*$/, 'lower-case letters, digits, _ and -')
// Metadata is accepted and not kept (the daemon's instances have no such field); it is only bounded.
const metadata = z.record(z.string(), z.unknown()).optional()

export const LegacyShimRegisterSchema = z.object({
  pid: pid.optional(),
  instance_id: id.optional(),
  project_path: text(4096).optional(),
  metadata,
  port: port.optional(),
  service_type: text(64).optional(),
})

export const LegacyAllocateSchema = z.object({
  service_type: serviceName,
  service_name: text(200).optional(),
  preferred_port: port.optional(),
  instance_id: id.optional(),
  project_path: text(4096).optional(),
  dry_run: z.boolean().optional(),
})

export const LegacyInstanceRegisterSchema = z.object({
  instance_id: id,
  working_directory: text(4096).optional(),
  metadata,
})

export const LegacyCleanupSchema = z.object({force: z.boolean().optional()})

// crypto.randomUUID() makes these: version 4, variant 10xx.
export const LockIdSchema = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i, 'a uuid v4')

export const LegacyScanQuerySchema = z.object({
  start: z.coerce.number().int().min(1).max(65535).default(3000),
  end: z.coerce.number().int().min(1).max(65535).default(9999),
}).refine((q) => q.start <= q.end && q.end - q.start < 10000, 'start must not exceed end, and a scan covers at most 10,000 ports')
