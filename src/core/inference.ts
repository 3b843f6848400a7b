import {DEFAULT_SERVICE} from './service-types.js'

export interface InferenceRule {
  /** Matched against the whole command line (argv joined by spaces). */
  pattern: RegExp
  service: string
  tool: string
}

// Order matters: more specific tools first (e.g. `vitest` before `vite`, `npm run storybook` before `npm run dev`).
// Tests read this table through `INFERENCE_RULES` so every row is exercised.
export const INFERENCE_RULES: readonly InferenceRule[] = [
  {pattern: /\bstorybook\b|start-storybook|storybook dev/, service: 'storybook', tool: 'storybook'},
  {pattern: /\b(vitest|jest|playwright|cypress|mocha|karma)\b/, service: 'test', tool: 'test runner'},
  {pattern: /\bfirebase\b.*\bemulators?\b/, service: 'functions', tool: 'firebase emulators'},
  {pattern: /\b(functions-framework|netlify functions|vercel dev|wrangler dev)\b/, service: 'functions', tool: 'functions emulator'},
  {pattern: /\b(mkdocs|docusaurus|vitepress|sphinx-autobuild|hugo server|jekyll serve)\b/, service: 'docs', tool: 'docs server'},
  {pattern: /\b(ollama|llama-server|llama\.cpp|vllm|lm-studio|text-generation-launcher)\b/, service: 'ai', tool: 'model server'},
  {pattern: /\b(postgres|postmaster|pg_ctl|mysqld|mariadbd|mongod|cockroach|clickhouse-server)\b/, service: 'database', tool: 'database server'},
  {pattern: /\b(redis-server|valkey-server|memcached|keydb-server)\b/, service: 'infrastructure', tool: 'cache'},
  {pattern: /\b(kafka|rabbitmq|nats-server|nats|mosquitto|pulsar)\b/, service: 'messaging', tool: 'message broker'},
  {pattern: /\b(prometheus|grafana|grafana-server|jaeger|otelcol|alertmanager)\b/, service: 'monitoring', tool: 'monitoring'},
  {pattern: /\b(nginx|caddy|traefik|haproxy|envoy|mitmproxy)\b/, service: 'proxy', tool: 'proxy'},
  {pattern: /\b(keycloak|supertokens|auth-emulator)\b/, service: 'auth', tool: 'auth server'},
  {pattern: /\b(uvicorn|gunicorn|hypercorn|flask|fastapi|django|manage\.py runserver|rails (s|server)|puma|express|nest start|@nestjs|nodemon|json-server)\b/, service: 'api', tool: 'API framework'},
  {pattern: /\bpython[0-9.]*\s+-m\s+http\.server\b/, service: 'dev', tool: 'python http.server'},
  {pattern: /\b(vite|next (dev|start)|nuxt|astro dev|webpack[- ]dev[- ]server|webpack serve|react-scripts start|ng serve|parcel|remix dev|svelte-kit dev|gatsby develop|npx serve)\b/, service: 'dev', tool: 'dev server'},
  {pattern: /\b(npm|yarn|pnpm|bun)\s+(run\s+)?(dev|start|serve)\b/, service: 'dev', tool: 'package script'},
]

export interface Inference {
  service: string
  tool: string | null
  reason: string
}

export function inferService(commandLine: string, known?: (service: string) => boolean): Inference {
  const line = commandLine.trim()
  for (const rule of INFERENCE_RULES) {
    if (known && !known(rule.service)) continue
    const m = rule.pattern.exec(line)
    if (m) return {service: rule.service, tool: rule.tool, reason: `matched "${m[0]}" (${rule.tool})`}
  }
  return {service: DEFAULT_SERVICE, tool: null, reason: 'no rule matched; unknown commands default to dev'}
}
