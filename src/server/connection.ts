import type { Logger } from 'pino';
import type { FsChange, ProcessEvent } from '../environment/types.js';
import type { ExecPolicyAnswer, ExecPolicyEnforcer, ExecPolicyQuestion } from '../execpolicy/index.js';
import type { OperatorNetworkPolicy, Resolve } from '../network/policy.js';
import {
  ErrorCode,
  encodeClosed,
  encodeError,
  encodeExited,
  encodeNotification,
  encodeOutputFrame,
  encodeResultFrame,
  InitializeParams,
  type InitializeResult,
  invalidRequest,
  isStreamed,
  LARGE_MESSAGE_BYTES,
  messageLength,
  messages,
  methodFamily,
  methodNotFound,
  type OutgoingMessage,
  oversizeRefusal,
  parseLargeWriteFile,
  parseMessage,
  parseParams,
  type RequestId,
  RpcError,
  type StreamedMessage,
} from '../protocol/index.js';
import { CORDON_CAPABILITIES } from './capabilities.js';
import { ClientRequests } from './client-requests.js';
import { wireEnvironmentInfo } from './environment-info.js';
import { methodTable } from './method-table.js';
import type { HandlerContext } from './process-handlers.js';
import type { Session, SessionSink } from './session.js';
import type { SessionRegistry } from './session-registry.js';
import type { ServerTransport } from './transport.js';

type State = 'new' | 'initializing' | 'ready' | 'closed';

interface Queued {
  message: OutgoingMessage;
  size: number;
}

/** Unflushed bytes of a streamed message above which reading more of it waits. */
const STREAM_IN_FLIGHT_BYTES = 4 * 1024 * 1024;
/** A streamed message that ends within this many bytes is sent whole. */
const WHOLE_MESSAGE_BYTES = 1024 * 1024;
const noop = (): void => undefined;

/** A message that will never be sent: a streamed one releases its source (an open file). */
function dropped(message: OutgoingMessage): void {
  if (isStreamed(message)) void message.cancel().catch(noop);
}

export interface ConnectionLimits {
  sendHighWaterBytes: number;
  sendLowWaterBytes: number;
  execPolicy?: ExecPolicyEnforcer;
  execPolicyPromptTimeoutMs?: number;
  networkResolve?: Resolve;
  networkTrustedRanges?: string[];
  network?: OperatorNetworkPolicy;
  environment?: { ceiling?: { profile: { network: string } } };
}

/** The server-to-client request a `prompt` verdict sends (docs/protocol-extensions.md). */
export const EXEC_POLICY_REQUEST = 'execPolicy/request';

/**
 * The JSON-RPC state machine of one connection: the initialize gate, concurrent dispatch, event
 * delivery and send-side backpressure. It knows nothing of sockets (see ServerTransport).
 */
export class Connection implements SessionSink {
  private state: State = 'new';
  private session: Session | undefined;
  /** What handlers see; set with the session, once. */
  private context: HandlerContext | undefined;
  private readonly aborter = new AbortController();
  /** Events of processes whose `process/start` response has not been sent yet. */
  private readonly held = new Map<string, OutgoingMessage[]>();
  private unflushedBytes = 0;
  private outputPaused = false;
  /** Messages waiting for a streamed message to finish; undefined when none is being sent. */
  private outbox: Queued[] | undefined;
  private corked = false;
  /** Requests this server sends the client (integer ids from 1). */
  readonly clientRequests = new ClientRequests((text) => {
    this.send(text);
    this.uncork();
  });

  constructor(
    private readonly transport: ServerTransport,
    private readonly registry: SessionRegistry,
    private readonly limits: ConnectionLimits,
    private readonly logger: Logger,
  ) {}

  get sessionId(): string | undefined {
    return this.session?.id;
  }

  /** A message as bytes (WebSocket): a large `fs/writeFile` is taken apart without one big string. */
  handleBytes(data: Buffer): void {
    if (this.state === 'closed') return;
    if (data.length >= LARGE_MESSAGE_BYTES) {
      const large = parseLargeWriteFile(data);
      if (large)
        return this.handleRequest(
          large.request.id,
          large.request.method,
          large.request.params,
          'data' in large ? { decodedData: large.data } : { base64Problem: large.base64Problem },
        );
    }
    if (this.refusedAsOversize(data)) return;
    this.parseAndHandle(data.toString('utf8'));
  }

  handleText(text: string): void {
    if (this.state === 'closed') return;
    if (this.refusedAsOversize(text)) return;
    this.parseAndHandle(text);
  }

  private refusedAsOversize(message: Buffer | string): boolean {
    const refusal = oversizeRefusal(message);
    if (refusal) this.sendError(refusal.id ?? -1, ErrorCode.InvalidParams, refusal.message);
    return refusal !== undefined;
  }

  private parseAndHandle(text: string): void {
    const msg = parseMessage(text);
    switch (msg.kind) {
      case 'invalid':
        return this.sendError(
          -1,
          ErrorCode.InvalidRequest,
          `failed to parse ${this.transport.kind} JSON-RPC message from exec-server ${this.transport.kind} ${this.transport.peer}: ${msg.reason}`,
        );
      case 'response':
        if (this.clientRequests.handleResponse(msg.id, msg.result, msg.error)) return;
        return this.sendError(
          -1,
          ErrorCode.InvalidRequest,
          `unexpected JSON-RPC response (id ${JSON.stringify(msg.id)}): no request of this server with that id is pending`,
        );
      case 'notification':
        return this.handleNotification(msg.method);
      case 'request':
        return this.handleRequest(msg.id, msg.method, msg.params);
    }
  }

  private handleNotification(method: string): void {
    if (method === 'initialized') {
      if (this.state === 'initializing') this.state = 'ready';
      else if (this.state === 'new')
        this.sendError(-1, ErrorCode.InvalidRequest, 'received `initialized` before a successful `initialize`');
      return;
    }
    this.sendError(
      -1,
      ErrorCode.InvalidRequest,
      `unexpected notification \`${method}\`: the only notification a client may send is \`initialized\``,
    );
  }

  /** Answers a request; synchronously when its handler answers with a value (no promise per request). */
  private handleRequest(
    id: RequestId,
    method: string,
    params: unknown,
    large?: Pick<HandlerContext, 'decodedData' | 'base64Problem'>,
  ): void {
    let holdId: string | undefined;
    try {
      if (method === 'initialize') {
        this.sendResult(id, this.initialize(params));
        return this.session?.deliverHeld();
      }
      const handler = methodTable.get(method);
      if (!handler) throw methodNotFound(method);
      if (this.state === 'new') throw invalidRequest(messages.mustInitialize(methodFamily(method)));
      if (this.state === 'initializing') throw invalidRequest(messages.mustSendInitialized(methodFamily(method)));
      holdId = method === 'process/start' ? startProcessId(params) : undefined;
      if (holdId !== undefined && !this.held.has(holdId)) this.held.set(holdId, []);
      const context = this.context as HandlerContext;
      const answer = handler(large ? { ...context, ...large } : context, params);
      if (answer instanceof Promise) return void this.answerLater(id, method, answer, holdId);
      this.sendResult(id, answer);
    } catch (err) {
      this.sendFailure(id, method, err);
    }
    if (holdId !== undefined) this.release(holdId);
  }

  private async answerLater(id: RequestId, method: string, answer: Promise<unknown>, holdId: string | undefined): Promise<void> {
    try {
      this.sendResult(id, await answer);
    } catch (err) {
      this.sendFailure(id, method, err);
    }
    if (holdId !== undefined) this.release(holdId);
  }

  private sendFailure(id: RequestId, method: string, err: unknown): void {
    if (err instanceof RpcError) return this.sendError(id, err.code, err.message, err.data);
    this.logger.error({ err, method }, 'request failed');
    this.sendError(id, ErrorCode.Internal, err instanceof Error ? err.message : String(err));
  }

  /**
   * Opens or resumes the session. The result carries `environmentInfo` (0.150+ clients read their
   * capabilities from it; older ones ignore the key, as serde does with unknown fields).
   */
  private initialize(params: unknown): InitializeResult {
    if (this.state !== 'new') throw invalidRequest(messages.initializeOnce);
    const p = parseParams(InitializeParams, params, 'InitializeParams');
    this.session = p.resumeSessionId ? this.registry.resume(p.resumeSessionId, this) : this.registry.create(this);
    this.context = {
      environment: this.session.environment,
      signal: this.aborter.signal,
      session: this.session,
      logger: this.logger,
      ...(this.limits.networkResolve ? { resolve: this.limits.networkResolve } : {}),
      trustedRanges: this.limits.networkTrustedRanges ?? [],
      ...(this.limits.network ? { operatorNetwork: this.limits.network } : {}),
      ...(this.limits.environment?.ceiling ? { ceilingNetwork: this.limits.environment.ceiling.profile.network } : {}),
    };
    if (this.limits.execPolicy) {
      this.context.execPolicy = this.limits.execPolicy;
      if (p.capabilities?.execPolicyPrompt === true) this.context.askExecPolicy = (q) => this.askExecPolicy(q);
    }
    this.state = 'initializing';
    return { sessionId: this.session.id, environmentInfo: wireEnvironmentInfo(this.session.environment.infoNow(), CORDON_CAPABILITIES) };
  }

  private async askExecPolicy(q: ExecPolicyQuestion): Promise<ExecPolicyAnswer> {
    const params = {
      ...(q.processId !== undefined ? { processId: q.processId } : {}),
      argv: q.argv,
      commands: q.commands,
      evaluation: q.evaluation,
      reason: q.reason,
      ...(q.proposedAmendment ? { proposedAmendment: q.proposedAmendment } : {}),
    };
    const result = await this.clientRequests.request(EXEC_POLICY_REQUEST, params, this.limits.execPolicyPromptTimeoutMs ?? 120_000);
    // Fail closed: only `{decision: {type: "allow"}}` allows.
    const decision = (result as { decision?: { type?: unknown; reason?: unknown } } | null)?.decision;
    const reason = typeof decision?.reason === 'string' ? decision.reason : undefined;
    const acceptAmendment = (decision as { acceptAmendment?: unknown } | undefined)?.acceptAmendment === true;
    return {
      allow: decision?.type === 'allow',
      ...(reason !== undefined ? { reason } : {}),
      ...(acceptAmendment ? { acceptAmendment } : {}),
    };
  }

  private release(processId: string): void {
    const queued = this.held.get(processId);
    this.held.delete(processId);
    if (queued) for (const text of queued) this.send(text);
  }

  /**
   * Notifications are corked until the current callback's work is done (process.nextTick), so the
   * messages one event produces (`exited` and `closed`, an output and the long-poll read it answers)
   * leave in one write: one system call and one client wake-up instead of one per message. Not
   * until the end of the loop turn: that comes after whatever else the turn holds and was measured
   * to delay a notification by 0.3 ms. A response uncorks at once.
   */
  private corkForTurn(): void {
    if (this.corked) return;
    this.corked = true;
    this.transport.cork();
    process.nextTick(() => this.uncork());
  }

  private uncork(): void {
    if (!this.corked) return;
    this.corked = false;
    this.transport.uncork();
  }

  deliver(event: ProcessEvent): void {
    let text: OutgoingMessage;
    if (event.type === 'output') text = encodeOutputFrame(event.processId, event.seq, event.stream, event.data);
    else if (event.type === 'exited') text = encodeExited(event.processId, event.seq, event.exitCode, event.sandboxDenied);
    else text = encodeClosed(event.processId, event.seq);
    const queue = this.held.get(event.processId);
    if (queue) return void queue.push(text);
    this.corkForTurn();
    this.send(text);
  }

  /** A server-to-client request (SessionSink). */
  request(method: string, params: unknown, timeoutMs: number): Promise<unknown> {
    return this.clientRequests.request(method, params, timeoutMs);
  }

  deliverFsChange(change: FsChange): void {
    this.send(encodeNotification('fs/changed', { watchId: change.watchId, path: change.path, kind: change.kind }));
  }

  deliverNotification(method: string, params: unknown): void {
    this.corkForTurn();
    this.send(encodeNotification(method, params));
  }

  private sendResult(id: RequestId, result: unknown): void {
    this.send(encodeResultFrame(id, result));
    this.uncork();
  }

  private sendError(id: RequestId, code: number, message: string, data?: unknown): void {
    this.send(encodeError(id, code, message, data));
    this.uncork();
  }

  /**
   * Sends a message, or queues it behind a streamed message still being sent (a message's parts
   * may not be interleaved with other messages). Queued bytes count as unflushed, so a busy
   * process is paused rather than queued without bound while a large file goes out.
   */
  private send(message: OutgoingMessage): void {
    if (this.state === 'closed') return dropped(message);
    const size = messageLength(message);
    this.counted(size);
    if (this.outbox) this.outbox.push({ message, size });
    else this.dispatch(message, size);
  }

  private dispatch(message: OutgoingMessage, size: number): void {
    if (isStreamed(message)) {
      this.outbox = [];
      void this.pump(message);
    } else if (Array.isArray(message)) {
      const last = message.length - 1;
      message.forEach((part, i) => this.transport.sendPart(part, i === last, i === last ? () => this.flushed(size) : noop));
    } else this.transport.send(message, () => this.flushed(size));
  }

  private counted(size: number): void {
    this.unflushedBytes += size;
    if (!this.outputPaused && this.unflushedBytes > this.limits.sendHighWaterBytes && this.session) {
      this.outputPaused = true;
      this.session.environment.pauseOutput();
    }
  }

  private flushed(size: number): void {
    this.unflushedBytes -= size;
    if (this.outputPaused && this.unflushedBytes <= this.limits.sendLowWaterBytes) {
      this.outputPaused = false;
      this.session?.environment.resumeOutput();
    }
  }

  /**
   * Sends a streamed message: whole when it turns out small (one frame, like any other message),
   * else part by part, keeping at most STREAM_IN_FLIGHT_BYTES unflushed; then what queued behind it.
   */
  private async pump(message: StreamedMessage): Promise<void> {
    const parts = message.parts[Symbol.asyncIterator]();
    let inFlight = 0;
    let wake: (() => void) | undefined;
    const stopWaiting = (): void => wake?.();
    this.aborter.signal.addEventListener('abort', stopWaiting);
    const sendPart = (part: Buffer, last: boolean): void => {
      inFlight += part.length;
      this.counted(part.length);
      this.transport.sendPart(part, last, () => {
        inFlight -= part.length;
        this.flushed(part.length);
        if (wake && inFlight <= STREAM_IN_FLIGHT_BYTES / 2) wake();
      });
    };
    try {
      const gathered: Buffer[] = [];
      let gatheredBytes = 0;
      let current = await parts.next();
      while (!current.done && gatheredBytes < WHOLE_MESSAGE_BYTES) {
        gathered.push(current.value);
        gatheredBytes += current.value.length;
        current = await parts.next();
      }
      if (current.done) {
        const whole = Buffer.concat(gathered, gatheredBytes);
        this.counted(whole.length);
        this.transport.send(whole, () => this.flushed(whole.length));
      } else {
        for (const part of gathered) sendPart(part, false);
      }
      while (!current.done && this.state !== 'closed') {
        const part = current.value;
        const next = await parts.next();
        sendPart(part, next.done === true);
        if (inFlight > STREAM_IN_FLIGHT_BYTES) await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        current = next;
      }
      if (!current.done) await parts.return?.();
    } catch (err) {
      // Part of the response may be out, and its id is not known here: the only honest end is to
      // drop the connection (the client's request fails as disconnected, not with partial data).
      this.logger.error({ err }, 'a streamed response failed midway; closing the connection');
      this.transport.close(1011, 'response failed midway');
      return;
    } finally {
      this.aborter.signal.removeEventListener('abort', stopWaiting);
    }
    const queued = this.outbox ?? [];
    this.outbox = undefined;
    let next = queued.shift();
    for (; next && !this.outbox; next = queued.shift()) this.dispatch(next.message, next.size);
    // Another streamed message started: what is left waits for it, in order.
    const outbox = this.outbox as Queued[] | undefined;
    if (outbox && next) outbox.push(next, ...queued);
  }

  /** The transport is gone: detach the session (it lives on for its grace period). */
  handleClose(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.aborter.abort();
    this.clientRequests.close();
    this.held.clear();
    for (const { message } of this.outbox?.splice(0) ?? []) dropped(message);
    if (this.session) this.registry.detach(this.session, this);
  }
}

function startProcessId(params: unknown): string | undefined {
  if (params && typeof params === 'object' && typeof (params as { processId?: unknown }).processId === 'string') {
    return (params as { processId: string }).processId;
  }
  return undefined;
}
