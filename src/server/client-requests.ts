import { encodeRequest, type RequestId } from '../protocol/index.js';

export class ClientRequestError extends Error {}

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * Requests from the server to the client on one connection (`network/policyRequest`): integer ids
 * from 1, each settled by the client's response, its timeout, or the connection going away.
 */
export class ClientRequests {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed = false;

  constructor(private readonly send: (text: string) => void, private readonly maxPending = 256) {}

  request(method: string, params: unknown, timeoutMs: number): Promise<unknown> {
    if (this.closed) return Promise.reject(new ClientRequestError('connection closed'));
    if (this.pending.size >= this.maxPending) return Promise.reject(new ClientRequestError(`too many requests pending at the client (limit ${this.maxPending})`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ClientRequestError(`${method} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref();
      this.pending.set(id, { resolve, reject, timer });
      this.send(encodeRequest(id, method, params));
    });
  }

  /** Settles the request a response answers; false when no request of ours has that id. */
  handleResponse(id: RequestId | null, result: unknown, error: unknown): boolean {
    if (typeof id !== 'number') return false;
    const p = this.pending.get(id);
    if (!p) return false;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (error !== undefined) {
      const message = error && typeof error === 'object' && typeof (error as { message?: unknown }).message === 'string' ? (error as { message: string }).message : JSON.stringify(error);
      p.reject(new ClientRequestError(`client answered with an error: ${message}`));
    } else p.resolve(result);
    return true;
  }

  closeAll(): void {
    this.closed = true;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new ClientRequestError('connection closed'));
    }
    this.pending.clear();
  }
}
