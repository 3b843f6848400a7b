// The baseline for the bind route: a bare node:http server doing the least the daemon must also do
// (read the body, parse JSON, answer JSON), on a Unix socket and on TCP, in its own process like the daemon.
import http from 'node:http'
import fs from 'node:fs'

const socket = process.argv[2]
const handler: http.RequestListener = (req, res) => {
  let body = ''
  req.on('data', (c) => (body += c))
  req.on('end', () => {
    const parsed = JSON.parse(body || '{}') as {port?: number}
    const out = JSON.stringify({action: 'allow', port: parsed.port ?? 0, requestedPort: parsed.port ?? 0, service: 'dev', leaseId: 'l-0', repeat: false})
    res.writeHead(200, {'content-type': 'application/json', 'content-length': Buffer.byteLength(out)})
    res.end(out)
  })
}
const unix = http.createServer(handler)
const tcp = http.createServer(handler)
try { fs.unlinkSync(socket) } catch { /* fresh */ }
unix.listen(socket, () => tcp.listen(0, '127.0.0.1', () => {
  process.stdout.write(`ready ${(tcp.address() as {port: number}).port}\n`)
}))
process.on('SIGTERM', () => process.exit(0))
