import type { ReadResult } from '../environment/types.js';
import { ExecPolicyRefusal } from '../execpolicy/index.js';
import {
  Base64Error,
  decodeBase64Strict,
  invalidParams,
  type MethodHandlers,
  type MethodParams,
  type ProcessMethodName,
  parseAbsolutePath,
  parseExecMetadata,
  parseWireSandbox,
  RpcError,
  type WireEnvironmentInfo,
  type WireReadResult,
  type WriteStatus,
} from '../protocol/index.js';
import { isCodexSandboxWrapper, unwrapCodexSandboxArgv } from '../sandbox/codex-wrapper.js';
import { sandboxFromWire } from '../sandbox/profile.js';
import { CORDON_CAPABILITIES } from './capabilities.js';
import { wireEnvironmentInfo } from './environment-info.js';
import type { HandlerContext } from './handler-context.js';
import { launchProcessNetwork } from './network-launch.js';

/** The thin adapters from `process/*` params to the environment and back to wire shapes. */

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

export async function handleStart(
  ctx: HandlerContext,
  p: MethodParams<'process/start'>,
): Promise<{ processId: string; sandboxType: string }> {
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
      const outcome = await ctx.execPolicy.enforce(argv, ctx.askExecPolicy, {
        processId: p.processId,
        ...(ctx.session ? { session: ctx.session } : {}),
        sandboxed: sandbox !== null || ctx.ceilingNetwork !== undefined,
      });
      // Codex would run it outside its sandbox; Cordon never does (docs/exec-policy.md).
      if (outcome.bypassSandbox)
        ctx.logger?.debug({ processId: p.processId }, 'exec policy: every part explicitly allowed (bypass_sandbox)');
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

export async function handleRead(ctx: HandlerContext, p: MethodParams<'process/read'>): Promise<WireReadResult> {
  const result = await ctx.environment.exec.read(p.processId, {
    afterSeq: p.afterSeq ?? null,
    maxBytes: p.maxBytes ?? null,
    waitMs: p.waitMs ?? null,
    signal: ctx.signal,
  });
  return toWireReadResult(result);
}

export async function handleWrite(ctx: HandlerContext, p: MethodParams<'process/write'>): Promise<{ status: WriteStatus }> {
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

export async function handleTerminate(ctx: HandlerContext, p: MethodParams<'process/terminate'>): Promise<{ running: boolean }> {
  return ctx.environment.exec.terminate(p.processId);
}

export async function handleSignal(ctx: HandlerContext, p: MethodParams<'process/signal'>): Promise<Record<string, never>> {
  await ctx.environment.exec.signal(p.processId, p.signal);
  return {};
}

export async function handleResize(ctx: HandlerContext, p: MethodParams<'process/resize'>): Promise<Record<string, never>> {
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

export const processHandlers: MethodHandlers<HandlerContext, ProcessMethodName> = {
  'process/start': handleStart,
  'process/read': handleRead,
  'process/write': handleWrite,
  'process/terminate': handleTerminate,
  'process/signal': handleSignal,
  'process/resize': handleResize,
  'environment/info': handleEnvironmentInfo,
  'environment/status': handleEnvironmentStatus,
};
