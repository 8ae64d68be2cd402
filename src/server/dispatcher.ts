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
  LARGE_MESSAGE_BYTES,
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
} from '../protocol/index.js';
import { CORDON_CAPABILITIES } from './capabilities.js';
import { ClientRequests } from './client-requests.js';
import { wireEnvironmentInfo } from './environment-info.js';
import type { HandlerContext } from './handler-context.js';
import { methodTable } from './method-table.js';
import { Outbox, type OutboxLimits } from './outbox.js';
import { ParsedSandboxes } from './parsed-sandboxes.js';
import type { Session, SessionSink } from './session.js';
import type { SessionRegistry } from './session-registry.js';
import { StartHold } from './start-hold.js';
import type { ServerTransport } from './transport.js';

type State = 'new' | 'initializing' | 'ready' | 'closed';

export interface DispatcherLimits extends OutboxLimits {
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
 * One connection's incoming side: the initialize handshake gate, routing each request to its
 * handler in the method table, and the ordering of a process's events after its start response.
 * What goes out goes through the Outbox. It knows nothing of sockets (see ServerTransport).
 */
export class Dispatcher implements SessionSink {
  private state: State = 'new';
  private session: Session | undefined;
  /** What handlers see; set with the session, once. */
  private context: HandlerContext | undefined;
  private readonly aborter = new AbortController();
  private readonly startHold = new StartHold();
  private readonly outbox: Outbox;
  /** Requests this server sends the client (integer ids from 1). */
  readonly clientRequests = new ClientRequests((text) => this.outbox.respond(text));

  constructor(
    private readonly transport: ServerTransport,
    private readonly registry: SessionRegistry,
    private readonly limits: DispatcherLimits,
    private readonly logger: Logger,
  ) {
    this.outbox = new Outbox(transport, limits, () => this.session?.environment, logger);
  }

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
  private handleRequest(id: RequestId, method: string, params: unknown, large?: { decodedData: Buffer } | { base64Problem: string }): void {
    let holdId: string | undefined;
    try {
      if (method === 'initialize') {
        this.sendResult(id, this.initialize(params));
        return this.session?.deliverHeld();
      }
      const route = methodTable.get(method);
      if (!route) throw methodNotFound(method);
      if (this.state === 'new') throw invalidRequest(messages.mustInitialize(methodFamily(method)));
      if (this.state === 'initializing') throw invalidRequest(messages.mustSendInitialized(methodFamily(method)));
      holdId = method === 'process/start' ? startProcessId(params) : undefined;
      if (holdId !== undefined) this.startHold.begin(holdId);
      const context = this.context as HandlerContext;
      const answer = route(large ? { ...context, ...large } : context, params);
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
      sandboxes: new ParsedSandboxes(),
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
    for (const message of this.startHold.release(processId)) this.outbox.send(message);
  }

  deliver(event: ProcessEvent): void {
    let text: OutgoingMessage;
    if (event.type === 'output') text = encodeOutputFrame(event.processId, event.seq, event.stream, event.data);
    else if (event.type === 'exited') text = encodeExited(event.processId, event.seq, event.exitCode, event.sandboxDenied);
    else text = encodeClosed(event.processId, event.seq);
    if (this.startHold.hold(event.processId, text)) return;
    this.outbox.notify(text);
  }

  /** A server-to-client request (SessionSink). */
  request(method: string, params: unknown, timeoutMs: number): Promise<unknown> {
    return this.clientRequests.request(method, params, timeoutMs);
  }

  deliverFsChange(change: FsChange): void {
    this.outbox.send(encodeNotification('fs/changed', { watchId: change.watchId, path: change.path, kind: change.kind }));
  }

  deliverNotification(method: string, params: unknown): void {
    this.outbox.notify(encodeNotification(method, params));
  }

  private sendResult(id: RequestId, result: unknown): void {
    this.outbox.respond(encodeResultFrame(id, result));
  }

  private sendError(id: RequestId, code: number, message: string, data?: unknown): void {
    this.outbox.respond(encodeError(id, code, message, data));
  }

  /** The transport is gone: detach the session (it lives on for its grace period). */
  handleClose(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.outbox.close();
    this.aborter.abort();
    this.clientRequests.close();
    this.startHold.clear();
    if (this.session) this.registry.detach(this.session, this);
  }
}

function startProcessId(params: unknown): string | undefined {
  if (params && typeof params === 'object' && typeof (params as { processId?: unknown }).processId === 'string') {
    return (params as { processId: string }).processId;
  }
  return undefined;
}
