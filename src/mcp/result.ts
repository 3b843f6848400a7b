import type {CallToolResult} from '@modelcontextprotocol/sdk/types.js'
import {ApiError, TransportError} from '../client/client.js'
import {StopError} from '../servers/stop.js'
import {WaitTimeout} from '../servers/wait.js'

/** A failure a tool reports with a stable code: the daemon's own codes pass through unchanged. */
export class ToolError extends Error {
  constructor(readonly code: string, message: string) {
    super(message)
  }
}

/** A tool's answer: the object as structured content, and the same JSON as text for clients that only read text. */
export function ok(result: Record<string, unknown>): CallToolResult {
  return {content: [{type: 'text', text: JSON.stringify(result, null, 2)}], structuredContent: result}
}

/** A failure as a tool error (isError), never a protocol error: the model reads the code and the message. */
export function failure(error: unknown): CallToolResult {
  const {code, message} = classify(error)
  return {isError: true, content: [{type: 'text', text: `${code}: ${message}`}], structuredContent: {error: {code, message}}}
}

function classify(error: unknown): {code: string; message: string} {
  if (error instanceof ToolError || error instanceof ApiError || error instanceof TransportError || error instanceof StopError || error instanceof WaitTimeout) {
    return {code: error.code, message: error.message}
  }
  return {code: 'INTERNAL', message: (error as Error)?.message ?? String(error)}
}

/** Run a tool's body, turning whatever it throws into a tool error. */
export async function answer(body: () => Promise<Record<string, unknown>>): Promise<CallToolResult> {
  try {
    return ok(await body())
  } catch (error) {
    return failure(error)
  }
}
