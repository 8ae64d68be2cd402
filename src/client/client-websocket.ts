import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import { frameHeaderBytes, framePayloadLength, headerBytesFor, writeFrameHeader } from '../protocol/websocket-frame.js';
import { MessageAssembler } from './message-assembler.js';

/**
 * The client end of a WebSocket (RFC 6455), just what an exec-server client needs: text messages
 * out, masked and fragmented when large; messages in, handed over payload piece by payload piece to
 * a MessageAssembler so a large base64 field is decoded while the message is still arriving (see
 * message-assembler.ts). `ws` joins every message whole before handing it over, which is what this
 * is written to avoid; the server side keeps using `ws`.
 */

const ACCEPT_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** Messages larger than this go out as fragments of this size (servers bound frames tighter than messages). */
export const FRAGMENT_BYTES = 1024 * 1024;
/** Below this size a frame's header and payload are joined into one write. */
const JOIN_BELOW = 16 * 1024;
const CLOSE_TIMEOUT_MS = 1000;

type Masker = (source: Buffer, mask: Buffer, output: Buffer, offset: number, length: number) => void;

/** bufferutil's native masking when it loads (it is what ws uses), a plain loop otherwise. */
const applyMask: Masker = (() => {
  try {
    return (createRequire(import.meta.url)('bufferutil') as { mask: Masker }).mask;
  } catch {
    return (source, mask, output, offset, length) => {
      for (let i = 0; i < length; i++) output[offset + i] = (source[i] as number) ^ (mask[i & 3] as number);
    };
  }
})();

export interface ClientWebSocketOptions {
  headers: Record<string, string>;
  /** Bound on the TCP connect and the upgrade answer (default: none). */
  timeoutMs?: number;
  /** Largest incoming message; a larger one closes the connection with 1009. */
  maxMessageBytes: number;
  onMessage(message: Record<string, unknown>): void;
  /** Called once, when the connection is gone: the close code received (1006 when none was). */
  onClose(code: number, reason: string): void;
}

export class ClientWebSocket {
  private readonly header = Buffer.alloc(14);
  private readonly randomPool = Buffer.alloc(1024);
  private randomAt = 1024;
  private headerLen = 0;
  private frame: { fin: boolean; opcode: number; left: number } | undefined;
  private control: Buffer[] = [];
  private message: MessageState | undefined;
  private closeSent = false;
  private closeCode = 1006;
  private closeReason = '';
  private ended = false;
  private readonly closed: Promise<void>;

  /** Opens a connection to a ws:// or wss:// URL; rejects when the server refuses the upgrade. */
  static connect(url: string, options: ClientWebSocketOptions): Promise<ClientWebSocket> {
    return new Promise((resolve, reject) => {
      let target: URL;
      try {
        target = new URL(url);
      } catch {
        return reject(new Error(`invalid WebSocket URL: ${url}`));
      }
      if (target.protocol !== 'ws:' && target.protocol !== 'wss:')
        return reject(new Error(`unsupported URL scheme ${target.protocol} (use ws:// or wss://)`));
      const key = randomBytes(16).toString('base64');
      const request = (target.protocol === 'wss:' ? https : http).request({
        host: target.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: target.port || (target.protocol === 'wss:' ? 443 : 80),
        path: `${target.pathname}${target.search}`,
        method: 'GET',
        headers: {
          ...options.headers,
          Connection: 'Upgrade',
          Upgrade: 'websocket',
          'Sec-WebSocket-Version': '13',
          'Sec-WebSocket-Key': key,
        },
      });
      if (options.timeoutMs !== undefined) {
        const ms = options.timeoutMs;
        request.setTimeout(ms, () => request.destroy(new Error(`exec-server did not accept the connection within ${ms} ms`)));
      }
      request.once('upgrade', (response, socket, head) => {
        request.setTimeout(0);
        const expected = createHash('sha1')
          .update(key + ACCEPT_GUID)
          .digest('base64');
        if (response.headers['sec-websocket-accept'] !== expected) {
          socket.destroy();
          return reject(new Error('exec-server answered the upgrade with a wrong Sec-WebSocket-Accept'));
        }
        resolve(new ClientWebSocket(socket, head, options));
      });
      request.once('response', (response) => {
        response.resume();
        const status = response.statusCode ?? 0;
        const why =
          status === 401
            ? options.headers.authorization
              ? ': the server rejected the bearer token'
              : ': the server requires a bearer token and none was given'
            : '';
        reject(
          new Error(
            `exec-server refused the connection: HTTP ${status}${response.statusMessage ? ` ${response.statusMessage}` : ''}${why}`,
          ),
        );
      });
      request.once('error', reject);
      request.end();
    });
  }

  private constructor(
    private readonly socket: Duplex,
    head: Buffer,
    private readonly options: ClientWebSocketOptions,
  ) {
    (socket as Duplex & { setNoDelay?(on: boolean): void }).setNoDelay?.(true);
    this.closed = new Promise((resolve) => {
      socket.once('close', () => {
        this.ended = true;
        this.options.onClose(this.closeCode, this.closeReason);
        resolve();
      });
    });
    socket.on('error', () => undefined); // 'close' follows
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    if (head.length > 0) this.receive(head);
  }

  get isOpen(): boolean {
    return !this.closeSent && !this.ended && !this.socket.destroyed;
  }

  /** The underlying socket (tests pause it to stop reading). */
  get rawSocket(): Duplex {
    return this.socket;
  }

  /** Sends a text message; `sent` hears a write error, or nothing once it is written. */
  send(text: string, sent?: (err?: Error) => void): void {
    if (!this.isOpen) {
      sent?.(new Error('the connection is not open'));
      return;
    }
    const length = Buffer.byteLength(text);
    if (length < JOIN_BELOW) return this.writeSmallFrame(0x81, text, length, sent);
    const bytes = Buffer.from(text);
    if (bytes.length <= FRAGMENT_BYTES) return this.writeFrame(0x81, bytes, sent);
    for (let off = 0; off < bytes.length; off += FRAGMENT_BYTES) {
      const last = off + FRAGMENT_BYTES >= bytes.length;
      this.writeFrame((last ? 0x80 : 0) | (off === 0 ? 0x1 : 0x0), bytes.subarray(off, off + FRAGMENT_BYTES), last ? sent : undefined);
    }
  }

  /** Closes with `code` and waits (bounded) for the server to close too. */
  close(code = 1000): Promise<void> {
    if (!this.ended) {
      this.sendClose(code);
      setTimeout(() => this.socket.destroy(), CLOSE_TIMEOUT_MS).unref();
    }
    return this.closed;
  }

  /** Drops the connection at once. */
  terminate(): void {
    this.socket.destroy();
  }

  private sendClose(code: number, reason = ''): void {
    if (this.closeSent || this.ended) return;
    const payload = Buffer.alloc(2 + Buffer.byteLength(reason));
    payload.writeUInt16BE(code, 0);
    payload.write(reason, 2);
    this.writeFrame(0x88, payload);
    this.closeSent = true;
  }

  /** A small text frame built in one buffer: the text is encoded straight into it and masked there. */
  private writeSmallFrame(first: number, text: string, length: number, sent?: (err?: Error) => void): void {
    const maskAt = headerBytesFor(length, false);
    const frame = Buffer.allocUnsafe(maskAt + 4 + length);
    writeFrameHeader(frame, first, length, true);
    const mask = this.maskKey(frame, maskAt);
    frame.write(text, maskAt + 4);
    const payload = frame.subarray(maskAt + 4);
    applyMask(payload, mask, payload, 0, length);
    this.socket.write(frame, sent ? (err?: Error | null) => sent(err ?? undefined) : undefined);
  }

  /** `payload` is masked in place: callers pass memory of their own. */
  private writeFrame(first: number, payload: Buffer, sent?: (err?: Error) => void): void {
    const length = payload.length;
    const maskAt = headerBytesFor(length, false);
    const header = Buffer.allocUnsafe(maskAt + 4);
    writeFrameHeader(header, first, length, true);
    const mask = this.maskKey(header, maskAt);
    applyMask(payload, mask, payload, 0, length);
    const done = sent ? (err?: Error | null) => sent(err ?? undefined) : undefined;
    if (length < JOIN_BELOW) {
      this.socket.write(Buffer.concat([header, payload]), done);
      return;
    }
    this.socket.cork();
    this.socket.write(header);
    this.socket.write(payload, done);
    this.socket.uncork();
  }

  /** Fills a fresh mask key at `at` from a pool of random bytes (one crypto call per 256 frames). */
  private maskKey(target: Buffer, at: number): Buffer {
    if (this.randomAt + 4 > this.randomPool.length) {
      randomFillSync(this.randomPool);
      this.randomAt = 0;
    }
    this.randomPool.copy(target, at, this.randomAt, this.randomAt + 4);
    this.randomAt += 4;
    return target.subarray(at, at + 4);
  }

  /** Parses frames out of `chunk`, passing payload on without copying it. */
  private receive(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length && !this.ended && !this.socket.destroyed) {
      const frame = this.frame;
      if (!frame) {
        const need = this.headerLen < 2 ? 2 : frameHeaderBytes(this.header[1] as number);
        const take = Math.min(need - this.headerLen, chunk.length - off);
        chunk.copy(this.header, this.headerLen, off, off + take);
        this.headerLen += take;
        off += take;
        if (this.headerLen < 2 || this.headerLen < frameHeaderBytes(this.header[1] as number)) continue;
        this.headerLen = 0;
        if (!this.startFrame()) return;
        continue;
      }
      const take = Math.min(frame.left, chunk.length - off);
      const piece = chunk.subarray(off, off + take);
      off += take;
      frame.left -= take;
      if (frame.opcode >= 0x8) this.control.push(piece);
      else this.message?.assembler.feed(piece, frame.left);
      if (frame.left === 0) this.endFrame(frame);
    }
  }

  /** Checks the header just read; false when the connection was failed for it. */
  private startFrame(): boolean {
    const b0 = this.header[0] as number;
    const b1 = this.header[1] as number;
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    if (b0 & 0x70) return this.fail(1002, 'reserved bits set');
    if (b1 & 0x80) return this.fail(1002, 'the server masked a frame');
    const length = framePayloadLength(this.header, 0);
    if (opcode >= 0x8) {
      if (opcode > 0xa) return this.fail(1002, `unknown opcode ${opcode}`);
      if (!fin || length > 125) return this.fail(1002, 'invalid control frame');
      this.control = [];
    } else if (opcode === 0x1 || opcode === 0x2) {
      if (this.message) return this.fail(1002, 'a new message began before the last one ended');
      this.message = { assembler: new MessageAssembler(), bytes: 0 };
    } else if (opcode !== 0x0 || !this.message) {
      return this.fail(1002, opcode === 0x0 ? 'a continuation frame outside a message' : `unknown opcode ${opcode}`);
    }
    if (opcode < 0x8 && this.message) {
      this.message.bytes += length;
      if (this.message.bytes > this.options.maxMessageBytes)
        return this.fail(1009, `message exceeds ${this.options.maxMessageBytes} bytes`);
    }
    this.frame = { fin, opcode, left: length };
    if (length === 0) this.endFrame(this.frame);
    return true;
  }

  private endFrame(frame: { fin: boolean; opcode: number }): void {
    this.frame = undefined;
    if (frame.opcode >= 0x8) {
      const payload = this.control.length === 1 ? (this.control[0] as Buffer) : Buffer.concat(this.control);
      this.control = [];
      if (frame.opcode === 0x8) {
        this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        this.closeReason = payload.length > 2 ? payload.toString('utf8', 2) : '';
        this.sendClose(payload.length >= 2 ? this.closeCode : 1000);
        this.socket.end();
        // The server closes the TCP connection next; should it not, do not wait for it forever.
        setTimeout(() => this.socket.destroy(), CLOSE_TIMEOUT_MS).unref();
      } else if (frame.opcode === 0x9 && this.isOpen) this.writeFrame(0x8a, Buffer.from(payload));
      return;
    }
    if (!frame.fin) return;
    const message = this.message;
    this.message = undefined;
    const decoded = message?.assembler.finish();
    if (decoded) this.options.onMessage(decoded);
  }

  private fail(code: number, reason: string): false {
    this.sendClose(code, reason);
    this.closeCode = code;
    this.closeReason = reason;
    this.socket.destroy();
    this.ended = true;
    return false;
  }
}

interface MessageState {
  assembler: MessageAssembler;
  bytes: number;
}
