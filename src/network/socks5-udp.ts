import dgram from 'node:dgram';
import net from 'node:net';
import { parseIpLiteral } from './address.js';
import type { NetworkPolicy, Verdict } from './policy.js';

/**
 * The client's end of a SOCKS5 UDP association: a UDP port the client can reach (on host loopback,
 * or inside the sandbox's namespace through the bridge) where its datagrams arrive, each with the
 * RFC 1928 UDP request header, and where replies go back.
 */
export interface DatagramPort {
  /** The relay's address as the client sees it (IPv4). */
  readonly address: string;
  readonly port: number;
  send(datagram: Buffer): void;
  onMessage(listener: (datagram: Buffer) => void): void;
  close(): void;
}

export type OpenDatagramPort = () => Promise<DatagramPort>;

/** A loopback UDP port for a client on this host (the proxy's own listeners). */
export const loopbackDatagramPort: OpenDatagramPort = () =>
  new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    let client: { address: string; port: number } | undefined;
    let listener: ((d: Buffer) => void) | undefined;
    socket.once('error', reject);
    socket.on('message', (d, rinfo) => {
      client = { address: rinfo.address, port: rinfo.port };
      listener?.(d);
    });
    socket.bind(0, '127.0.0.1', () => {
      socket.removeListener('error', reject);
      socket.on('error', () => undefined);
      resolve({
        address: '127.0.0.1',
        port: socket.address().port,
        send: (d) => client && socket.send(d, client.port, client.address),
        onMessage: (l) => (listener = l),
        close: () => socket.close(),
      });
    });
  });

const MAX_DESTINATIONS = 256;

/** Parses a SOCKS5 UDP request header; undefined for fragments and anything malformed. */
function parseDatagram(d: Buffer): { host: string; port: number; data: Buffer } | undefined {
  if (d.length < 4 || d[0] !== 0 || d[1] !== 0 || d[2] !== 0) return undefined; // RSV, FRAG: no fragments
  const atyp = d[3];
  let host: string;
  let o = 4;
  if (atyp === 0x01 && d.length >= o + 4) {
    host = [...d.subarray(o, o + 4)].join('.');
    o += 4;
  } else if (atyp === 0x04 && d.length >= o + 16) {
    host = Array.from({ length: 8 }, (_, i) => d.readUInt16BE(o + i * 2).toString(16)).join(':');
    o += 16;
  } else if (atyp === 0x03 && d.length >= o + 1) {
    const len = d[o] as number;
    host = d.subarray(o + 1, o + 1 + len).toString('latin1');
    o += 1 + len;
    if (!host || /[\u0000-\u0020\u007f-\uffff]/.test(host)) return undefined;
  } else return undefined;
  if (d.length < o + 2) return undefined;
  const port = d.readUInt16BE(o);
  if (port === 0) return undefined;
  return { host, port, data: d.subarray(o + 2) };
}

/** The header of a reply: from the address that answered. */
function replyHeader(address: string, port: number): Buffer | undefined {
  const ip = parseIpLiteral(address);
  if (!ip) return undefined;
  const bytes = ip.toByteArray();
  const h = Buffer.alloc(4 + bytes.length + 2);
  h[3] = bytes.length === 4 ? 0x01 : 0x04;
  Buffer.from(bytes).copy(h, 4);
  h.writeUInt16BE(port, h.length - 2);
  return h;
}

/**
 * Relays one association: every destination is judged once (`socks5_udp`, the decider asked at most
 * once per destination), resolved once, and only answers from a destination the client sent to are
 * passed back. Ends with `close` (the SOCKS5 control connection's end).
 */
export function relayDatagrams(port: DatagramPort, policy: NetworkPolicy, client: string | undefined): { close(): void } {
  const verdicts = new Map<string, Promise<Verdict>>();
  const sentTo = new Set<string>();
  const sockets: Partial<Record<'udp4' | 'udp6', dgram.Socket>> = {};
  let closed = false;
  const socketFor = (family: 'udp4' | 'udp6'): dgram.Socket => {
    let s = sockets[family];
    if (!s) {
      s = dgram.createSocket(family);
      s.on('error', () => undefined);
      s.on('message', (data, rinfo) => {
        const header = closed || !sentTo.has(`${rinfo.address}|${rinfo.port}`) ? undefined : replyHeader(rinfo.address, rinfo.port);
        if (header) port.send(Buffer.concat([header, data]));
      });
      sockets[family] = s;
    }
    return s;
  };
  port.onMessage((d) => {
    const req = closed ? undefined : parseDatagram(d);
    if (!req) return;
    const key = `${req.host.toLowerCase()}|${req.port}`;
    let verdict = verdicts.get(key);
    if (!verdict) {
      if (verdicts.size >= MAX_DESTINATIONS) return;
      verdict = policy.check({ protocol: 'socks5_udp', host: req.host, port: req.port, ...(client ? { client } : {}) });
      verdicts.set(key, verdict);
    }
    void verdict.then((v) => {
      const address = v.allowed ? v.addresses[0] : undefined;
      if (closed || !address) return;
      sentTo.add(`${address}|${req.port}`);
      socketFor(net.isIPv4(address) ? 'udp4' : 'udp6').send(req.data, req.port, address);
    });
  });
  return {
    close: () => {
      closed = true;
      port.close();
      for (const s of Object.values(sockets)) s?.close();
    },
  };
}
