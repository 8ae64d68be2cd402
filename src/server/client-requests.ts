import { encodeRequest, type RequestId } from '../protocol/index.js';

/** A request the client answered with a JSON-RPC error. */
export class ClientRequestError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * Server-to-client JSON-RPC requests on one connection: integer ids from 1, each answered by the
 * client's response with that id, or failed by a timeout or by the connection going away. Used for
 * `execPolicy/request` and `network/policyRequest`.
 */
export class ClientRequests {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed = false;

  constructor(
    private readonly send: (text: string) => void,
    private readonly maxPending = 256,
  ) {}

  request(method: string, params: unknown, timeoutMs: number): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error('the client disconnected'));
    if (this.pending.size >= this.maxPending)
      return Promise.reject(new Error(`too many requests pending at the client (limit ${this.maxPending})`));
    const id = this.nextId++;
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`the client did not answer ${method} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.send(encodeRequest(id, method, params));
    });
  }

  /** A response from the client; false when it answers no request of ours. */
  handleResponse(id: RequestId | null, result: unknown, error: unknown): boolean {
    if (typeof id !== 'number') return false;
    const p = this.pending.get(id);
    if (!p) return false;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (error !== undefined && error !== null) {
      const e = error as { code?: unknown; message?: unknown };
      p.reject(
        new ClientRequestError(typeof e.code === 'number' ? e.code : 0, typeof e.message === 'string' ? e.message : JSON.stringify(error)),
      );
    } else p.resolve(result);
    return true;
  }

  /** The connection is gone: every outstanding request fails. */
  close(): void {
    this.closed = true;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new Error('the client disconnected'));
    }
    this.pending.clear();
  }
}
