import {StyxyCommand} from '../src/cli/base.js'

export default class Mcp extends StyxyCommand {
  static override description = 'A Model Context Protocol server on stdio for coding agents: list_servers, port_of, wait_for_server, allocate_port, release_port, recent_moves, stop_server (docs/agents.md)'
  static override enableJsonFlag = false
  static override examples = ['claude mcp add styxy -- <%= config.bin %> mcp']

  async run(): Promise<void> {
    await this.parse(Mcp)
    // Loaded here: the SDK is large, and no other command needs it.
    const {serveMcp} = await import('../src/mcp/server.js')
    await serveMcp()
  }
}
