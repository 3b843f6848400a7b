// Stable error codes: the wire format is {"error":{"code","message"}}; clients branch on `code`, never on text.
export const ErrorCodes = {
  BAD_REQUEST: 400,
  INVALID_JSON: 400,
  VALIDATION_FAILED: 422,
  UNKNOWN_SERVICE: 422,
  PORT_OUT_OF_RANGE: 422,
  RANGE_EXHAUSTED: 409,
  /** A lease of another type already has this name in this project. */
  NAME_TAKEN: 409,
  /** The config file does not validate: the running daemon keeps the types it had. */
  INVALID_CONFIG: 422,
  HOLDER_NOT_RUNNING: 422,
  /** The holder is another user's process. */
  HOLDER_NOT_OURS: 422,
  /** A stop asked of the dashboard for a pid that holds no lease now. */
  NOT_A_HOLDER: 422,
  UNAUTHORIZED: 401,
  /** A dashboard request without a live session cookie (none, expired, or the daemon restarted since the login). */
  NO_SESSION: 401,
  /** A dashboard login link already used, expired (60 s) or never issued. */
  LOGIN_CODE_INVALID: 401,
  FORBIDDEN_ORIGIN: 403,
  FORBIDDEN_HOST: 403,
  /** A dashboard connection made by a process of another user (the kernel says whose each connection is). */
  FORBIDDEN_PEER: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  REQUEST_TIMEOUT: 408,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  HEADERS_TOO_LARGE: 431,
  INTERNAL: 500,
  STORAGE_UNAVAILABLE: 503,
  /** An event subscription refused: the daemon has as many as it keeps (src/daemon/hub.ts). */
  TOO_MANY_SUBSCRIBERS: 503,
  /** The dashboard is served on the TCP listener, which is off (its port taken). */
  DASHBOARD_UNAVAILABLE: 503,
  STORAGE_FULL: 507,
} as const

export type ErrorCode = keyof typeof ErrorCodes

export interface ErrorBody {
  error: {code: ErrorCode | string; message: string; details?: unknown}
}

/** An error the daemon answers with a stable code; anything else becomes INTERNAL. */
export class StyxyError extends Error {
  readonly code: ErrorCode
  readonly status: number
  readonly details?: unknown
  constructor(code: ErrorCode, message: string, details?: unknown) {
    super(message)
    this.code = code
    this.status = ErrorCodes[code]
    this.details = details
  }
}
