import type { Readable, Writable } from 'node:stream';
import type { ServerTransport } from './transport.js';

export interface StdioHandlers {
  message(text: string): void;
  /** A line over the message limit was dropped. */
  oversized(bytes: number): void;
  close(): void;
}

/**
 * Newline-delimited JSON-RPC over a pair of streams (`--listen stdio`). Lines longer than
 * `maxMessageBytes` are dropped up to the next newline and reported, never buffered whole.
 */
export function serveLines(
  input: Readable,
  output: Writable,
  maxMessageBytes: number,
  accept: (t: ServerTransport) => StdioHandlers,
): Promise<void> {
  const transport: ServerTransport = {
    kind: 'stdio',
    peer: 'stdio',
    send: (message, flushed) => {
      if (output.destroyed || output.writableEnded) return flushed();
      if (typeof message === 'string') output.write(`${message}\n`, () => flushed());
      else {
        output.write(message);
        output.write('\n', () => flushed());
      }
    },
    sendPart: (part, last, flushed) => {
      if (output.destroyed || output.writableEnded) return flushed();
      output.write(part, last ? undefined : () => flushed());
      if (last) output.write('\n', () => flushed());
    },
    cork: () => output.cork(),
    uncork: () => output.uncork(),
    close: () => input.destroy(),
  };
  const handlers = accept(transport);
  let parts: Buffer[] = [];
  let size = 0;
  let discarding = false;
  return new Promise((resolve) => {
    input.on('data', (chunk: Buffer) => {
      let start = 0;
      for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
        const piece = chunk.subarray(start, nl);
        start = nl + 1;
        if (discarding || size + piece.length > maxMessageBytes) {
          handlers.oversized(size + piece.length);
        } else {
          parts.push(piece);
          const line = Buffer.concat(parts).toString('utf8').replace(/\r$/, '');
          if (line.trim() !== '') handlers.message(line);
        }
        parts = [];
        size = 0;
        discarding = false;
      }
      const rest = chunk.subarray(start);
      if (rest.length === 0 || discarding) return;
      if (size + rest.length > maxMessageBytes) {
        discarding = true;
        size += rest.length;
        parts = [];
        return;
      }
      parts.push(Buffer.from(rest));
      size += rest.length;
    });
    const done = (): void => {
      handlers.close();
      resolve();
    };
    input.once('end', done);
    input.once('close', done);
    input.on('error', () => undefined);
  });
}
