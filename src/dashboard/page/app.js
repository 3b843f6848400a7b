// The dashboard page: the servers by project from /dashboard/api/servers, kept current by the daemon's events
// on /dashboard/api/events. Plain DOM, no framework, no build step. Every value from the daemon (commands,
// names, paths) goes in as text, never as markup.
'use strict'

const MAX_ACTIVITY = 200
const state = {loggedOut: false, socket: null, retryMs: 500, last: null}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag)
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue
    if (k === 'class') node.className = v
    else if (k === 'text') node.textContent = v
    else if (k.startsWith('data-') || k === 'title' || k === 'href' || k === 'target' || k === 'rel' || k === 'datetime') node.setAttribute(k, String(v))
    else node[k] = v
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) node.append(c)
  return node
}

function projectLabel(project) {
  if (project === null) return {short: 'No project', path: ''}
  const parts = project.split('/').filter(Boolean)
  return {short: parts[parts.length - 1] || project, path: project}
}

/** A command as read at a glance: the program's own name, not its directory (the whole line is in the title). */
function shortCommand(command) {
  if (!command) return ''
  const space = command.indexOf(' ')
  const program = space < 0 ? command : command.slice(0, space)
  return program.slice(program.lastIndexOf('/') + 1) + (space < 0 ? '' : command.slice(space))
}

function ago(iso) {
  if (!iso) return ''
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000))
  if (s < 60) return `${s}s ago`
  if (s < 3600) return `${Math.floor(s / 60)} min ago`
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min ago`
  return `${Math.floor(s / 86400)} d ago`
}

function clock(date) {
  return date.toLocaleTimeString([], {hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false})
}

function setConnection(kind, text) {
  const pill = document.getElementById('connection')
  pill.dataset.state = kind
  pill.textContent = text
}

function notice(text) {
  const n = document.getElementById('notice')
  n.textContent = text || ''
  n.hidden = !text
}

function loggedOut() {
  state.loggedOut = true
  setConnection('out', 'logged out')
  notice('Logged out: the session ended (or the daemon restarted). Run `styxy dashboard` in a terminal for a new login link.')
  if (state.socket) state.socket.close()
}

/** A daemon answer, or throws with its message; a 401 logs the page out. */
async function call(path, init) {
  const res = await fetch(path, {...init, credentials: 'same-origin', headers: {accept: 'application/json', ...(init && init.body ? {'content-type': 'application/json'} : {})}})
  let body = null
  try { body = await res.json() } catch { body = null }
  if (res.status === 401) loggedOut()
  if (!res.ok) throw new Error((body && body.error && body.error.message) || `HTTP ${res.status}`)
  return body
}

async function release(server, button) {
  button.disabled = true
  try {
    await call(`api/leases/${encodeURIComponent(server.leaseId)}`, {method: 'DELETE'})
    notice('')
  } catch (e) {
    notice(`Could not release port ${server.port}: ${e.message}`)
  }
  refresh()
}

async function stop(server, button) {
  const what = server.command ? `${server.command} (pid ${server.pid})` : `pid ${server.pid}`
  if (!window.confirm(`Stop ${what} on port ${server.port}?\nSIGTERM to its process group, SIGKILL after 5 s.`)) return
  button.disabled = true
  button.textContent = 'Stopping…'
  try {
    const r = await call('api/stops', {method: 'POST', body: JSON.stringify({pid: server.pid})})
    notice(`Stopped pid ${server.pid} (${r.pids.length} process${r.pids.length === 1 ? '' : 'es'}, ${r.signal}).`)
  } catch (e) {
    notice(`Could not stop pid ${server.pid}: ${e.message}`)
  }
  refresh()
}

function serverRow(s) {
  const port = el('td', {class: 'port'}, String(s.port), s.moved ? el('span', {class: 'asked', text: `asked ${s.askedPort}`}) : null)
  const name = el('td', {class: 'name-cell'},
    el('span', {class: 'name', text: s.name || '—'}), el('span', {class: 'service', text: s.service || s.kind}),
    s.url && /^https?:\/\//.test(s.url) ? el('a', {class: 'url', href: s.url, target: '_blank', rel: 'noopener noreferrer', title: s.url, text: s.url.replace(/^https?:\/\//, '').replace(/\/$/, '')}) : null)
  const command = el('td', {class: 'command', title: s.command || ''}, shortCommand(s.command) || '(no command)', el('span', {class: 'pid', text: s.pid === null ? 'no process' : `pid ${s.pid}`}))
  const since = el('td', {class: 'since muted'}, el('time', {datetime: s.since, title: s.since, text: ago(s.since)}))
  const listening = el('td', {}, el('span', {class: `state ${s.listening ? 'listening' : 'quiet'}`, text: s.listening ? 'listening' : 'no listener'}))
  const releaseButton = el('button', {type: 'button', class: 'release', text: 'Release', title: 'Release the lease (the process, if any, keeps running)'})
  releaseButton.addEventListener('click', () => release(s, releaseButton))
  const actions = el('td', {class: 'actions'}, releaseButton)
  if (s.pid !== null) {
    const stopButton = el('button', {type: 'button', class: 'stop', text: 'Stop', title: 'SIGTERM to its process group'})
    stopButton.addEventListener('click', () => stop(s, stopButton))
    actions.append(stopButton)
  }
  return el('tr', {'data-lease-id': s.leaseId, 'data-port': s.port, 'data-listening': String(s.listening)}, port, name, command, since, listening, actions)
}

function render(data) {
  state.last = data
  const root = document.getElementById('servers')
  const servers = data.projects.flatMap((p) => p.servers)
  const quiet = servers.filter((s) => !s.listening).length
  const moved = servers.filter((s) => s.moved).length
  document.getElementById('summary').textContent = servers.length === 0 ? 'No servers leased.'
    : `${servers.length} server${servers.length === 1 ? '' : 's'} in ${data.projects.length} project${data.projects.length === 1 ? '' : 's'}` +
      (moved ? ` · ${moved} moved` : '') + (quiet ? ` · ${quiet} without a listener` : '')
  const blocks = data.projects.map((p) => {
    const label = projectLabel(p.project)
    const head = el('tr', {}, ...['Port', 'Name', 'Command', 'Since', 'State', ''].map((t) => el('th', {text: t})))
    return el('section', {class: 'project', 'data-project': p.project ?? ''},
      el('h2', {}, el('span', {text: label.short}), el('span', {class: 'path', text: label.path, title: label.path})),
      el('table', {}, el('thead', {}, head), el('tbody', {}, ...p.servers.map(serverRow))))
  })
  if (blocks.length === 0) {
    blocks.push(el('p', {class: 'empty'}, 'No servers yet. Start one with ', el('code', {text: 'styxy run -- npm run dev'}), ' and it appears here.'))
  }
  root.replaceChildren(...blocks)
}

// One refresh at a time; events arriving meanwhile ask for one more, so a burst costs two requests, not one each.
let refreshing = false
let again = false
async function refresh() {
  if (state.loggedOut) return
  if (refreshing) { again = true; return }
  refreshing = true
  try {
    do {
      again = false
      render(await call('api/servers'))
    } while (again)
  } catch (e) {
    if (!state.loggedOut) notice(`Could not read the servers: ${e.message}`)
  } finally {
    refreshing = false
  }
}

function activity(kind, label, text, detail, data) {
  const list = document.getElementById('activity')
  const item = el('li', {'data-kind': kind, 'data-port': data.port, 'data-asked': data.requestedPort},
    el('time', {text: clock(new Date())}), el('span', {class: `kind ${kind}`, text: label}), text,
    detail ? el('span', {class: 'detail', text: detail, title: detail}) : null)
  list.prepend(item)
  while (list.children.length > MAX_ACTIVITY) list.lastChild.remove()
}

function where(d) {
  return [d.project ? projectLabel(d.project).short : null, shortCommand(d.command)].filter(Boolean).join(' · ')
}

function onEvent(e) {
  const d = e.data
  if (e.type === 'lease.created') {
    if (d.requestedPort !== null && d.requestedPort !== d.port) activity('move', 'moved', `:${d.requestedPort} was taken → :${d.port}`, where(d), d)
    else activity('lease', 'leased', `:${d.port}`, where(d), d)
  } else if (e.type === 'lease.released') {
    activity('release', 'released', `:${d.port} (${d.reason})`, where(d), d)
  } else if (e.type === 'connect.followed') {
    activity('follow', 'followed', `pid ${d.pid} connected to :${d.from}, sent on to :${d.to}`, where(d), {port: d.to, requestedPort: d.from})
  } else if (e.type === 'daemon.stopping') {
    activity('daemon', 'daemon', `stopping (${d.reason})`, '', {})
  }
  if (e.type.startsWith('lease.')) refresh()
  // A lease is made at bind(), a moment before the server listens: look again once it has had time to.
  if (e.type === 'lease.created') setTimeout(refresh, 1000)
}

function connect() {
  if (state.loggedOut) return
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/dashboard/api/events`)
  state.socket = ws
  ws.addEventListener('open', () => {
    state.retryMs = 500
    setConnection('live', 'live')
    refresh() // whatever happened while we were away
  })
  ws.addEventListener('message', (m) => {
    try { onEvent(JSON.parse(m.data)) } catch { /* not an event we know */ }
  })
  ws.addEventListener('close', () => {
    if (state.socket !== ws || state.loggedOut) return
    setConnection('connecting', 'reconnecting…')
    // A refused upgrade looks like any close: the refresh finds out whether the session is gone.
    refresh()
    setTimeout(connect, state.retryMs)
    state.retryMs = Math.min(state.retryMs * 2, 10_000)
  })
}

// No event says that a server started or stopped listening (nor does time pass for "since" by itself): while
// the page is in view it asks again now and then, one kernel question each time.
setInterval(() => { if (document.visibilityState === 'visible') refresh() }, 10_000)
refresh()
connect()
