import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { isIPv6 } from 'node:net';
import type { HttpBackend, HttpBodyDelta, HttpRequest, HttpResponse } from '../environment/types.js';
import { internalError, invalidParams, invalidRequest, methodMessages } from '../protocol/index.js';

export interface HttpLimits {
  /** Requests of one session in flight at once (a streamed one until its body ends). */
  maxInFlight: number;
  /** Largest response body returned whole; a streamed body has no bound (it is passed on as it comes). */
  maxBodyBytes: number;
  /** Largest body delta (the reference's bound is 1 MiB). */
  maxDeltaBytes: number;
  maxRedirects: number;
}

export const defaultHttpLimits = (): HttpLimits => ({
  maxInFlight: 16,
  maxBodyBytes: 32 * 1024 * 1024,
  maxDeltaBytes: 1024 * 1024,
  maxRedirects: 10,
});

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Headers that must not follow a redirect to another origin. */
const CREDENTIALS = new Set(['authorization', 'cookie', 'proxy-authorization', 'www-authenticate']);

interface Prepared {
  url: URL;
  method: string;
  headers: [string, string][];
  body: Buffer | undefined;
}

class TransportError extends Error {}

function prepare(r: HttpRequest, env: Readonly<Record<string, string | undefined>>): Prepared {
  let url: URL;
  try {
    url = new URL(r.url);
  } catch {
    throw invalidParams(methodMessages.httpUrl(/^[A-Za-z][A-Za-z0-9+.-]*:/.test(r.url) ? 'invalid URL' : 'relative URL without a base'));
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalidParams(methodMessages.httpScheme(url.protocol.slice(0, -1)));
  if (!TOKEN.test(r.method)) throw invalidParams(methodMessages.httpMethod);
  const headers: [string, string][] = [];
  for (const h of r.headers) {
    if (!TOKEN.test(h.name)) throw invalidParams(methodMessages.httpHeaderName);
    let value = h.value;
    if (h.valueEnvVar) {
      const extra = env[h.valueEnvVar];
      if (extra === undefined) throw invalidParams(methodMessages.httpEnvVar(h.name, h.valueEnvVar));
      value += extra;
    }
    if (/[\r\n\0]/.test(value)) throw invalidParams(methodMessages.httpHeaderValue(h.name));
    headers.push([h.name, value]);
  }
  return { url, method: r.method, headers, body: r.body ? Buffer.from(r.body) : undefined };
}

/** A `lookup` that answers with addresses already checked, so the name is never looked up again. */
function pinnedLookup(addresses: string[]): NonNullable<http.RequestOptions['lookup']> {
  const entries = addresses.map((address) => ({ address, family: isIPv6(address) ? 6 : 4 }));
  return ((_host: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    const first = entries[0];
    if (!first) return callback(Object.assign(new Error('no address'), { code: 'ENOTFOUND' }));
    if (options.all) return callback(null, entries);
    return callback(null, first.address, first.family);
  }) as unknown as NonNullable<http.RequestOptions['lookup']>;
}

/** One exchange, no redirects: resolves with the response head, its body unread. */
function exchange(p: Prepared, signal: AbortSignal, addresses?: string[]): Promise<IncomingMessage> {
  const raw: string[] = ['host', p.url.host];
  if (!p.headers.some(([n]) => n.toLowerCase() === 'accept')) raw.push('accept', '*/*');
  for (const [n, v] of p.headers) if (n.toLowerCase() !== 'host' && n.toLowerCase() !== 'content-length') raw.push(n, v);
  if (p.body || !['GET', 'HEAD', 'OPTIONS', 'DELETE'].includes(p.method)) raw.push('content-length', String(p.body?.length ?? 0));
  return new Promise((resolve, reject) => {
    const module = p.url.protocol === 'https:' ? https : http;
    const req = module.request(
      p.url,
      {
        method: p.method,
        headers: raw as unknown as http.OutgoingHttpHeaders,
        signal,
        ...(addresses ? { lookup: pinnedLookup(addresses) } : {}),
      },
      resolve,
    );
    req.on('error', () => reject(new TransportError(`error sending request for url (${p.url.href})`)));
    req.end(p.body);
  });
}

/** The request the redirect `res` asks for, by the usual rules (303, and 301/302 after a POST, become a GET without body). */
function redirected(p: Prepared, res: IncomingMessage): Prepared | undefined {
  const location = res.headers.location;
  if (!location) return undefined;
  let url: URL;
  try {
    url = new URL(location, p.url);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  const status = res.statusCode ?? 0;
  const toGet = (status === 303 && p.method !== 'HEAD') || ((status === 301 || status === 302) && p.method === 'POST');
  const crossOrigin = url.origin !== p.url.origin;
  const headers = p.headers.filter(([n]) => {
    const lower = n.toLowerCase();
    return !(crossOrigin && CREDENTIALS.has(lower)) && !(toGet && (lower === 'content-type' || lower === 'content-length'));
  });
  return { url, method: toGet ? 'GET' : p.method, headers, body: toGet ? undefined : p.body };
}

const headerList = (res: IncomingMessage): { name: string; value: string }[] => {
  const out: { name: string; value: string }[] = [];
  for (let i = 0; i + 1 < res.rawHeaders.length; i += 2)
    out.push({ name: (res.rawHeaders[i] as string).toLowerCase(), value: res.rawHeaders[i + 1] as string });
  return out;
};

/**
 * http/request for one session, made from this machine with node:http/https (not fetch: fetch
 * folds repeated headers into one, and the wire keeps repeats in both directions). Bounded: at most
 * `maxInFlight` requests, whole bodies up to `maxBodyBytes`; a streamed body goes out as deltas of
 * at most `maxDeltaBytes` and is paused with the session's other output when the client reads slowly.
 * `timeoutMs` bounds the whole exchange, body included. Everything is aborted when the session ends.
 */
export class HttpRequests implements HttpBackend {
  private readonly inFlight = new Set<AbortController>();
  private readonly streaming = new Map<string, IncomingMessage>();
  private readonly listeners = new Set<(delta: HttpBodyDelta) => void>();
  private paused = false;
  /** Nobody would receive deltas (the session has no connection): hold streamed bodies. */
  private held = false;
  private closed = false;

  constructor(
    private readonly env: Readonly<Record<string, string | undefined>>,
    private readonly limits: HttpLimits = defaultHttpLimits(),
  ) {}

  subscribeBodyDeltas(listener: (delta: HttpBodyDelta) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async request(r: HttpRequest): Promise<HttpResponse> {
    const prepared = prepare(r, this.env);
    if (r.streamResponse && this.streaming.has(r.requestId)) throw invalidParams(methodMessages.httpStreamActive(r.requestId));
    if (this.closed) throw internalError(methodMessages.httpFailed('the session is closing'));
    if (this.inFlight.size >= this.limits.maxInFlight) throw invalidRequest(methodMessages.httpTooMany(this.limits.maxInFlight));
    const aborter = new AbortController();
    this.inFlight.add(aborter);
    const timer = r.timeoutMs !== null && r.timeoutMs !== undefined ? setTimeout(() => aborter.abort(), r.timeoutMs) : undefined;
    timer?.unref();
    const finish = (): void => {
      clearTimeout(timer);
      this.inFlight.delete(aborter);
    };
    let res: IncomingMessage;
    try {
      res = await this.follow(prepared, r.redirectPolicy ?? 'follow', aborter.signal, r.guard);
    } catch (err) {
      finish();
      throw err instanceof TransportError ? internalError(methodMessages.httpFailed(err.message)) : err;
    }
    const head = { status: res.statusCode ?? 0, headers: headerList(res) };
    if (!r.streamResponse) {
      try {
        return { ...head, body: await this.readWhole(res, aborter) };
      } finally {
        finish();
      }
    }
    this.streaming.set(r.requestId, res);
    res.pause();
    // The body goes out after the result: the deltas start on the next turn, once the answer is sent.
    setImmediate(() => this.stream(r.requestId, res, finish));
    return { ...head, body: Buffer.alloc(0) };
  }

  private async follow(
    first: Prepared,
    policy: 'follow' | 'stop',
    signal: AbortSignal,
    guard: HttpRequest['guard'],
  ): Promise<IncomingMessage> {
    let p = first;
    for (let hops = 0; ; hops++) {
      const res = await exchange(p, signal, guard ? await guard(p.url, p.method) : undefined);
      if (policy === 'stop' || !REDIRECTS.has(res.statusCode ?? 0)) return res;
      const next = redirected(p, res);
      if (!next) return res;
      res.resume(); // discard the redirect's body
      if (hops >= this.limits.maxRedirects) throw new TransportError(`error following redirect for url (${next.url.href})`);
      p = next;
    }
  }

  private readWhole(res: IncomingMessage, aborter: AbortController): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const parts: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > this.limits.maxBodyBytes) {
          aborter.abort();
          reject(
            internalError(methodMessages.httpFailed(`response body is larger than ${this.limits.maxBodyBytes} bytes; use streamResponse`)),
          );
          return;
        }
        parts.push(chunk);
      });
      res.on('end', () => resolve(Buffer.concat(parts, size)));
      res.on('error', () => reject(internalError(methodMessages.httpFailed('error decoding response body'))));
      res.on('aborted', () => reject(internalError(methodMessages.httpFailed('error decoding response body'))));
    });
  }

  private stream(requestId: string, res: IncomingMessage, finish: () => void): void {
    let seq = 0;
    let ended = false;
    const emit = (data: Buffer, done: boolean, error: string | null): void => {
      const delta: HttpBodyDelta = { requestId, seq: ++seq, data, done, error };
      for (const l of this.listeners) l(delta);
    };
    const end = (error: string | null): void => {
      if (ended) return;
      ended = true;
      this.streaming.delete(requestId);
      finish();
      if (!this.closed) emit(Buffer.alloc(0), true, error);
    };
    res.on('data', (chunk: Buffer) => {
      for (let at = 0; at < chunk.length; at += this.limits.maxDeltaBytes)
        emit(chunk.subarray(at, at + this.limits.maxDeltaBytes), false, null);
    });
    res.on('end', () => end(null));
    res.on('error', () => end('error decoding response body'));
    res.on('close', () => end(res.complete ? null : 'error decoding response body'));
    if (!this.paused && !this.held) res.resume();
  }

  private apply(): void {
    for (const res of this.streaming.values()) {
      if (this.paused || this.held) res.pause();
      else res.resume();
    }
  }

  /** The client reads slowly: stop reading streamed bodies (the upstream then waits on TCP). */
  pause(): void {
    this.paused = true;
    this.apply();
  }

  resume(): void {
    this.paused = false;
    this.apply();
  }

  /** While the session has no connection, streamed bodies wait upstream instead of being lost. */
  hold(held: boolean): void {
    this.held = held;
    this.apply();
  }

  closeAll(): void {
    this.closed = true;
    this.listeners.clear();
    for (const a of this.inFlight) a.abort();
    this.inFlight.clear();
    for (const res of this.streaming.values()) res.destroy();
    this.streaming.clear();
  }
}
