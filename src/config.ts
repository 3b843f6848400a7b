import fs from 'node:fs'
import type {ServiceType} from './protocol/types.js'
import {ConfigFileSchema, describeZodError} from './protocol/schemas.js'
import {mergeServiceTypes} from './core/service-types.js'

export class ConfigError extends Error {
  constructor(readonly file: string, problem: string) {
    super(`invalid config ${file}: ${problem}`)
  }
}

export interface LoadedConfig {
  file: string
  exists: boolean
  serviceTypes: ServiceType[]
}

/** The built-in types merged with the user's file; a broken file is refused with the field that is wrong. */
export function loadConfig(file: string): LoadedConfig {
  let text: string
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {file, exists: false, serviceTypes: mergeServiceTypes(undefined)}
    throw new ConfigError(file, (error as Error).message)
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (error) {
    throw new ConfigError(file, `not valid JSON (${(error as Error).message})`)
  }
  const parsed = ConfigFileSchema.safeParse(json)
  if (!parsed.success) throw new ConfigError(file, describeZodError(parsed.error))
  return {file, exists: true, serviceTypes: mergeServiceTypes(parsed.data.serviceTypes)}
}
