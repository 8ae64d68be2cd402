import type { Logger } from 'pino';
import type { Environment, ReadResult } from '../environment/types.js';
import { type ExecPolicyAsk, type ExecPolicyEnforcer, ExecPolicyRefusal } from '../execpolicy/index.js';
import type { OperatorNetworkPolicy, Resolve } from '../network/policy.js';
import {
  Base64Error,
  checkStartBounds,
  decodeBase64Strict,
  invalidParams,
  parseAbsolutePath,
  parseExecMetadata,
  parseParams,
  parseWireSandbox,
  ReadParams,
  ResizeParams,
  RpcError,
  SignalParams,
  StartParams,
  TerminateParams,
  type WireEnvironmentInfo,
  type WireReadResult,
  WriteParams,
} from '../protocol/index.js';
import { isCodexSandboxWrapper, unwrapCodexSandboxArgv } from '../sandbox/codex-wrapper.js';
import { sandboxFromWire } from '../sandbox/profile.js';
import { CORDON_CAPABILITIES } from './capabilities.js';
import { wireEnvironmentInfo } from './environment-info.js';
import { launchProcessNetwork } from './network-launch.js';
import type { Session } from './session.js';

/** The thin adapters from `process/*` params to the environment and back to wire shapes. */

export interface HandlerContext {
  environment: Environment;
  /** Aborted when the connection that asked goes away. */
  signal: AbortSignal;
  /** `fs/writeFile`'s data, decoded by the connection from the message's bytes (`dataBase64` is then empty). */
  decodedData?: Buffer;
  /** fs/writeFile taken apart from bytes whose dataBase64 is not valid: the problem, worded. */
  base64Problem?: string;
  /** The operator's command rules, checked before anything is spawned. */
  execPolicy?: ExecPolicyEnforcer;
  /** Asks the client about a `prompt` verdict; absent when the client did not offer to answer. */
  askExecPolicy?: ExecPolicyAsk;
  /** The session asking: server-to-client requests and notifications (the network decider). */
  session?: Session;
  logger?: Logger;
  /** Name resolution for managed network proxies (injectable for tests). */
  resolve?: Resolve;
  trustedRanges?: string[];
  operatorNetwork?: OperatorNetworkPolicy;
  /** The server ceiling's network (`restricted`: no process has any network). */
  ceilingNetwork?: string;
}

/** The JSON-RPC error code of a start refused by the exec policy (docs/protocol-extensions.md). */
export const EXEC_POLICY_REFUSED = -32600;

export function toWireReadResult(result: ReadResult): WireReadResult {
  return {
    chunks: result.chunks.map((c) => ({ seq: c.seq, stream: c.stream, chunk: c.data.toString('base64') })),
    nextSeq: result.nextSeq,
    exited: result.exited,
    exitCode: result.exitCode,
    closed: result.closed,
    failure: result.failure,
    sandboxDenied: result.sandboxDenied,
    ...(result.droppedOutput ? { droppedOutput: result.droppedOutput } : {}),
  };
}

export async function handleStart(ctx: HandlerContext, raw: unknown): Promise<{ processId: string; sandboxType: string }> {
  checkStartBounds(raw);
  const p = parseParams(StartParams, raw, 'ExecParams');
  // Validated as the reference does; its ids only label the call, nothing here depends on them.
  parseExecMetadata(p.metadata);
  const cwd = parseAbsolutePath(p.cwd);
  const wire = parseWireSandbox(p.sandbox);
  let argv = p.argv;
  let commandCwd = cwd;
  let sandbox = wire ? sandboxFromWire(wire) : null;
  let arg0 = p.arg0 ?? null;
  if (isCodexSandboxWrapper(p.arg0)) {
    // Codex's client-side sandbox wrapper names paths on the client's machine (docs/protocol.md §7.1.3):
    // run its command under Cordon's own sandbox instead.
    const unwrapped = unwrapCodexSandboxArgv(p.argv);
    argv = unwrapped.argv;
    commandCwd = unwrapped.cwd ?? cwd;
    sandbox = unwrapped.sandbox.cwd ? unwrapped.sandbox : { ...unwrapped.sandbox, cwd: commandCwd };
    arg0 = null;
  }
  if (ctx.execPolicy) {
    try {
      await ctx.execPolicy.enforce(argv, ctx.askExecPolicy, p.processId);
    } catch (err) {
      if (err instanceof ExecPolicyRefusal) throw new RpcError(EXEC_POLICY_REFUSED, err.message);
      throw err;
    }
  }
  const network = await launchProcessNetwork(p, p.processId, sandbox?.profile.network, ctx);
  return ctx.environment.exec.start({
    processId: p.processId,
    argv,
    cwd: commandCwd,
    env: p.env,
    tty: p.tty,
    pipeStdin: p.pipeStdin ?? false,
    arg0,
    envPolicy: p.envPolicy ?? null,
    rows: p.rows ?? null,
    cols: p.cols ?? null,
    sandbox,
    network,
    // Without a network (the ceiling gave none) there is nothing left to enforce.
    enforceManagedNetwork: network !== null && (p.enforceManagedNetwork ?? false),
  });
}

export async function handleRead(ctx: HandlerContext, raw: unknown): Promise<WireReadResult> {
  const p = parseParams(ReadParams, raw, 'ReadParams');
  const result = await ctx.environment.exec.read(p.processId, {
    afterSeq: p.afterSeq ?? null,
    maxBytes: p.maxBytes ?? null,
    waitMs: p.waitMs ?? null,
    signal: ctx.signal,
  });
  return toWireReadResult(result);
}

export async function handleWrite(ctx: HandlerContext, raw: unknown): Promise<{ status: string }> {
  const p = parseParams(WriteParams, raw, 'WriteParams');
  let data: Buffer;
  try {
    data = decodeBase64Strict(p.chunk);
  } catch (err) {
    if (err instanceof Base64Error) throw invalidParams(err.message);
    throw err;
  }
  const status = await ctx.environment.exec.write({
    processId: p.processId,
    data,
    writeId: p.writeId ?? null,
    closeStdin: p.closeStdin ?? false,
  });
  return { status };
}

export async function handleTerminate(ctx: HandlerContext, raw: unknown): Promise<{ running: boolean }> {
  const p = parseParams(TerminateParams, raw, 'TerminateParams');
  return ctx.environment.exec.terminate(p.processId);
}

export async function handleSignal(ctx: HandlerContext, raw: unknown): Promise<Record<string, never>> {
  const p = parseParams(SignalParams, raw, 'SignalParams');
  await ctx.environment.exec.signal(p.processId, p.signal);
  return {};
}

export async function handleResize(ctx: HandlerContext, raw: unknown): Promise<Record<string, never>> {
  const p = parseParams(ResizeParams, raw, 'ResizeParams');
  await ctx.environment.exec.resize(p.processId, p.rows, p.cols);
  return {};
}

/** The same object as `initialize`'s `environmentInfo` (0.140–0.149 clients ask for it here). */
export async function handleEnvironmentInfo(ctx: HandlerContext): Promise<WireEnvironmentInfo> {
  return wireEnvironmentInfo(await ctx.environment.info(), CORDON_CAPABILITIES);
}

const READY = { status: 'ready' } as const;

/** A session that answers is ready: there is nothing for it to wait for. */
export function handleEnvironmentStatus(): typeof READY {
  return READY;
}
