import {expect} from 'chai'
import {INFERENCE_RULES, inferService} from '../../src/core/inference.js'
import {BUILTIN_SERVICE_TYPES, managedPortCount, mergeServiceTypes} from '../../src/core/service-types.js'
import {browserBlockedPorts} from '../../src/core/blocked-ports.js'

const examples: [string, string][] = [
  ['npx vite --port 5173', 'dev'], ['next dev', 'dev'], ['webpack-dev-server --hot', 'dev'], ['npm run dev', 'dev'],
  ['yarn dev', 'dev'], ['pnpm run dev', 'dev'], ['npx storybook dev -p 6006', 'storybook'], ['npm run storybook', 'storybook'],
  ['uvicorn app:app --reload', 'api'], ['flask run', 'api'], ['python manage.py runserver', 'api'], ['rails server', 'api'],
  ['node node_modules/.bin/nest start', 'api'], ['node express-app.js --express', 'api'], ['python3 -m http.server 8000', 'dev'],
  ['postgres -D /var/lib/pg', 'database'], ['mysqld --port 3306', 'database'], ['mongod --dbpath x', 'database'],
  ['redis-server --port 6379', 'infrastructure'], ['ollama serve', 'ai'], ['npx jest --watch', 'test'], ['vitest', 'test'],
  ['npx playwright test', 'test'], ['cypress open', 'test'], ['mkdocs serve', 'docs'], ['npx docusaurus start', 'docs'],
  ['vitepress dev docs', 'docs'], ['prometheus --config.file=x', 'monitoring'], ['grafana-server', 'monitoring'],
  ['kafka-server-start.sh config', 'messaging'], ['rabbitmq-server', 'messaging'], ['nats-server -p 4222', 'messaging'],
  ['firebase emulators:start', 'functions'],
]

describe('core: inference', () => {
  for (const [cmd, service] of examples) {
    it(`${cmd} -> ${service}`, () => expect(inferService(cmd).service).to.equal(service))
  }

  it('falls back to dev for an unknown command, and says why', () => {
    const r = inferService('./my-server --flag')
    expect(r).to.include({service: 'dev', tool: null})
    expect(r.reason).to.match(/no rule matched/)
  })

  it('every rule names a built-in type and is hit by at least one example', () => {
    for (const rule of INFERENCE_RULES) {
      expect(BUILTIN_SERVICE_TYPES, rule.tool).to.have.property(rule.service)
    }
    const hit = new Set(examples.map(([cmd]) => INFERENCE_RULES.findIndex((r) => r.pattern.test(cmd))))
    const missed = INFERENCE_RULES.filter((_r, i) => !hit.has(i)).map((r) => r.tool)
    expect(missed.length, `rules without an example: ${missed}`).to.be.at.most(4)
  })
})

describe('core: service types', () => {
  it('has the 17 types and 1,404 managed ports', () => {
    const types = mergeServiceTypes(undefined)
    expect(types).to.have.length(17)
    expect(managedPortCount(types)).to.equal(1404)
    expect(types.find((t) => t.name === 'ai')).to.include({singleton: true})
    expect(types.find((t) => t.name === 'coordination')!.range).to.deep.equal([9870, 9899])
  })

  it('lets a config override a type and add one', () => {
    const types = mergeServiceTypes({dev: {range: [3500, 3599]}, web: {range: [7000, 7009], preferredPorts: [7001]}})
    expect(types.find((t) => t.name === 'dev')).to.deep.include({range: [3500, 3599], source: 'config', preferredPorts: []})
    expect(types.find((t) => t.name === 'web')).to.deep.include({preferredPorts: [7001], singleton: false})
  })

  it('knows the browser-blocked ports inside managed ranges', () => {
    expect(browserBlockedPorts()).to.include.members([4045, 4190, 5060, 5061])
  })
})
