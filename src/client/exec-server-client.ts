import { EventEmitter } from 'node:events';
import type { EnvPolicy, FsChange, ProcessEvent, SandboxType, Stream } from '../environment/types.js';
import { encodeRequest, ErrorCode, type RequestId, type WireEnvironmentInfo, type WireReadResult, type WriteStatus } from '../protocol/index.js';
import { DisconnectedError, RpcError } from './errors.js';
import { EventQueue } from './event-queue.js';
import { FsClient } from './fs-client.js';
import { ClientWebSocket } from './client-websocket.js';
import { fieldData } from './frame-decoder.js';
import { deferredDenialMessage, NetworkApprovals, type ApprovalHandler, type NetworkApprovalsOptions } from './network-approvals.js';

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
  /** Attempts per drop before giving up (default 10), with a delay doubling from `reconnectDelayMs`. */
  reconnectAttempts?: number;
  reconnectDelayMs?: number;
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
  /** A wire `sandbox` object (PROTOCOL.md §10, PROTOCOL-0171 §3.1.2 shapes); Cordon enforces it with bubblewrap. */
  sandbox?: Record<string, unknown> | null;
  /** 0.155+ call labels; threadId must be a UUID. */
  metadata?: { threadId?: string | null; toolCallId?: string | null } | null;
  /** Launch a managed network proxy for the process (docs/network.md). */
  networkProxy?: Record<string, unknown> | null;
  enforceManagedNetwork?: boolean | null;
}

export interface WireEnvironmentConfigLayer {
  source: string;
  baseDir: string;
  toml: string;
}

export interface WireEnvironmentConfig {
  userHomeDir: string;
  codexHomeDir: string;
  hostname: string;
  config: { layers: WireEnvironmentConfigLayer[]; cloudInsertionIndex: number };
  requirements: { layers: WireEnvironmentConfigLayer[]; cloudInsertionIndex: number };
}

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
  private readonly requestHandlers = new Map<string, ServerRequestHandler>();
  private closedByUser = false;
  private reconnecting: Promise<void> | undefined;
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
      maxMessageBytes: 1024 * 1024 * 1024,
      requestHandlers: {},
      ...options,
    });
    await client.open(undefined);
    return client;
  }

  private async open(resumeSessionId: string | undefined): Promise<void> {
    const headers: Record<string, string> = {};
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    const ws: ClientWebSocket = await ClientWebSocket.connect(this.options.url, {
      headers,
      maxMessageBytes: this.options.maxMessageBytes,
      onMessage: (message) => this.onMessage(message),
      onClose: (code, reason) => this.onClose(ws, code, reason),
    });
    this.ws = ws;
    const capabilities = 'execPolicy/request' in this.options.requestHandlers ? { capabilities: { execPolicyPrompt: true } } : {};
    const result = (await this.request('initialize', { clientName: this.options.clientName, resumeSessionId: resumeSessionId ?? null, ...capabilities })) as {
      sessionId: string;
      environmentInfo?: WireEnvironmentInfo;
    };
    this.sessionId = result.sessionId;
    this.serverInfo = result.environmentInfo ?? this.serverInfo;
    ws.send('{"method":"initialized","params":{}}');
  }

  private onMessage(msg: Record<string, unknown>): void {
    if (typeof msg.method === 'string' && msg.id !== undefined && msg.id !== null) return void this.onServerRequest(msg.id as RequestId, msg.method, msg.params);
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
      if (typeof p?.processId !== 'string' || typeof r?.host !== 'string' || !r.host || typeof r.protocol !== 'string' || typeof r.port !== 'number') {
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
    } else if (method === 'process/exited') event = { type: 'exited', processId, seq, exitCode: p.exitCode as number, sandboxDenied: p.sandboxDenied === true };
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
    if (this.closedByUser || !this.options.reconnect || !this.sessionId) {
      this.emitter.emit('disconnected', err);
      return;
    }
    this.reconnecting = this.resume().finally(() => (this.reconnecting = undefined));
  }

  private async resume(): Promise<void> {
    let delay = this.options.reconnectDelayMs;
    for (let attempt = 1; attempt <= this.options.reconnectAttempts && !this.closedByUser; attempt++) {
      try {
        for (const t of this.tracked.values()) if (!t.closed) t.held = [];
        await this.open(this.sessionId);
        await this.catchUp();
        this.emitter.emit('reconnected', this.sessionId);
        return;
      } catch (err) {
        for (const t of this.tracked.values()) t.held = undefined;
        // The server may not have noticed the old connection drop yet (-32010): that passes; other refusals do not.
        if (err instanceof RpcError && err.code !== ErrorCode.SessionAttached) break;
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 5000);
      }
    }
    this.emitter.emit('disconnected', new DisconnectedError('exec-server connection lost and the session could not be resumed'));
  }

  /** Reads what each unfinished process produced while we were away, then releases held events. */
  private async catchUp(): Promise<void> {
    await Promise.all(
      [...this.tracked.entries()]
        .filter(([, t]) => t.held !== undefined)
        .map(async ([processId, t]) => {
          try {
            for (;;) {
              const r = await this.read(processId, { afterSeq: t.lastSeq });
              for (const c of r.chunks) this.deliver(t, { type: 'output', processId, seq: c.seq, stream: c.stream, data: c.data }, true);
              if (r.chunks.length > 0) continue;
              // With no chunk returned, nextSeq is the highest seq allocated + 1, events included.
              if (r.closed) {
                this.deliver(t, { type: 'exited', processId, seq: Math.max(t.lastSeq + 1, r.nextSeq - 2), exitCode: r.exitCode ?? -1, sandboxDenied: r.sandboxDenied }, true);
                this.deliver(t, { type: 'closed', processId, seq: r.nextSeq - 1 }, true);
              } else if (r.exited) {
                this.deliver(t, { type: 'exited', processId, seq: r.nextSeq - 1, exitCode: r.exitCode ?? -1, sandboxDenied: r.sandboxDenied }, true);
              }
              break;
            }
          } catch (err) {
            if (!(err instanceof RpcError)) throw err;
          } finally {
            const held = t.held ?? [];
            t.held = undefined;
            for (const e of held) if (e.seq > t.caughtUpTo) this.deliver(t, e);
          }
        }),
    );
  }

  /** Sends a request and resolves with its result; rejects with RpcError or DisconnectedError. */
  async request<T = unknown>(method: string, params: unknown): Promise<T> {
    if (!this.ws && this.reconnecting && method !== 'initialize') await this.reconnecting;
    const ws = this.ws;
    if (!ws || !ws.isOpen) throw new DisconnectedError();
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

  on(event: 'disconnected', listener: (err: DisconnectedError) => void): this;
  on(event: 'serverRequest', listener: (method: string, params: unknown) => void): this;
  on(event: 'reconnected', listener: (sessionId: string) => void): this;
  on(event: string, listener: (...args: never[]) => void): this {
    this.emitter.on(event, listener as (...args: unknown[]) => void);
    return this;
  }

  /** Events of one process from now on, ending after `closed`. */
  events(processId: string): AsyncIterable<ProcessEvent> {
    const queue = new EventQueue<ProcessEvent>();
    const off = this.onEvent((e) => {
      if (e.processId !== processId) return;
      queue.push(e);
      if (e.type === 'closed') {
        off();
        queue.end();
      }
    });
    return queue;
  }

  async startProcess(params: StartProcessParams): Promise<{ processId: string; sandboxType: SandboxType }> {
    this.track(params.processId);
    try {
      const r = await this.request<{ processId: string; sandboxType?: unknown }>('process/start', { env: {}, tty: false, ...params });
      return { processId: r.processId, sandboxType: normalizeSandboxType(r.sandboxType) };
    } catch (err) {
      const t = this.tracked.get(params.processId);
      if (t && t.lastSeq === 0 && err instanceof RpcError && !/already exists/.test(err.message)) this.tracked.delete(params.processId);
      throw err;
    }
  }

  /** Starts a process and returns its event stream, subscribed before the start request is sent. */
  async spawn(params: StartProcessParams): Promise<{ processId: string; sandboxType: SandboxType; events: AsyncIterable<ProcessEvent> }> {
    const events = this.events(params.processId);
    const started = await this.startProcess(params);
    return { processId: params.processId, sandboxType: started.sandboxType, events };
  }

  async read(processId: string, options: ReadOptions = {}): Promise<DecodedReadResult> {
    const r = await this.request<WireReadResult>('process/read', {
      processId,
      afterSeq: options.afterSeq ?? null,
      maxBytes: options.maxBytes ?? null,
      waitMs: options.waitMs ?? null,
    });
    return decodeRead(r);
  }

  async write(processId: string, data: Uint8Array | string, options: { writeId?: string; closeStdin?: boolean } = {}): Promise<WriteStatus> {
    const chunk = Buffer.from(data).toString('base64');
    const r = await this.request<{ status: WriteStatus }>('process/write', { processId, chunk, ...options });
    return r.status;
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
  httpRequest(params: HttpRequestWireParams): Promise<{ status: number; headers: { name: string; value: string }[]; bodyBase64: string }> {
    return this.request('http/request', params);
  }

  environmentStatus(): Promise<{ status: string }> {
    return this.request('environment/status', {});
  }

  /** Drops the connection without closing the session (tests, and simulating network loss). */
  dropConnection(): void {
    this.ws?.terminate();
  }

  async close(): Promise<void> {
    this.closedByUser = true;
    await this.ws?.close(1000);
  }
}
