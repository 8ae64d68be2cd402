import type { OutgoingMessage } from '../protocol/index.js';

/**
 * The events of processes whose `process/start` response has not been sent yet: a client must see
 * the response before the process's first output, so those events wait here until it is sent.
 */
export class StartHold {
  private readonly held = new Map<string, OutgoingMessage[]>();

  /** Events of `processId` wait from now until `release`. */
  begin(processId: string): void {
    if (!this.held.has(processId)) this.held.set(processId, []);
  }

  /** Keeps the message when its process is being started; false when it may go out now. */
  hold(processId: string, message: OutgoingMessage): boolean {
    const queue = this.held.get(processId);
    queue?.push(message);
    return queue !== undefined;
  }

  /** The response went out: the held events, in order, to send now. */
  release(processId: string): OutgoingMessage[] {
    const queue = this.held.get(processId);
    this.held.delete(processId);
    return queue ?? [];
  }

  clear(): void {
    this.held.clear();
  }
}
