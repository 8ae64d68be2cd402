import http from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { type Dial, dialFirst } from './dial.js';
import type { NetworkPolicy, PolicyProtocol, Verdict } from './policy.js';
import { blockedJson, blockedShape } from './responses.js';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** `host[:port]` (IPv6 bracketed) -> parts; undefined when malformed. A bracketed IPv6 without port gets the default port. */
export function splitAuthority(authority: string, defaultPort: number): { host: string; port: number } | undefined {
  if (/[\u0000-\u0020\u007f]/.test(authority) || authority.includes('@')) return undefined;
  const m = /^(\[[^\]]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(authority);
  if (!m) return undefined;
  const port = m[2] === undefined ? defaultPort : Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port };
}

function plain(res: http.ServerResponse, status: number, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), ...extra });
  res.end(body);
}

export interface HttpProxyDeps {
  policy: NetworkPolicy;
  dial: Dial;
}

/**
 * The HTTP side of the proxy: absolute-form (and origin-form + Host) requests are checked and
 * forwarded; CONNECT is checked and tunnelled. Connections come from a TCP listener or from the
 * sandbox bridge as plain streams (`accept`).
 */
export class HttpProxy {
  private readonly server: http.Server;

  constructor(private readonly deps: HttpProxyDeps) {
    this.server = http.createServer({ requireHostHeader: false, keepAliveTimeout: 30_000 }, (req, res) => void this.onRequest(req, res));
    this.server.on('connect', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void this.onConnect(req, socket, head));
    this.server.on('upgrade', (_req: http.IncomingMessage, socket: Duplex) => {
      socket.end(
        'HTTP/1.1 501 Not Implemented\r\ncontent-type: text/plain\r\ncontent-length: 36\r\nconnection: close\r\n\r\nupgrade through the proxy: use CONNECT',
      );
    });
    this.server.on('clientError', (_err, socket: Duplex) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      else socket.destroy();
    });
  }

  /** Serves one client connection (a socket, or a bridge stream). */
  accept(stream: Duplex): void {
    this.server.emit('connection', stream);
  }

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const client = clientOf(req.socket);
    try {
      if (req.headers['x-unix-socket'] !== undefined) return plain(res, 501, 'unix sockets unsupported');
      const url = req.url ?? '';
      const hostHeader = req.headers.host;
      let target: { host: string; port: number; path: string; tls: boolean };
      if (url.startsWith('/')) {
        if (!hostHeader) return plain(res, 400, 'missing host');
        const a = splitAuthority(hostHeader, 80);
        if (!a) return plain(res, 400, 'invalid Host header');
        target = { ...a, path: url, tls: false };
      } else {
        const m = /^(https?):\/\/(?:[^@/?#]*@)?([^/?#]*)(.*)$/i.exec(url);
        if (!m) return plain(res, 400, 'Host header does not match request target');
        const secure = (m[1] as string).toLowerCase() === 'https';
        const a = splitAuthority(m[2] as string, secure ? 443 : 80);
        if (!a) return plain(res, 400, 'invalid Host header');
        if (hostHeader !== undefined) {
          const h = splitAuthority(hostHeader, secure ? 443 : 80);
          if (!h || h.host.toLowerCase() !== a.host.toLowerCase() || h.port !== a.port)
            return plain(res, 400, 'Host header does not match request target');
        }
        const rest = m[3] as string;
        target = { ...a, path: rest.startsWith('/') ? rest : `/${rest}`, tls: secure };
      }
      const protocol: PolicyProtocol = 'http';
      const verdict = await this.deps.policy.check({ protocol, host: target.host, port: target.port, method: req.method ?? 'GET', client });
      if (!verdict.allowed) return this.blocked(res, verdict, protocol, target.port);
      let upstream: net.Socket | tls.TLSSocket;
      try {
        const raw = await dialFirst(this.deps.dial, verdict.addresses, target.port);
        upstream = target.tls ? tls.connect({ socket: raw, servername: verdict.host }) : raw;
      } catch {
        return plain(res, 502, 'upstream failure', { 'x-proxy-error': 'upstream-failure' });
      }
      const headers: http.OutgoingHttpHeaders = {};
      const dropped = new Set(HOP_BY_HOP);
      for (const token of String(req.headers.connection ?? '').split(',')) dropped.add(token.trim().toLowerCase());
      for (const [k, v] of Object.entries(req.headers)) if (!dropped.has(k) && v !== undefined) headers[k] = v;
      headers.host = hostHeader ?? (target.port === (target.tls ? 443 : 80) ? target.host : `${target.host}:${target.port}`);
      const out = http.request({ method: req.method, path: target.path, headers, createConnection: () => upstream });
      out.on('response', (up) => {
        const back: http.OutgoingHttpHeaders = {};
        for (const [k, v] of Object.entries(up.headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) back[k] = v;
        res.writeHead(up.statusCode ?? 502, up.statusMessage, back);
        up.pipe(res);
        up.on('error', () => res.destroy());
      });
      out.on('error', (err) => {
        if (process.env.CORDON_DEBUG_PROXY) console.error('proxy upstream error', err);
        if (!res.headersSent) plain(res, 502, 'upstream failure', { 'x-proxy-error': 'upstream-failure' });
        else res.destroy();
      });
      res.on('close', () => upstream.destroy());
      req.pipe(out);
    } catch {
      if (!res.headersSent) plain(res, 400, 'Bad Request');
      else res.destroy();
    }
  }

  private blocked(res: http.ServerResponse, v: Extract<Verdict, { allowed: false }>, protocol: PolicyProtocol, port: number): void {
    const body = blockedJson({ host: v.host, reason: v.reason, decision: v.decision, source: v.source, protocol, port });
    res.writeHead(403, {
      'content-type': 'application/json',
      'x-proxy-error': blockedShape(v.reason).header,
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  }

  private async onConnect(req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    const a = splitAuthority(req.url ?? '', 443);
    if (!a) return void socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    const verdict = await this.deps.policy.check({
      protocol: 'https_connect',
      host: a.host,
      port: a.port,
      method: 'CONNECT',
      client: clientOf(socket),
    });
    if (!verdict.allowed) {
      const { header, message } = blockedShape(verdict.reason);
      // The message also goes in the status phrase: clients that print only the status line explain themselves.
      return void socket.end(
        `HTTP/1.1 403 ${message}\r\ncontent-type: text/plain\r\nx-proxy-error: ${header}\r\ncontent-length: ${Buffer.byteLength(message)}\r\nconnection: close\r\n\r\n${message}`,
      );
    }
    let upstream: net.Socket;
    try {
      upstream = await dialFirst(this.deps.dial, verdict.addresses, a.port);
    } catch {
      return void socket.end(
        'HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\nx-proxy-error: upstream-failure\r\ncontent-length: 16\r\nconnection: close\r\n\r\nupstream failure',
      );
    }
    if (socket.destroyed) return void upstream.destroy();
    socket.write('HTTP/1.1 200 Connection established\r\n\r\n');
    if (head.length > 0) upstream.write(head);
    splice(socket, upstream);
  }

  close(): void {
    this.server.close();
    this.server.closeAllConnections();
  }
}

/** Pipes both ways; either side's error or close tears both down. */
export function splice(a: Duplex, b: Duplex): void {
  a.pipe(b);
  b.pipe(a);
  const kill = (): void => {
    a.destroy();
    b.destroy();
  };
  a.on('error', kill);
  b.on('error', kill);
  // A side that closed without ending (a reset) takes the other down; a graceful end was already passed on by pipe().
  a.on('close', () => a.readableEnded || b.destroy());
  b.on('close', () => b.readableEnded || a.destroy());
}

export function clientOf(stream: Duplex): string | undefined {
  const s = stream as Partial<net.Socket> & { cordonClient?: string };
  if (s.cordonClient) return s.cordonClient;
  if (s.remoteAddress) return `${s.remoteAddress}:${s.remotePort}`;
  return undefined;
}
