import {McpServer} from '@modelcontextprotocol/sdk/server/mcp.js'
import {StdioServerTransport} from '@modelcontextprotocol/sdk/server/stdio.js'
import {StyxyClient} from '../client/client.js'
import {startDetached} from '../client/ensure-daemon.js'
import {VERSION} from '../project.js'
import {registerTools} from './tools.js'

const INSTRUCTIONS = [
  'Styxy coordinates the local ports of dev servers: a server whose port is taken is moved to a free one, so the port',
  'you started it with may not be where it listens. Start servers with `styxy run -- <command>`; then ask port_of',
  '(or wait_for_server right after starting one) instead of guessing the port or reading its output.',
].join(' ')

/** The MCP server over stdio until its client goes away (stdin ends) or it is told to stop. */
export async function serveMcp(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const mcp = new McpServer({name: 'styxy', version: VERSION}, {instructions: INSTRUCTIONS})
  const client = StyxyClient.fromEnv(env)
  registerTools(mcp, {
    // Every call makes sure a daemon answers (the CLI's rule): one that stopped meanwhile is started again.
    client: async () => {
      await startDetached(env)
      return client
    },
  })
  const transport = new StdioServerTransport()
  const closed = new Promise<void>((resolve) => {
    mcp.server.onclose = () => resolve()
    process.stdin.once('end', () => resolve())
    process.once('SIGTERM', () => resolve())
    process.once('SIGINT', () => resolve())
  })
  await mcp.connect(transport)
  await closed
  await mcp.close().catch(() => undefined)
}
