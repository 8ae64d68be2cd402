import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';

/**
 * A WebSocket man-in-the-middle between the Codex CLI and an exec-server. It forwards every
 * message unchanged, logs both directions (so a run against Cordon can be compared with a run
 * against the reference), and can cut a connection when a message matches a predicate, the way a
 * network failure would.
 */

export type Json = Record<string, any>;

export interface TapEntry {
  conn: number;
  /** `>>` client to server, `<<` server to client, `--` a connection event. */
  dir: '>>' | '<<' | '--';
  msg: Json;
  /** Milliseconds since the tap started (to see where a slow run spent its time). */
  at?: number;
}

export interface WsTap {
  readonly url: string;
  readonly log: TapEntry[];
  /** Cut the connection (both sides) the first time a message in either direction matches. */
  dropOnce(pred: (entry: TapEntry) => boolean): Promise<void>;
  /** The log as text lines, for failure messages. */
  transcript(): string;
  close(): Promise<void>;
}

function parse(data: WebSocket.RawData): Json {
  const text = String(data);
  try {
    return JSON.parse(text) as Json;
  } catch {
    return { unparsed: text };
  }
}

export async function startWsTap(upstreamUrl: string): Promise<WsTap> {
  const log: TapEntry[] = [];
  const drops: { pred: (e: TapEntry) => boolean; done: () => void }[] = [];
  const sockets = new Set<WebSocket>();
  let conns = 0;
  const started = performance.now();
  const record = (entry: TapEntry): void => {
    log.push({ ...entry, at: Math.round(performance.now() - started) });
  };
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 1024 * 1024 * 1024 });

  wss.on('connection', (client, req) => {
    const conn = ++conns;
    record({ conn, dir: '--', msg: { event: 'open' } });
    const headers: Record<string, string> = {};
    if (req.headers.authorization) headers.authorization = req.headers.authorization;
    const upstream = new WebSocket(upstreamUrl, { headers, maxPayload: 1024 * 1024 * 1024 });
    sockets.add(client);
    sockets.add(upstream);
    const pending: WebSocket.RawData[] = [];
    let cut = false;

    const cutBoth = (): void => {
      cut = true;
      record({ conn, dir: '--', msg: { event: 'dropped by tap' } });
      client.terminate();
      upstream.terminate();
    };
    const observe = (entry: TapEntry): boolean => {
      record(entry);
      const hit = drops.findIndex((d) => d.pred(entry));
      if (hit < 0) return false;
      const [drop] = drops.splice(hit, 1);
      cutBoth();
      drop!.done();
      return true;
    };

    client.on('message', (data) => {
      if (cut) return;
      if (observe({ conn, dir: '>>', msg: parse(data) })) return;
      if (upstream.readyState === WebSocket.OPEN) upstream.send(data, { binary: false });
      else pending.push(data);
    });
    upstream.on('open', () => {
      for (const data of pending.splice(0)) upstream.send(data, { binary: false });
    });
    upstream.on('message', (data) => {
      if (cut) return;
      if (observe({ conn, dir: '<<', msg: parse(data) })) return;
      client.send(data, { binary: false });
    });
    const closeOther = (other: WebSocket, side: string) => (code: number) => {
      record({ conn, dir: '--', msg: { event: `${side} closed`, code } });
      if (other.readyState === WebSocket.OPEN || other.readyState === WebSocket.CONNECTING) other.terminate();
    };
    client.on('close', closeOther(upstream, 'client'));
    upstream.on('close', closeOther(client, 'server'));
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  });

  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const { port } = wss.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}`,
    log,
    dropOnce: (pred) => new Promise<void>((resolve) => drops.push({ pred, done: resolve })),
    transcript: () => log.map((e) => `${e.at ?? ''}ms #${e.conn} ${e.dir} ${JSON.stringify(e.msg)}`).join('\n'),
    close: async () => {
      for (const s of sockets) s.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
