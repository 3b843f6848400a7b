import http from 'node:http'

/**
 * A whole HTTP/1.1 answer with a JSON body, for the places that write to a socket themselves (refused
 * upgrades, requests Node's parser refused): always `Connection: close`,
 * since each of them closes the connection once it is written.
 */
export function rawAnswer(status: number, body: unknown): string {
  const text = JSON.stringify(body)
  return `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Error'}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`
}
