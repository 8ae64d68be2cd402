export const ErrorCode = {
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  Internal: -32603,
  NotFound: -32004,
  /** 0.171: resuming a session another connection still holds (0.141 said -32600); a client may retry. */
  SessionAttached: -32010,
} as const;

/**
 * An error that crosses the wire as `{"error":{"code","data"?,"message"}}`. Its text is part of the
 * contract; `data` (0.171+) is a JSON value the client may branch on, e.g. `{"kind":"spawnNotFound"}`.
 */
export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
    this.name = 'RpcError';
  }
}

/** `process/start` failure kinds (0.171 `ProcessStartErrorData`), carried as `data.kind`. */
export type ProcessStartErrorKind = 'spawnNotFound' | 'spawnPermissionDenied' | 'spawnFailed' | 'sandboxUnavailable' | 'sandboxPreparation';

export const withKind = (err: RpcError, kind: ProcessStartErrorKind): RpcError => new RpcError(err.code, err.message, { kind });

export const invalidRequest = (message: string): RpcError => new RpcError(ErrorCode.InvalidRequest, message);
export const invalidParams = (message: string): RpcError => new RpcError(ErrorCode.InvalidParams, message);
export const internalError = (message: string): RpcError => new RpcError(ErrorCode.Internal, message);
export const notFound = (message: string): RpcError => new RpcError(ErrorCode.NotFound, message);

export const methodNotFound = (method: string): RpcError =>
  new RpcError(ErrorCode.MethodNotFound, `exec-server stub does not implement \`${method}\` yet`);
