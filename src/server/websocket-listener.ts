import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from 'pino';
import { type RawData, type WebSocket, WebSocketServer } from 'ws';
import { headerBytesFor, writeFrameHeader } from '../protocol/websocket-frame.js';
import { bearerMatches } from './auth.js';
import { FrameSizeGuard } from './frame-size-guard.js';
import type { ServerTransport } from './transport.js';

export interface WebSocketListenerOptions {
  host: string;
  port: number;
  token: string | undefined;
  maxFrameBytes: number;
  maxMessageBytes: number;
  /** Pongs queued but not yet flushed above which the connection is closed with 1008. */
  maxPendingPongs: number;
  logger: Logger;
  /** Called for each accepted socket; returns the handlers of its connection. */
  accept(transport: ServerTransport): { message(data: Buffer): void; close(): void };
}

const CLOSE_TOO_BIG = 1009;
const CLOSE_POLICY = 1008;
/** Below this size a frame's header and payload are joined into one buffer (one write, no writev). */
const JOIN_BELOW = 16 * 1024;

/** The WebSocket front door: auth on the upgrade, frame and message bounds, one connection per socket. */
export class WebSocketListener {
  private readonly http = http.createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' }).end('cordon: WebSocket upgrade required\n');
  });
  private readonly wss: WebSocketServer;
  private readonly sockets = new Set<WebSocket>();

  constructor(private readonly options: WebSocketListenerOptions) {
    // Pings are answered here: ws's own answering drops the TCP connection without a close frame once
    // 60 pongs are unsent (a burst of pings from a peer that reads slowly).
    this.wss = new WebSocketServer({ noServer: true, maxPayload: options.maxMessageBytes, perMessageDeflate: false, autoPong: false });
    this.http.on('upgrade', (req, socket: Socket, head: Buffer) => {
      if (options.token !== undefined && !bearerMatches(req.headers.authorization, options.token)) {
        options.logger.warn({ peer: socket.remoteAddress }, 'refused a WebSocket upgrade without a valid bearer token');
        socket.end('HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
        return;
      }
      let tooBig = false;
      let ws: WebSocket | undefined;
      const guard = new FrameSizeGuard(options.maxFrameBytes, () => {
        tooBig = true;
        if (ws) closeTooBig(ws, options.maxFrameBytes);
      });
      this.wss.handleUpgrade(req, socket, head, (client) => {
        ws = client;
        if (tooBig) closeTooBig(client, options.maxFrameBytes);
        this.attach(client, socket, `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? 0}`, () => tooBig);
      });
      if (head.length > 0) guard.feed(head);
      socket.on('data', (chunk: Buffer) => guard.feed(chunk));
    });
  }

  private attach(ws: WebSocket, socket: Socket, peer: string, tooBig: () => boolean): void {
    this.sockets.add(ws);
    // Data frames are framed here and written to the socket in one write: ws's sender costs tens of
    // microseconds per message on a fresh server (corking, a header buffer, a two-buffer writev),
    // a visible part of a small request's round trip. ws still sends control frames (pong, close),
    // which may come between the fragments of a message. Measured against ws.send (docs/performance.md):
    // server CPU for a fresh server's first 220 getMetadata 62.0 -> 53.1 ms.
    let inMessage = false;
    const sendFrame = (payload: string | Buffer, final: boolean, flushed: () => void): void => {
      if (ws.readyState !== ws.OPEN) return flushed();
      const first = (final ? 0x80 : 0) | (inMessage ? 0x0 : 0x1);
      inMessage = !final;
      const length = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
      const headerBytes = headerBytesFor(length, false);
      if (length < JOIN_BELOW) {
        const frame = Buffer.allocUnsafe(headerBytes + length);
        writeFrameHeader(frame, first, length, false);
        if (typeof payload === 'string') frame.write(payload, headerBytes);
        else payload.copy(frame, headerBytes);
        socket.write(frame, flushed);
        return;
      }
      const header = Buffer.allocUnsafe(headerBytes);
      writeFrameHeader(header, first, length, false);
      socket.cork();
      socket.write(header);
      socket.write(payload, flushed);
      socket.uncork();
    };
    const transport: ServerTransport = {
      kind: 'websocket',
      peer,
      send: (message, flushed) => sendFrame(message, true, flushed),
      // A part is a WebSocket frame: the first of a message a text frame, the others continuations.
      sendPart: (part, last, flushed) => sendFrame(part, last, flushed),
      cork: () => socket.cork(),
      uncork: () => socket.uncork(),
      close: (code, reason) => ws.close(code, reason),
    };
    let pendingPongs = 0;
    const pongFlushed = (): void => void pendingPongs--;
    ws.on('ping', (data: Buffer) => {
      if (ws.readyState !== ws.OPEN) return;
      if (pendingPongs >= this.options.maxPendingPongs) {
        this.options.logger.warn({ peer, pendingPongs }, 'closing a connection flooding pings');
        closeWithin(
          ws,
          CLOSE_POLICY,
          `too many pings: ${pendingPongs} pongs unsent (limit ${this.options.maxPendingPongs}); read the pongs or ping less`,
        );
        return;
      }
      pendingPongs++;
      ws.pong(data, false, pongFlushed);
    });
    const handlers = this.options.accept(transport);
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (tooBig()) return;
      void isBinary;
      handlers.message(Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data));
    });
    ws.on('error', (err) => this.options.logger.debug({ err, peer }, 'websocket error'));
    ws.on('close', () => {
      this.sockets.delete(ws);
      handlers.close();
    });
  }

  listen(): Promise<string> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(this.options.port, this.options.host, () => {
        this.http.off('error', reject);
        const addr = this.http.address() as AddressInfo;
        const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
        resolve(`ws://${host}:${addr.port}`);
      });
    });
  }

  /** Stops accepting and closes every connection with 1001 (going away). */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    for (const ws of this.sockets) ws.close(1001, 'server shutting down');
    const deadline = setTimeout(() => {
      for (const ws of this.sockets) ws.terminate();
    }, 1000);
    this.http.closeAllConnections();
    await closed;
    clearTimeout(deadline);
  }
}

function closeTooBig(ws: WebSocket, limit: number): void {
  closeWithin(ws, CLOSE_TOO_BIG, `frame larger than ${limit} bytes`);
}

/** Sends a close frame and drops the connection if the peer has not answered it within a second. */
function closeWithin(ws: WebSocket, code: number, reason: string): void {
  ws.close(code, reason);
  setTimeout(() => ws.terminate(), 1000).unref();
}
