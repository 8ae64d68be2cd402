/** One peer's message channel, as the dispatcher and outbox see it (WebSocket or stdio). */
export interface ServerTransport {
  /** `websocket` or `stdio`: used in the reference's parse-error text. */
  readonly kind: string;
  /** `ip:port` of the peer, or a description. */
  readonly peer: string;
  /** Queues one message (UTF-8 text, as a string or its bytes); `flushed` runs once it has been handed to the OS. */
  send(message: string | Buffer, flushed: () => void): void;
  /**
   * Queues one part of a message sent in parts; `last` ends the message. The caller sends a
   * message's parts consecutively, with no other message in between.
   */
  sendPart(part: Buffer, last: boolean, flushed: () => void): void;
  /** Holds writes back until `uncork`, so several messages leave in one system call. */
  cork(): void;
  uncork(): void;
  /** Closes with a WebSocket close code and reason (stdio just ends). */
  close(code: number, reason: string): void;
}
