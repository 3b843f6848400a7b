import type {ServiceType} from '../protocol/types.js'

type Builtin = Omit<ServiceType, 'source' | 'name'>

// 17 types, 1,404 managed ports, all below the kernel's default ephemeral range (32768-60999).
export const BUILTIN_SERVICE_TYPES: Record<string, Builtin> = {
  dev: {description: 'Front-end dev servers (vite, next, webpack)', range: [3000, 3099], preferredPorts: [3000, 3001, 3002, 3003], singleton: false},
  api: {description: 'HTTP APIs and back ends', range: [8000, 8099], preferredPorts: [8000, 8001, 8002, 8003], singleton: false},
  database: {description: 'Databases (postgres, mysql, mongo)', range: [5430, 5499], preferredPorts: [5430, 5431, 5432, 5433], singleton: false},
  auth: {description: 'Auth services and emulators', range: [9099, 9199], preferredPorts: [9099, 9100, 9101, 9102], singleton: false},
  functions: {description: 'Serverless functions and emulators', range: [5000, 5099], preferredPorts: [5001, 5002, 5003, 5004], singleton: false},
  ui: {description: 'UI tools and dashboards', range: [4000, 4099], preferredPorts: [4000, 4001, 4002, 4003], singleton: false},
  hub: {description: 'Emulator hubs', range: [4400, 4499], preferredPorts: [4400, 4401, 4402, 4403], singleton: false},
  storybook: {description: 'Storybook', range: [6006, 6029], preferredPorts: [6006, 6007, 6008, 6009], singleton: false},
  test: {description: 'Test runners and their servers', range: [9200, 9299], preferredPorts: [9200, 9201, 9202, 9203], singleton: false},
  proxy: {description: 'Proxies', range: [8100, 8199], preferredPorts: [8100, 8101, 8102, 8103], singleton: false},
  docs: {description: 'Documentation servers', range: [4100, 4199], preferredPorts: [4100, 4101, 4102, 4103], singleton: false},
  monitoring: {description: 'Metrics and monitoring', range: [3100, 3199], preferredPorts: [3100, 3101, 3102, 3103], singleton: false},
  build: {description: 'Build servers and watchers', range: [8200, 8299], preferredPorts: [8200, 8201, 8202, 8203], singleton: false},
  infrastructure: {description: 'Caches and infrastructure (redis)', range: [6370, 6399], preferredPorts: [6370, 6371, 6372, 6373], singleton: false},
  ai: {description: 'Local model servers (one shared holder)', range: [11400, 11499], preferredPorts: [11430, 11431, 11432, 11433], singleton: true},
  messaging: {description: 'Message brokers (kafka, rabbitmq, nats)', range: [9050, 9098], preferredPorts: [9050, 9051, 9052, 9053], singleton: false},
  coordination: {description: 'Coordination services', range: [9870, 9899], preferredPorts: [9870, 9871, 9872, 9873], singleton: false},
}

export const DEFAULT_SERVICE = 'dev'

/** Merge user overrides over the built-ins: a config entry replaces the fields it names. */
export function mergeServiceTypes(
  overrides: Record<string, Partial<Builtin> & {range: [number, number]}> | undefined,
): ServiceType[] {
  const out = new Map<string, ServiceType>()
  for (const [name, t] of Object.entries(BUILTIN_SERVICE_TYPES)) out.set(name, {name, ...t, source: 'builtin'})
  for (const [name, t] of Object.entries(overrides ?? {})) {
    const base = out.get(name)
    const preferred = t.preferredPorts ?? base?.preferredPorts.filter((p) => p >= t.range[0] && p <= t.range[1]) ?? []
    out.set(name, {
      name,
      description: t.description ?? base?.description ?? `User-defined type ${name}`,
      range: t.range,
      preferredPorts: preferred,
      singleton: t.singleton ?? base?.singleton ?? false,
      source: 'config',
    })
  }
  return [...out.values()]
}

/** The type whose range holds the port; when ranges overlap, the narrowest wins. */
export function serviceForPort(types: readonly ServiceType[], port: number): ServiceType | undefined {
  let best: ServiceType | undefined
  for (const t of types) {
    if (port < t.range[0] || port > t.range[1]) continue
    if (!best || t.range[1] - t.range[0] < best.range[1] - best.range[0]) best = t
  }
  return best
}

export function managedPortCount(types: readonly ServiceType[]): number {
  const seen = new Set<number>()
  for (const t of types) for (let p = t.range[0]; p <= t.range[1]; p++) seen.add(p)
  return seen.size
}
