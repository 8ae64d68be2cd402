import { EventEmitter } from 'node:events';
import type { EnvPolicy, FsChange, ProcessEvent, SandboxType, Stream } from '../environment/types.js';
import {
  ErrorCode,
  encodeRequest,
  type MethodName,
  type MethodRequest,
  type MethodResult,
  type RequestId,
  type WireEnvironmentConfig,
  type WireEnvironmentInfo,
  type WireHttpResponse,
  type WireReadResult,
  type WriteStatus,
} from '../protocol/index.js';
import { ClientWebSocket } from './client-websocket.js';
import { DisconnectedError, RpcError } from './errors.js';
import { EventQueue } from './event-queue.js';
import { fieldData } from './frame-decoder.js';
import { FsClient } from './fs-client.js';
import { type ApprovalHandler, deferredDenialMessage, NetworkApprovals, type NetworkApprovalsOptions } from './network-approvals.js';

export interface NetworkDenial {
  processId: string;
  host: string;
  protocol: string;
  port: number;
  message: string;
}

export interface ClientOptions {
  url: string;
  token?: string;
  clientName?: string;
  /** Reconnect and resume the session after an unexpected drop (default true). */
  reconnect?: boolean;
  /**
   * After a drop: attempts before giving up (default 10), a delay doubling from `reconnectDelayMs`
   * (default 100, at most 5000) between them, and never longer than `reconnectWindowMs` in all
   * (default 30 000, the server's default session grace). Then the client is `disconnected`.
   */
  reconnectAttempts?: number;
  reconnectDelayMs?: number;
  reconnectWindowMs?: number;
  /** Bound on opening the connection and on the `initialize` answer, per attempt (default 10 000). */
  connectTimeoutMs?: number;
  /** Largest message accepted from the server. */
  maxMessageBytes?: number;
  /**
   * Answers to requests the server sends (by method name), e.g. `execPolicy/request`. A handler
   * for `execPolicy/request` declares `capabilities.execPolicyPrompt` at initialize.
   */
  requestHandlers?: Record<string, ServerRequestHandler>;
}

/** Answers one server-to-client request; a throw becomes a JSON-RPC error response. */
export type ServerRequestHandler = (params: unknown) => unknown;

export interface StartProcessParams {
  processId: string;
  argv: string[];
  cwd: string;
  env?: Record<string, string>;
  tty?: boolean;
  pipeStdin?: boolean;
  arg0?: string | null;
  envPolicy?: EnvPolicy | null;
  rows?: number;
  cols?: number;
  /** A wire `sandbox` object (any shape of docs/protocol.md §8); Cordon enforces it with bubblewrap. */
  sandbox?: Record<string, unknown> | null;
  /** 0.155+ call labels; threadId must be a UUID. */
  metadata?: { threadId?: string | null; toolCallId?: string | null } | null;
  /** Launch a managed network proxy for the process (docs/network.md). */
  networkProxy?: MethodRequest<'process/start'>['networkProxy'];
  /** Route the process to the caller's own proxy on the server's loopback (docs/network.md); needs enforceManagedNetwork. */
  managedNetwork?: MethodRequest<'process/start'>['managedNetwork'];
  enforceManagedNetwork?: boolean | null;
}

export type { WireEnvironmentConfig, WireEnvironmentConfigLayer } from '../protocol/index.js';

export interface HttpRequestWireParams {
  method: string;
  url: string;
  requestId: string;
  headers: { name: string; value: string; valueEnvVar?: string | null }[];
  bodyBase64?: string | null;
  timeoutMs?: number | null;
  redirectPolicy?: 'follow' | 'stop';
  streamResponse?: boolean;
}

export interface ReadOptions {
  afterSeq?: number | null;
  maxBytes?: number | null;
  waitMs?: number | null;
}

export interface DecodedReadResult {
  chunks: { seq: number; stream: Stream; data: Buffer }[];
  nextSeq: number;
  exited: boolean;
  exitCode: number | null;
  closed: boolean;
  failure: string | null;
  /** False when the server does not say (0.122–0.141 servers). */
  sandboxDenied: boolean;
  /** Cordon servers: output seqs this read skipped because the server no longer retained them. */
  droppedOutput?: { fromSeq: number; toSeq: number };
}

/**
 * Output the client will never deliver: produced while it was away and no longer retained by the
 * server (its retention is bounded). `fromSeq`..`toSeq` are the missing output seqs.
 */
export interface OutputGapEvent {
  type: 'gap';
  processId: string;
  seq: number;
  fromSeq: number;
  toSeq: number;
}

/** What `events()` yields: the process's events, and any gap in its output. */
export type ClientProcessEvent = ProcessEvent | OutputGapEvent;

/** Emitted when a drop starts a resume: how hard the client will try. */
export interface ReconnectingInfo {
  attempts: number;
  windowMs: number;
}

const SANDBOX_TYPES: readonly string[] = ['none', 'macosSeatbelt', 'linuxSeccomp', 'windowsRestrictedToken', 'windowsMxc'];

/**
 * A `sandboxType` from any server: the 0.147+ enum, absent (older servers: `none`), or `bwrap`
 * (Cordon before it spoke the 0.147 enum: a Linux seccomp sandbox in the enum's terms).
 */
export function normalizeSandboxType(value: unknown): SandboxType {
  if (value === undefined || value === null) return 'none';
  if (value === 'bwrap') return 'linuxSeccomp';
  if (typeof value === 'string' && SANDBOX_TYPES.includes(value)) return value as SandboxType;
  throw new Error(`unknown sandboxType ${JSON.stringify(value)} from the exec-server`);
}

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
}

interface Tracked {
  /** Highest seq delivered. */
  lastSeq: number;
  /** After a catch-up read: live events at or below this seq were already delivered by it. */
  caughtUpTo: number;
  exited: boolean;
  closed: boolean;
  /** Live events held back while a catch-up read runs after a resume. */
  held: ProcessEvent[] | undefined;
}

const decodeRead = (r: WireReadResult): DecodedReadResult => ({
  ...r,
  chunks: r.chunks.map((c) => ({ seq: c.seq, stream: c.stream, data: Buffer.from(c.chunk, 'base64') })),
  sandboxDenied: r.sandboxDenied === true,
});

/**
 * A typed client of a Cordon (or Codex exec-server) server. Process events are delivered exactly once
 * and in seq order per process, across reconnects: after a drop it resumes the session and catches up
 * with `process/read` from the last seq it saw.
 */
export class ExecServerClient {
  private ws: ClientWebSocket | undefined;
  private nextId = 1;
  private readonly pending = new Map<RequestId, Pending>();
  private readonly tracked = new Map<string, Tracked>();
  private readonly emitter = new EventEmitter();
  /**
   * `open`: requests go out. `resuming`: one resume loop owns the connection; requests wait for it.
   * `closed`: for good (closed by the user, or the session could not be resumed); requests fail.
   */
  private state: 'open' | 'resuming' | 'closed' = 'open';
  private resumed: Promise<void> | undefined;
  private failure: DisconnectedError | undefined;
  private readingPaused = false;
  private readonly queues = new Set<{ processId: string; queue: EventQueue<ClientProcessEvent> }>();
  private readonly requestHandlers = new Map<string, ServerRequestHandler>();
  sessionId = '';
  /** `initialize`'s `environmentInfo` (0.150+ servers, Cordon); undefined when the server sent none. */
  serverInfo: WireEnvironmentInfo | undefined;
  /** The `fs/*` methods. */
  readonly fs: FsClient;

  private constructor(private readonly options: Required<Omit<ClientOptions, 'token'>> & { token?: string }) {
    this.emitter.setMaxListeners(0);
    for (const [method, handler] of Object.entries(options.requestHandlers)) this.requestHandlers.set(method, handler);
    this.fs = new FsClient(
      (method, params) => this.request(method, params),
      (listener) => {
        this.emitter.on('fsChange', listener);
        return () => this.emitter.off('fsChange', listener);
      },
    );
  }

  static async connect(options: ClientOptions): Promise<ExecServerClient> {
    const client = new ExecServerClient({
      clientName: 'cordon-client',
      reconnect: true,
      reconnectAttempts: 10,
      reconnectDelayMs: 100,
      reconnectWindowMs: 30_000,
      connectTimeoutMs: 10_000,
      maxMessageBytes: 1024 * 1024 * 1024,
      requestHandlers: {},
      ...options,
    });
    await client.open(undefined, options.connectTimeoutMs ?? 10_000);
    return client;
  }

  /** True while connected (not resuming, not closed). */
  get connected(): boolean {
    return this.state === 'open' && this.ws !== undefined;
  }

  /**
   * Opens a connection and initializes it, within `timeoutMs`. On any failure the new socket is
   * dropped (never left open behind a failed attempt).
   */
  private async open(resumeSessionId: string | undefined, timeoutMs: number): Promise<void> {
    const headers: Record<string, string> = {};
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    const deadline = Date.now() + timeoutMs;
    const ws: ClientWebSocket = await ClientWebSocket.connect(this.options.url, {
      headers,
      maxMessageBytes: this.options.maxMessageBytes,
      timeoutMs,
      onMessage: (message) => this.onMessage(message),
      onClose: (code, reason) => this.onClose(ws, code, reason),
    });
    this.ws = ws;
    let timer: NodeJS.Timeout | undefined;
    try {
      const capabilities = 'execPolicy/request' in this.options.requestHandlers ? { capabilities: { execPolicyPrompt: true } } : {};
      const initialize = this.send<{ sessionId: string; environmentInfo?: WireEnvironmentInfo }>('initialize', {
        clientName: this.options.clientName,
        resumeSessionId: resumeSessionId ?? null,
        ...capabilities,
      });
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new DisconnectedError(`exec-server did not answer initialize within ${timeoutMs} ms`)),
          Math.max(0, deadline - Date.now()),
        );
      });
      const result = await Promise.race([initialize, timeout]);
      this.sessionId = result.sessionId;
      this.serverInfo = result.environmentInfo ?? this.serverInfo;
      ws.send('{"method":"initialized","params":{}}');
      if (this.readingPaused) ws.rawSocket.pause();
    } catch (err) {
      if (this.ws === ws) this.ws = undefined;
      ws.terminate();
      const dropped = err instanceof Error ? err : new Error(String(err));
      for (const p of this.pending.values()) p.reject(dropped);
      this.pending.clear();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private onMessage(msg: Record<string, unknown>): void {
    if (typeof msg.method === 'string' && msg.id !== undefined && msg.id !== null)
      return void this.onServerRequest(msg.id as RequestId, msg.method, msg.params);
    if (typeof msg.method === 'string') return this.onNotification(msg.method, msg.params as Record<string, unknown>);
    const id = msg.id as RequestId;
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    if (msg.error) {
      const e = msg.error as { code: number; message: string; data?: unknown };
      pending.reject(new RpcError(e.code, e.message, e.data));
    } else pending.resolve(msg.result);
  }

  private async onServerRequest(id: RequestId, method: string, params: unknown): Promise<void> {
    const ws = this.ws;
    const handler = this.requestHandlers.get(method);
    this.emitter.emit('serverRequest', method, params);
    let reply: string;
    try {
      if (!handler) throw new RpcError(-32601, `method not found: ${method}`);
      reply = `{"id":${JSON.stringify(id)},"result":${JSON.stringify((await handler(params)) ?? null)}}`;
    } catch (err) {
      const code = err instanceof RpcError ? err.code : -32603;
      reply = `{"id":${JSON.stringify(id)},"error":{"code":${code},"message":${JSON.stringify(err instanceof Error ? err.message : String(err))}}}`;
    }
    if (ws?.isOpen) ws.send(reply);
  }

  /** Answers requests the server sends (`network/policyRequest`). Returns an unregister. */
  handleServerRequests(method: string, handler: ServerRequestHandler): () => void {
    this.requestHandlers.set(method, handler);
    return () => {
      if (this.requestHandlers.get(method) === handler) this.requestHandlers.delete(method);
    };
  }

  /**
   * Decides the server's `network/policyRequest`s with an approval handler (prompt once per
   * destination, session cache, deadline). A denial for a process that is running terminates it
   * (deferred denial) and is reported through `onNetworkDenial`.
   */
  useNetworkApprovals(handler: ApprovalHandler, options: NetworkApprovalsOptions & { terminateOnDenial?: boolean } = {}): NetworkApprovals {
    const approvals = new NetworkApprovals(handler, options);
    this.handleServerRequests('network/policyRequest', async (raw) => {
      const p = raw as { processId?: unknown; request?: { protocol?: unknown; host?: unknown; port?: unknown } } | null;
      const r = p?.request;
      if (
        typeof p?.processId !== 'string' ||
        typeof r?.host !== 'string' ||
        !r.host ||
        typeof r.protocol !== 'string' ||
        typeof r.port !== 'number'
      ) {
        return { decision: { type: 'deny', reason: 'not_allowed' } };
      }
      const request = { processId: p.processId, host: r.host, protocol: r.protocol, port: r.port };
      const answer = await approvals.decide(request);
      if (answer.type === 'deny' && options.terminateOnDenial !== false) {
        const t = this.tracked.get(request.processId);
        if (t && !t.exited) {
          const denial: NetworkDenial = { ...request, message: deferredDenialMessage(request) };
          this.emitter.emit('networkDenial', denial);
          void this.terminate(request.processId).catch(() => undefined);
        }
      }
      return { decision: answer };
    });
    return approvals;
  }

  /** Processes terminated because a destination was denied (deferred denial). */
  onNetworkDenial(listener: (denial: NetworkDenial) => void): () => void {
    this.emitter.on('networkDenial', listener);
    return () => this.emitter.off('networkDenial', listener);
  }

  private onNotification(method: string, p: Record<string, unknown>): void {
    const processId = p.processId as string;
    const seq = p.seq as number;
    let event: ProcessEvent;
    if (method === 'process/output') {
      event = { type: 'output', processId, seq, stream: p.stream as Stream, data: fieldData(p, 'chunk') };
    } else if (method === 'process/exited')
      event = { type: 'exited', processId, seq, exitCode: p.exitCode as number, sandboxDenied: p.sandboxDenied === true };
    else if (method === 'process/closed') event = { type: 'closed', processId, seq };
    else if (method === 'fs/changed') {
      this.emitter.emit('fsChange', { watchId: p.watchId, path: p.path, kind: p.kind } as FsChange);
      return;
    } else {
      this.emitter.emit('notification', method, p);
      return;
    }
    this.accept(event);
  }

  private track(processId: string): Tracked {
    let t = this.tracked.get(processId);
    if (!t) {
      t = { lastSeq: 0, caughtUpTo: 0, exited: false, closed: false, held: undefined };
      this.tracked.set(processId, t);
    }
    return t;
  }

  /** Delivers a live event, unless a catch-up read after a resume already delivered it. */
  private accept(event: ProcessEvent): void {
    const t = this.track(event.processId);
    if (t.held) {
      t.held.push(event);
      return;
    }
    if (event.seq <= t.caughtUpTo) return;
    this.deliver(t, event);
  }

  /**
   * Live events are delivered in arrival order (a reference server may send one out of seq order);
   * only events recovered by a catch-up read are filtered by seq.
   */
  private deliver(t: Tracked, event: ProcessEvent, recovered = false): void {
    if (recovered && event.seq <= t.lastSeq) return;
    if (event.type === 'exited') {
      if (t.exited) return;
      t.exited = true;
    }
    if (event.type === 'closed') {
      if (t.closed) return;
      t.closed = true;
      setTimeout(() => this.tracked.get(event.processId) === t && this.tracked.delete(event.processId), 60_000).unref();
    }
    t.lastSeq = Math.max(t.lastSeq, event.seq);
    if (recovered) t.caughtUpTo = t.lastSeq;
    this.emitter.emit('event', event);
  }

  private onClose(ws: ClientWebSocket, code: number, reason: string): void {
    if (this.ws !== ws) return;
    this.ws = undefined;
    const err = new DisconnectedError(`exec-server connection closed (code ${code}${reason ? `: ${reason}` : ''})`);
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    // While resuming, the resume loop sees its own requests fail and tries again: one loop only.
    if (this.state !== 'open') return;
    if (!this.options.reconnect || !this.sessionId) return this.fail(err);
    this.state = 'resuming';
    this.resumed = this.resume();
  }

  /** The one resume loop: reconnects, resumes the session, catches up; or gives up and fails. */
  private async resume(): Promise<void> {
    const { reconnectAttempts: attempts, reconnectWindowMs: windowMs, connectTimeoutMs } = this.options;
    this.emitter.emit('reconnecting', { attempts, windowMs } satisfies ReconnectingInfo);
    const started = Date.now();
    const deadline = started + windowMs;
    let delay = this.options.reconnectDelayMs;
    let last: Error | undefined;
    let attempt = 0;
    while (attempt < attempts && this.state === 'resuming' && Date.now() < deadline) {
      attempt++;
      try {
        for (const t of this.tracked.values()) if (!t.closed) t.held = [];
        await this.open(this.sessionId, Math.min(connectTimeoutMs, deadline - Date.now()));
        if (this.state !== 'resuming') return; // closed by the user meanwhile
        await this.catchUp();
        if (this.state !== 'resuming') return;
        this.state = 'open';
        this.emitter.emit('reconnected', this.sessionId);
        return;
      } catch (err) {
        last = err instanceof Error ? err : new Error(String(err));
        for (const t of this.tracked.values()) t.held = undefined;
        const ws = this.ws;
        this.ws = undefined;
        ws?.terminate();
        // The server is there but the session is not; except -32010: it has not noticed the old connection drop yet.
        if (err instanceof RpcError && err.code !== ErrorCode.SessionAttached) break;
        const wait = Math.min(delay, deadline - Date.now());
        if (wait > 0 && attempt < attempts) await new Promise((r) => setTimeout(r, wait));
        delay = Math.min(delay * 2, 5000);
      }
    }
    if (this.state !== 'resuming') return;
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    const why =
      last instanceof RpcError
        ? `the session could not be resumed: ${last.message}`
        : `${attempt} attempt(s) in ${seconds} s failed${last ? ` (last: ${last.message})` : ''}`;
    this.fail(new DisconnectedError(`exec-server connection lost and not recovered: ${why}`));
  }

  /** The client is done for good: pending requests, waiting requests and event iterators get `err`. */
  private fail(err: DisconnectedError): void {
    if (this.state === 'closed' && this.failure) return;
    this.state = 'closed';
    this.failure = err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    for (const { processId, queue } of this.queues) if (!this.tracked.get(processId)?.closed) queue.fail(err);
    this.queues.clear();
    this.emitter.emit('disconnected', err);
  }

  /** Reads what each unfinished process produced while we were away, then releases held events. */
  private async catchUp(): Promise<void> {
    await Promise.all(
      [...this.tracked.entries()]
        .filter(([, t]) => t.held !== undefined)
        .map(async ([processId, t]) => {
          try {
            for (;;) {
              const r = decodeRead(
                await this.send<WireReadResult>('process/read', { processId, afterSeq: t.lastSeq, maxBytes: null, waitMs: null }),
              );
              this.reportGap(processId, t, r);
              for (const c of r.chunks) this.deliver(t, { type: 'output', processId, seq: c.seq, stream: c.stream, data: c.data }, true);
              if (r.chunks.length > 0) continue;
              // With no chunk returned, nextSeq is the highest seq allocated + 1, events included.
              if (r.closed) {
                this.deliver(
                  t,
                  {
                    type: 'exited',
                    processId,
                    seq: Math.max(t.lastSeq + 1, r.nextSeq - 2),
                    exitCode: r.exitCode ?? -1,
                    sandboxDenied: r.sandboxDenied,
                  },
                  true,
                );
                this.deliver(t, { type: 'closed', processId, seq: r.nextSeq - 1 }, true);
              } else if (r.exited) {
                this.deliver(
                  t,
                  { type: 'exited', processId, seq: r.nextSeq - 1, exitCode: r.exitCode ?? -1, sandboxDenied: r.sandboxDenied },
                  true,
                );
              }
              break;
            }
          } catch (err) {
            // A drop before the read completed: the held events must not be delivered, or lastSeq
            // would pass the seqs still unread and the next attempt's read would start after them.
            // The resume loop drops them and the next attempt reads again from lastSeq.
            if (!(err instanceof RpcError)) throw err;
          }
          const held = t.held ?? [];
          t.held = undefined;
          for (const e of held) if (e.seq > t.caughtUpTo) this.deliver(t, e);
        }),
    );
  }

  /**
   * A catch-up read that skips seqs lost output: the server says so (`droppedOutput`), or, from a
   * server that does not, the first chunk comes after a seq jump (output seqs are consecutive).
   */
  private reportGap(processId: string, t: Tracked, r: DecodedReadResult): void {
    const first = r.chunks[0];
    let gap = r.droppedOutput;
    if (!gap && first && first.seq > t.lastSeq + 1) gap = { fromSeq: t.lastSeq + 1, toSeq: first.seq - 1 };
    if (!gap || gap.toSeq <= t.lastSeq) return;
    const fromSeq = Math.max(gap.fromSeq, t.lastSeq + 1);
    const event: OutputGapEvent = { type: 'gap', processId, seq: gap.toSeq, fromSeq, toSeq: gap.toSeq };
    t.lastSeq = gap.toSeq;
    t.caughtUpTo = gap.toSeq;
    this.emitter.emit('gap', event);
  }

  /**
   * Sends a request and resolves with its result; rejects with RpcError or DisconnectedError. The
   * method, its params and its result are typed from the protocol's declaration (methods.ts).
   */
  async request<M extends MethodName>(method: M, params: MethodRequest<M>): Promise<MethodResult<M>> {
    while (this.state === 'resuming') await this.resumed;
    return this.send<MethodResult<M>>(method, params);
  }

  /** Sends on the current connection, whatever the state (the resume loop's own requests). */
  private send<T>(method: string, params: unknown): Promise<T> {
    if (this.state === 'closed' && this.failure) return Promise.reject(this.failure);
    const ws = this.ws;
    if (!ws || !ws.isOpen) return Promise.reject(new DisconnectedError());
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      const sent = (err?: Error): void => {
        if (err && this.pending.delete(id)) reject(new DisconnectedError(err.message));
      };
      ws.send(encodeRequest(id, method, params), sent);
    });
  }

  /** Every process event, exactly once and in seq order per process. Returns an unsubscribe. */
  onEvent(listener: (event: ProcessEvent) => void): () => void {
    this.emitter.on('event', listener);
    return () => this.emitter.off('event', listener);
  }

  /** Every `fs/changed` notification of this session's watches. */
  onFsChange(listener: (change: FsChange) => void): () => void {
    this.emitter.on('fsChange', listener);
    return () => this.emitter.off('fsChange', listener);
  }

  /**
   * `disconnected`: once, when the client is done for good (closed, or a drop it could not recover
   * from within the reconnect bounds). `reconnecting`: a drop started a resume. `reconnected`: the
   * session was resumed and caught up. `gap`: output lost beyond the server's retention.
   */
  on(event: 'disconnected', listener: (err: DisconnectedError) => void): this;
  on(event: 'reconnecting', listener: (info: ReconnectingInfo) => void): this;
  on(event: 'serverRequest', listener: (method: string, params: unknown) => void): this;
  on(event: 'reconnected', listener: (sessionId: string) => void): this;
  on(event: 'gap', listener: (gap: OutputGapEvent) => void): this;
  on(event: string, listener: (...args: never[]) => void): this {
    this.emitter.on(event, listener as (...args: unknown[]) => void);
    return this;
  }

  off(event: string, listener: (...args: never[]) => void): this {
    this.emitter.off(event, listener as (...args: unknown[]) => void);
    return this;
  }

  /**
   * Events of one process from now on, ending after `closed`. Output lost beyond the server's
   * retention comes as a `gap` event. When the connection is lost for good the iteration throws
   * the DisconnectedError (within the reconnect window, see ClientOptions).
   */
  events(processId: string): AsyncIterable<ClientProcessEvent> {
    const queue = new EventQueue<ClientProcessEvent>();
    if (this.state === 'closed' && this.failure) {
      queue.fail(this.failure);
      return queue;
    }
    const entry = { processId, queue };
    const onGap = (g: OutputGapEvent): void => {
      if (g.processId === processId) queue.push(g);
    };
    const off = this.onEvent((e) => {
      if (e.processId !== processId) return;
      queue.push(e);
      if (e.type === 'closed') {
        off();
        this.emitter.off('gap', onGap);
        this.queues.delete(entry);
        queue.end();
      }
    });
    this.emitter.on('gap', onGap);
    this.queues.add(entry);
    return queue;
  }

  async startProcess(params: StartProcessParams): Promise<{ processId: string; sandboxType: SandboxType }> {
    this.track(params.processId);
    try {
      const r = await this.request('process/start', { env: {}, tty: false, ...params });
      return { processId: r.processId, sandboxType: normalizeSandboxType(r.sandboxType) };
    } catch (err) {
      const t = this.tracked.get(params.processId);
      if (t && t.lastSeq === 0 && err instanceof RpcError && !/already exists/.test(err.message)) this.tracked.delete(params.processId);
      throw err;
    }
  }

  /** Starts a process and returns its event stream, subscribed before the start request is sent. */
  async spawn(
    params: StartProcessParams,
  ): Promise<{ processId: string; sandboxType: SandboxType; events: AsyncIterable<ClientProcessEvent> }> {
    const events = this.events(params.processId);
    const started = await this.startProcess(params);
    return { processId: params.processId, sandboxType: started.sandboxType, events };
  }

  async read(processId: string, options: ReadOptions = {}): Promise<DecodedReadResult> {
    const r = await this.request('process/read', {
      processId,
      afterSeq: options.afterSeq ?? null,
      maxBytes: options.maxBytes ?? null,
      waitMs: options.waitMs ?? null,
    });
    return decodeRead(r);
  }

  async write(
    processId: string,
    data: Uint8Array | string,
    options: { writeId?: string; closeStdin?: boolean } = {},
  ): Promise<WriteStatus> {
    const chunk = Buffer.from(data).toString('base64');
    return (await this.request('process/write', { processId, chunk, ...options })).status;
  }

  terminate(processId: string): Promise<{ running: boolean }> {
    return this.request('process/terminate', { processId });
  }

  async signal(processId: string, signal: 'interrupt'): Promise<void> {
    await this.request('process/signal', { processId, signal });
  }

  async resize(processId: string, rows: number, cols: number): Promise<void> {
    await this.request('process/resize', { processId, rows, cols });
  }

  /** `environment/info`: `{shell}` from 0.140–0.149 servers, the whole `environmentInfo` from newer ones and Cordon. */
  environmentInfo(): Promise<Partial<WireEnvironmentInfo> & { shell: { name: string; path: string } }> {
    return this.request('environment/info', {});
  }

  /** Every notification named `method` that is not a process or fs/changed event (e.g. `fs/missingChanged`). */
  onServerNotification(method: string, listener: (params: Record<string, unknown>) => void): () => void {
    const filtered = (m: string, p: Record<string, unknown>): void => {
      if (m === method) listener(p);
    };
    this.emitter.on('notification', filtered);
    return () => this.emitter.off('notification', filtered);
  }

  /** environmentConfig/read: the server machine's own Codex config (directories as `file://` URIs). */
  readEnvironmentConfig(params: { cwd: string; configPaths: string[][]; requirementsPaths: string[][] }): Promise<WireEnvironmentConfig> {
    return this.request('environmentConfig/read', params);
  }

  /**
   * http/request, made from the server's machine. With `streamResponse` the body arrives as
   * `http/request/bodyDelta` notifications (see onServerNotification); subscribe before sending.
   */
  httpRequest(params: HttpRequestWireParams): Promise<WireHttpResponse> {
    return this.request('http/request', params);
  }

  environmentStatus(): Promise<{ status: string }> {
    return this.request('environment/status', {});
  }

  /**
   * Stops reading from the server (its notifications and answers wait in the socket) until
   * `resumeReading`; the server then slows the session's processes down. For a consumer whose own
   * output is full, e.g. a pipe nobody reads yet.
   */
  pauseReading(): void {
    this.readingPaused = true;
    this.ws?.rawSocket.pause();
  }

  resumeReading(): void {
    this.readingPaused = false;
    this.ws?.rawSocket.resume();
  }

  /** Drops the connection without closing the session (tests, and simulating network loss). */
  dropConnection(): void {
    this.ws?.terminate();
  }

  async close(): Promise<void> {
    const ws = this.ws;
    this.fail(new DisconnectedError('exec-server client closed'));
    await ws?.close(1000);
  }
}
