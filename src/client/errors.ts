import { RpcError } from '../protocol/errors.js';

export { RpcError };

/** The connection went away while a request was in flight (or before it could be sent). */
export class DisconnectedError extends Error {
  constructor(message = 'exec-server connection closed') {
    super(message);
    this.name = 'DisconnectedError';
  }
}
