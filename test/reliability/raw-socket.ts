import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { SEED } from './harness.js';

/** One WebSocket frame as bytes; `declaredLength` may lie about the payload (a truncated frame). */
export interface FrameSpec {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Uint8Array;
  lengthForm: 'min' | '16' | '64';
  declaredLength?: number;
}

export function encodeFrame(f: FrameSpec): Buffer {
  const len = f.declaredLength ?? f.payload.length;
  const form = f.lengthForm === 'min' ? (len < 126 ? 'min' : len < 65536 ? '16' : '64') : f.lengthForm;
  const head: number[] = [(f.fin ? 0x80 : 0) | ((f.rsv & 7) << 4) | (f.opcode & 0xf)];
  const maskBit = f.masked ? 0x80 : 0;
  let lenBytes: Buffer;
  if (form === 'min' && len < 126) {
    head.push(maskBit | len);
    lenBytes = Buffer.alloc(0);
  } else if (form === '16' && len < 65536) {
    head.push(maskBit | 126);
    lenBytes = Buffer.alloc(2);
    lenBytes.writeUInt16BE(len);
  } else {
    head.push(maskBit | 127);
    lenBytes = Buffer.alloc(8);
    lenBytes.writeBigUInt64BE(BigInt(len));
  }
  const payload = Buffer.from(f.payload);
  if (!f.masked) return Buffer.concat([Buffer.from(head), lenBytes, payload]);
  const mask = randomBytes(4);
  for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] as number) ^ (mask[i & 3] as number);
  return Buffer.concat([Buffer.from(head), lenBytes, mask, payload]);
}

export const textFrame = (text: string): Buffer =>
  encodeFrame({ fin: true, rsv: 0, opcode: 1, masked: true, payload: Buffer.from(text), lengthForm: 'min' });

export interface ServerFrame {
  opcode: number;
  payload: Buffer;
}

/** A raw TCP client that did the WebSocket upgrade itself, and parses what the server sends. */
export class RawWebSocket {
  readonly frames: ServerFrame[] = [];
  private buffer: Buffer = Buffer.alloc(0);
  ended = false;
  /** Whether a close frame came before the connection ended. */
  get sawClose(): boolean {
    return this.frames.some((f) => f.opcode === 8);
  }
  readonly end: Promise<void>;
  private listeners: (() => void)[] = [];

  private constructor(
    readonly socket: net.Socket,
    rest: Buffer,
  ) {
    this.end = new Promise((resolve) =>
      socket.once('close', () => {
        this.ended = true;
        this.notify();
        resolve();
      }),
    );
    socket.on('error', () => undefined);
    socket.on('data', (d: Buffer) => this.onData(d));
    if (rest.length) this.onData(rest);
  }

  static async connect(url: string): Promise<RawWebSocket> {
    const { hostname, port } = new URL(url);
    const socket = net.connect({ host: hostname, port: Number(port) });
    socket.on('error', () => undefined);
    const key = randomBytes(16).toString('base64');
    const rest = await new Promise<Buffer>((resolve, reject) => {
      let got = Buffer.alloc(0);
      const onData = (d: Buffer): void => {
        got = Buffer.concat([got, d]);
        const end = got.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onData);
        const head = got.subarray(0, end).toString('latin1');
        if (!/^HTTP\/1\.1 101/.test(head)) return reject(new Error(`upgrade refused: ${head}`));
        resolve(got.subarray(end + 4));
      };
      socket.on('data', onData);
      socket.once('error', reject);
      socket.once('close', () => reject(new Error('closed during the upgrade')));
      socket.write(
        `GET / HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    socket.removeAllListeners('close');
    return new RawWebSocket(socket, rest);
  }

  private onData(d: Buffer): void {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, d]) : d;
    for (;;) {
      if (this.buffer.length < 2) break;
      const b1 = this.buffer[1] as number;
      let len = b1 & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buffer.length < 4) break;
        len = this.buffer.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buffer.length < 10) break;
        len = Number(this.buffer.readBigUInt64BE(2));
        off = 10;
      }
      if (this.buffer.length < off + len) break;
      this.frames.push({ opcode: (this.buffer[0] as number) & 0xf, payload: this.buffer.subarray(off, off + len) });
      this.buffer = this.buffer.subarray(off + len);
    }
    this.notify();
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }

  /** Resolves once `pred` holds (checked on every frame and at the end), or after `timeoutMs` with false. */
  waitFor(pred: () => boolean, timeoutMs: number): Promise<boolean> {
    if (pred()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = (): void => {
        if (!pred()) return;
        done(true);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      const done = (v: boolean): void => {
        clearTimeout(timer);
        this.listeners.splice(this.listeners.indexOf(check), 1);
        resolve(v);
      };
      this.listeners.push(check);
    });
  }

  /** The JSON text messages received so far (single-frame ones). */
  texts(): string[] {
    return this.frames.filter((f) => f.opcode === 1).map((f) => f.payload.toString('utf8'));
  }

  hasResponse(id: string): boolean {
    return this.texts().some((t) => t.includes(`"id":${JSON.stringify(id)}`));
  }

  write(data: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(data);
  }

  destroy(): void {
    this.socket.destroy();
  }

  describe(): string {
    return `frames received: ${this.frames.map((f) => f.opcode).join(',')}; ended ${this.ended} (seed ${SEED})`;
  }
}
