import type { Duplex } from 'node:stream';
import { type Dial, dialFirst } from './dial.js';
import { clientOf, splice } from './http-proxy.js';
import type { NetworkPolicy } from './policy.js';
import { type DatagramPort, type OpenDatagramPort, relayDatagrams } from './socks5-udp.js';

/** Reads exactly n bytes from a paused stream, or rejects when it ends first. */
class ByteReader {
  private buf: Buffer = Buffer.alloc(0);
  private waiter: (() => void) | undefined;
  private ended = false;

  constructor(private readonly stream: Duplex) {
    stream.on('data', this.onData);
    stream.once('end', this.onEnd);
    stream.once('close', this.onEnd);
    stream.once('error', this.onEnd);
  }

  private readonly onData = (chunk: Buffer): void => {
    this.buf = Buffer.concat([this.buf, chunk]);
    if (this.buf.length > 4096) this.stream.destroy(); // a handshake is a few hundred bytes at most
    this.waiter?.();
  };

  private readonly onEnd = (): void => {
    this.ended = true;
    this.waiter?.();
  };

  async read(n: number): Promise<Buffer> {
    while (this.buf.length < n) {
      if (this.ended) throw new Error('closed during handshake');
      await new Promise<void>((resolve) => (this.waiter = resolve));
      this.waiter = undefined;
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** Stops reading; returns bytes read past the handshake. */
  detach(): Buffer {
    this.stream.removeListener('data', this.onData);
    this.stream.removeListener('end', this.onEnd);
    this.stream.removeListener('close', this.onEnd);
    this.stream.removeListener('error', this.onEnd);
    this.stream.pause();
    return this.buf;
  }
}

const REPLY = {
  ok: 0x00,
  failure: 0x01,
  notAllowed: 0x02,
  hostUnreachable: 0x04,
  refused: 0x05,
  commandNotSupported: 0x07,
  addressNotSupported: 0x08,
};

const reply = (code: number): Buffer => Buffer.from([0x05, code, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);

/**
 * SOCKS5 (RFC 1928), no-auth only, CONNECT, and UDP ASSOCIATE when the caller can open a datagram
 * port the client reaches (socks5-udp.ts); BIND (and UDP without such a port) gets 07. Written here
 * rather than taken from npm: the server side is ~100 lines, and the maintained packages are
 * client-oriented or carry their own connection logic that would dial names, not checked addresses.
 */
export async function serveSocks5(stream: Duplex, policy: NetworkPolicy, dial: Dial, openDatagramPort?: OpenDatagramPort): Promise<void> {
  const r = new ByteReader(stream);
  stream.on('error', () => stream.destroy());
  try {
    const [ver, nMethods] = await r.read(2);
    if (ver !== 0x05) return void stream.destroy(); // SOCKS4 and garbage: closed without a reply
    const methods = await r.read(nMethods as number);
    if (!methods.includes(0x00)) return void stream.end(Buffer.from([0x05, 0xff]));
    stream.write(Buffer.from([0x05, 0x00]));
    const [v, cmd, , atyp] = await r.read(4);
    if (v !== 0x05) return void stream.destroy();
    let host: string;
    if (atyp === 0x01) host = [...(await r.read(4))].join('.');
    else if (atyp === 0x04) {
      const b = await r.read(16);
      host = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2).toString(16)).join(':');
    } else if (atyp === 0x03) {
      const [len] = await r.read(1);
      host = (await r.read(len as number)).toString('latin1');
    } else return void stream.end(reply(REPLY.addressNotSupported));
    const port = (await r.read(2)).readUInt16BE(0);
    if (cmd === 0x03 && openDatagramPort) return void (await associate(stream, r, policy, openDatagramPort));
    if (cmd !== 0x01) return void stream.end(reply(REPLY.commandNotSupported));
    if (!host || /[\u0000-\u0020\u007f-\uffff]/.test(host) || port === 0) return void stream.end(reply(REPLY.notAllowed));
    const verdict = await policy.check({ protocol: 'socks5_tcp', host, port, client: clientOf(stream) });
    if (!verdict.allowed) return void stream.end(reply(REPLY.notAllowed));
    let upstream;
    try {
      upstream = await dialFirst(dial, verdict.addresses, port);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return void stream.end(reply(code === 'ECONNREFUSED' ? REPLY.refused : REPLY.hostUnreachable));
    }
    if (stream.destroyed) return void upstream.destroy();
    const rest = r.detach();
    stream.write(reply(REPLY.ok));
    if (rest.length > 0) upstream.write(rest);
    splice(stream, upstream);
    stream.resume();
  } catch {
    stream.destroy();
  }
}

/** UDP ASSOCIATE: the relay lives as long as this control connection (RFC 1928 §7). */
async function associate(stream: Duplex, r: ByteReader, policy: NetworkPolicy, open: OpenDatagramPort): Promise<void> {
  let port: DatagramPort;
  try {
    port = await open();
  } catch {
    return void stream.end(reply(REPLY.failure));
  }
  if (stream.destroyed) return port.close();
  const relay = relayDatagrams(port, policy, clientOf(stream));
  r.detach();
  const ok = reply(REPLY.ok);
  port.address.split('.').forEach((b, i) => ok.writeUInt8(Number(b), 4 + i));
  ok.writeUInt16BE(port.port, 8);
  stream.write(ok);
  stream.on('data', () => undefined); // nothing more is expected on the control connection
  stream.once('end', () => stream.end());
  stream.once('close', () => relay.close());
  stream.resume();
}
