import {expect} from 'chai'
import {baseName, dnsLabel, hostOf, isVariantOf, MAX_LABEL, nameFromHost, sanitizeName, suffixOf, uniqueName, urlOf, withSuffix} from '../../src/core/names.js'

const dev = {devService: 'dev'}

describe('core: server names', () => {
  it('a DNS label: lower-case a-z0-9 and -, no dash at either end, at most 63 characters', () => {
    expect(dnsLabel('My_App v2')).to.equal('my-app-v2')
    expect(dnsLabel('--Ünïcode--')).to.equal('n-code')
    expect(dnsLabel('a'.repeat(100))).to.have.length(MAX_LABEL)
    expect(dnsLabel('a'.repeat(62) + '-b')).to.equal('a'.repeat(62))
    expect(dnsLabel('___')).to.equal('')
  })

  it('a name keeps its dots as label separators; empty labels are dropped', () => {
    expect(sanitizeName('API.My App')).to.equal('api.my-app')
    expect(sanitizeName('..a..b.')).to.equal('a.b')
    expect(sanitizeName('...')).to.equal('')
  })

  it('derived: the project directory for a dev server, SERVICE.PROJECT for other types', () => {
    expect(baseName({...dev, project: '/home/u/src/MyApp', service: 'dev'})).to.equal('myapp')
    expect(baseName({...dev, project: '/home/u/src/myapp/', service: 'api'})).to.equal('api.myapp')
    // No project: the working directory's name; neither: the type's.
    expect(baseName({...dev, project: null, cwd: '/tmp/scratch', service: 'dev'})).to.equal('scratch')
    expect(baseName({...dev, project: null, service: 'api'})).to.equal('api')
    expect(baseName({...dev, project: '/', service: 'dev'})).to.equal('dev')
    // A relative project named by an API client is a name too.
    expect(baseName({...dev, project: 'shop', service: 'storybook'})).to.equal('storybook.shop')
  })

  it('given: used as given, sanitized; an empty one falls back to the derived name', () => {
    expect(baseName({...dev, explicit: 'Web', project: '/p/app', service: 'api'})).to.equal('web')
    expect(baseName({...dev, explicit: '!!!', project: '/p/app', service: 'api'})).to.equal('api.app')
  })

  it('unique among live names with -2, -3 on the last label, kept within 63 characters', () => {
    const live = new Set(['myapp', 'myapp-2', 'api.myapp'])
    expect(uniqueName('myapp', (n) => live.has(n))).to.equal('myapp-3')
    expect(uniqueName('api.myapp', (n) => live.has(n))).to.equal('api.myapp-2')
    expect(uniqueName('fresh', (n) => live.has(n))).to.equal('fresh')
    const long = 'x'.repeat(63)
    expect(withSuffix(long, 12)).to.equal('x'.repeat(60) + '-12')
    expect(withSuffix(`api.${long}`, 2)).to.equal(`api.${'x'.repeat(61)}-2`)
  })

  it('the caller\'s hint skips suffixes known to be taken; the bare name and a remembered one are still looked at first', () => {
    const live = new Set(['a', 'a-2', 'a-3', 'a-4'])
    const looked: string[] = []
    const taken = (n: string) => { looked.push(n); return live.has(n) }
    expect(uniqueName('a', taken, undefined, 4)).to.equal('a-5')
    expect(looked).to.deep.equal(['a', 'a-4', 'a-5'])
    live.delete('a')
    expect(uniqueName('a', (n) => live.has(n), undefined, 5)).to.equal('a')
    expect(uniqueName('a', (n) => live.has(n), 'a-9', 5)).to.equal('a-9')
    expect(suffixOf('a-9', 'a')).to.equal(9)
    expect(suffixOf('a', 'a')).to.equal(1)
    expect(suffixOf('b-2', 'a')).to.equal(0)
  })

  it('a remembered name comes first while it is free and still one of the base name\'s', () => {
    const live = new Set<string>()
    expect(uniqueName('myapp', (n) => live.has(n), 'myapp-2')).to.equal('myapp-2')
    live.add('myapp-2')
    expect(uniqueName('myapp', (n) => live.has(n), 'myapp-2')).to.equal('myapp')
    // A name remembered under another base (the user renamed it) is not taken back.
    expect(uniqueName('shop', () => false, 'myapp')).to.equal('shop')
    expect(isVariantOf('myapp-2', 'myapp')).to.equal(true)
    expect(isVariantOf('myapp-1', 'myapp')).to.equal(false)
    expect(isVariantOf('myapp-x', 'myapp')).to.equal(false)
  })

  it('only host-shaped names have a host and a URL', () => {
    expect(urlOf('api.myapp', 9877)).to.equal('http://api.myapp.localhost:9877/')
    expect(urlOf('My Site', 9877)).to.equal(null)
    expect(urlOf('web', null)).to.equal(null)
    expect(hostOf(null)).to.equal(null)
  })

  it('the name a Host header asks for: only under .localhost', () => {
    expect(nameFromHost('api.myapp.localhost:9877')).to.equal('api.myapp')
    expect(nameFromHost('Web.LOCALHOST.')).to.equal('web')
    expect(nameFromHost('localhost:9877')).to.equal('')
    for (const h of [undefined, '127.0.0.1:9877', 'example.com', 'web.localhost.evil.com', 'localhostx', 'web.localhost:x']) {
      expect(nameFromHost(h), String(h)).to.equal(null)
    }
  })
})
