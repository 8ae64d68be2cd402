import type { OutgoingMessage } from '../protocol/envelope.js';

/** One peer's message channel, as the connection state machine sees it (WebSocket or stdio). */
export interface ServerTransport {
  /** `websocket` or `stdio`: used in the reference's parse-error text. */
  readonly kind: string;
  /** `ip:port` of the peer, or a description. */
  readonly peer: string;
  /** Queues one message (UTF-8 text: a string, its bytes, or its bytes in parts); `flushed` runs once it has been handed to the OS. */
  send(message: OutgoingMessage, flushed: () => void): void;
  /** Closes with a WebSocket close code and reason (stdio just ends). */
  close(code: number, reason: string): void;
}
