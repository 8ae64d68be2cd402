import { randomBytes, timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import { Duplex } from 'node:stream';
import type { DatagramPort } from '../network/socks5-udp.js';

/**
 * Host end of the sandbox network bridge (net-bridge-script.ts is the other end). Frames on the
 * channel: type u8, stream id u32, length u32, payload. The bridge opens streams (OPEN carries the
 * endpoint index); DATA is flow-controlled by credit: each side may have WINDOW bytes unacknowledged
 * per stream and ACKs what it has handed on. END is a half-close, RESET an abort. For a SOCKS5 UDP
 * association the host sends UDP_OPEN on the control connection's stream, the bridge binds a UDP
 * port in the namespace and answers UDP_BOUND (u16 port); DGRAM frames then carry one datagram each
 * way, unacknowledged and dropped under backlog. The port closes with the stream.
 */
const T = { OPEN: 1, DATA: 2, END: 3, RESET: 4, ACK: 5, UDP_OPEN: 6, UDP_BOUND: 7, DGRAM: 8 } as const;
/** Datagrams are dropped, as UDP may be, rather than queued past this. */
const DGRAM_BACKLOG = 4 * 1024 * 1024;
const UDP_OPEN_TIMEOUT_MS = 10_000;
const WINDOW = 2 * 1024 * 1024;
const MAX_FRAME = 64 * 1024;
const MAX_STREAMS = 1024;
const TOKEN_BYTES = 32;

function header(type: number, id: number, len: number): Buffer {
  const h = Buffer.allocUnsafe(9);
  h.writeUInt8(type, 0);
  h.writeUInt32BE(id, 1);
  h.writeUInt32BE(len, 5);
  return h;
}

/** One relayed connection, as a Duplex the proxy serves like a socket. */
class MuxStream extends Duplex {
  credit = WINDOW;
  private waiting: (() => void) | undefined;
  private unacked = 0;
  gotEnd = false;
  sentEnd = false;

  constructor(
    private readonly mux: HostMux,
    readonly id: number,
    readonly cordonClient: string,
  ) {
    super({ allowHalfOpen: true, readableHighWaterMark: WINDOW, writableHighWaterMark: WINDOW });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    for (let o = 0; o < chunk.length; o += MAX_FRAME) this.mux.send(T.DATA, this.id, chunk.subarray(o, o + MAX_FRAME));
    this.credit -= chunk.length;
    if (this.credit > 0) cb();
    else this.waiting = () => cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.sentEnd = true;
    this.mux.send(T.END, this.id);
    cb();
  }

  override _read(): void {
    if (this.unacked > 0) this.ack();
  }

  /** A UDP port inside the sandbox for this stream's SOCKS5 association (socks5-udp.ts). */
  openDatagramPort(): Promise<DatagramPort> {
    if (this.udpBound || this.destroyed) return Promise.reject(new Error('no datagram port on this stream'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error('the sandbox bridge did not open a UDP port')), UDP_OPEN_TIMEOUT_MS);
      const fail = (e: Error): void => {
        clearTimeout(timer);
        this.udpBound = undefined;
        reject(e);
      };
      this.once('close', () => fail(new Error('stream closed')));
      this.udpBound = (port) => {
        clearTimeout(timer);
        resolve({
          address: '127.0.0.1',
          port,
          send: (d) => this.mux.sendDatagram(this.id, d),
          onMessage: (l) => (this.datagramListener = l),
          close: () => (this.datagramListener = undefined),
        });
      };
      this.mux.send(T.UDP_OPEN, this.id);
    });
  }

  udpBound: ((port: number) => void) | undefined;
  datagramListener: ((d: Buffer) => void) | undefined;

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.mux.forget(this.id) && !(this.gotEnd && this.sentEnd)) this.mux.send(T.RESET, this.id);
    cb(err);
  }

  private ack(): void {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(this.unacked, 0);
    this.unacked = 0;
    this.mux.send(T.ACK, this.id, b);
  }

  received(data: Buffer): void {
    this.unacked += data.length;
    if (this.push(data)) this.ack();
  }

  credited(n: number): void {
    this.credit += n;
    if (this.credit > 0 && this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      w();
    }
  }

  ended(): void {
    this.gotEnd = true;
    this.push(null);
  }

  // What http.Server touches on a socket.
  setTimeout(): this {
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
}

export type BridgeAccept = (endpointIndex: number, stream: Duplex) => void;

class HostMux {
  private readonly streams = new Map<number, MuxStream>();
  private buf: Buffer = Buffer.alloc(0);

  constructor(
    private readonly socket: net.Socket,
    private readonly onStream: BridgeAccept,
    private readonly label: string,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.onData(d));
    const drop = (): void => {
      for (const s of [...this.streams.values()]) s.destroy();
      this.streams.clear();
    };
    socket.on('close', drop);
    socket.on('error', () => socket.destroy());
  }

  send(type: number, id: number, payload?: Buffer): void {
    if (this.socket.destroyed) return;
    this.socket.write(payload && payload.length > 0 ? Buffer.concat([header(type, id, payload.length), payload]) : header(type, id, 0));
  }

  sendDatagram(id: number, d: Buffer): void {
    if (d.length <= MAX_FRAME && this.socket.writableLength < DGRAM_BACKLOG) this.send(T.DGRAM, id, d);
  }

  forget(id: number): boolean {
    return this.streams.delete(id);
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length > 0 ? Buffer.concat([this.buf, d]) : d;
    while (this.buf.length >= 9) {
      const len = this.buf.readUInt32BE(5);
      if (len > MAX_FRAME) return void this.socket.destroy(); // the bridge never sends more; anything else is an attack or a bug
      if (this.buf.length < 9 + len) break;
      const type = this.buf[0] as number;
      const id = this.buf.readUInt32BE(1);
      const payload = this.buf.subarray(9, 9 + len);
      this.buf = this.buf.subarray(9 + len);
      if (type === T.OPEN) {
        if (this.streams.has(id) || this.streams.size >= MAX_STREAMS) {
          this.send(T.RESET, id);
          continue;
        }
        const s = new MuxStream(this, id, `${this.label}#${id}`);
        this.streams.set(id, s);
        this.onStream(payload[0] ?? 0, s);
        continue;
      }
      const s = this.streams.get(id);
      if (!s) continue;
      if (type === T.DATA) s.received(payload);
      else if (type === T.DGRAM) s.datagramListener?.(Buffer.from(payload));
      else if (type === T.UDP_BOUND && len === 2) {
        const bound = s.udpBound;
        s.udpBound = () => undefined; // once
        bound?.(payload.readUInt16BE(0));
      } else if (type === T.ACK && len === 4) s.credited(payload.readUInt32BE(0));
      else if (type === T.END) s.ended();
      else if (type === T.RESET) {
        this.streams.delete(id);
        s.destroy();
      }
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

/**
 * A one-connection loopback listener the sandbox wrapper dials before bubblewrap starts (bash's
 * /dev/tcp), proving itself with a token passed in its environment. Anything else that connects
 * is dropped; after the first valid connection the listener closes.
 */
export class BridgeChannel {
  readonly token = randomBytes(TOKEN_BYTES).toString('hex');
  private server: net.Server | undefined;
  private mux: HostMux | undefined;
  port = 0;

  constructor(
    private readonly onStream: BridgeAccept,
    private readonly label: string,
  ) {}

  async open(): Promise<void> {
    const expected = Buffer.from(this.token);
    this.server = net.createServer((socket) => {
      let got: Buffer = Buffer.alloc(0);
      const timer = setTimeout(() => socket.destroy(), 30_000);
      const onData = (d: Buffer): void => {
        got = Buffer.concat([got, d]);
        if (got.length < expected.length) return;
        clearTimeout(timer);
        socket.removeListener('data', onData);
        if (this.mux || !timingSafeEqual(got.subarray(0, expected.length), expected)) return void socket.destroy();
        this.server?.close();
        this.mux = new HostMux(socket, this.onStream, this.label);
        const rest = got.subarray(expected.length);
        if (rest.length > 0) socket.emit('data', rest);
      };
      socket.on('data', onData);
      socket.on('error', () => socket.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      this.server?.once('error', reject);
      this.server?.listen(0, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  close(): void {
    this.server?.close();
    this.mux?.close();
  }
}
