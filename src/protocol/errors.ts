export const ErrorCode = {
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  Internal: -32603,
  NotFound: -32004,
} as const;

/** An error that crosses the wire as `{"error":{"code","message"}}`. Its text is part of the contract. */
export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'RpcError';
  }
}

export const invalidRequest = (message: string): RpcError => new RpcError(ErrorCode.InvalidRequest, message);
export const invalidParams = (message: string): RpcError => new RpcError(ErrorCode.InvalidParams, message);
export const internalError = (message: string): RpcError => new RpcError(ErrorCode.Internal, message);
export const notFound = (message: string): RpcError => new RpcError(ErrorCode.NotFound, message);

export const methodNotFound = (method: string): RpcError =>
  new RpcError(ErrorCode.MethodNotFound, `exec-server stub does not implement \`${method}\` yet`);
