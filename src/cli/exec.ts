import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { OutputGapEvent, ReconnectingInfo } from '../client/exec-server-client.js';
import type { RemoteEnvironment } from '../client/remote-environment.js';
import type { SandboxRequest } from '../environment/permissions.js';
import type { Environment, OutputFlowControl, ProcessEvent, ProcessNetwork } from '../environment/types.js';
import type { OperatorNetworkPolicy } from '../network/policy.js';
import { proxiedNetwork } from '../sandbox/proxy-env.js';
import { connectRemote } from './connect.js';
import { terminalExecPolicyPrompt } from './exec-policy-prompt.js';
import { type NetworkFlags, operatorNetworkFromFlags } from './network-flags.js';
import { EXIT_BROKEN_PIPE, flushed, StdioSink, type Writable } from './stdio.js';

/** Cordon itself failed before the command could run (bad flags, no server, missing --cwd). */
export const EXIT_CORDON_ERROR = 125;
/** The connection to the server was lost and could not be resumed; the command's fate is unknown. */
export const EXIT_CONNECTION_LOST = 255;
/** How long `cordon exec --url` tries to resume after a drop, unless --reconnect-window-ms says otherwise. */
export const DEFAULT_RECONNECT_WINDOW_MS = 15_000;
/** After a stop signal: how long to wait for the command's group to be reaped before leaving. */
const STOP_WAIT_MS = 5_000;

const SIGNAL_NUMBERS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;
type StopSignal = keyof typeof SIGNAL_NUMBERS;

export interface ExecOptions extends NetworkFlags {
  /** The command name used in error messages. */
  label?: string;
  sandbox?: SandboxRequest;
  url?: string;
  tokenFile?: string;
  reconnectWindowMs?: number;
  tty?: boolean;
  cwd: string;
  env: string[];
  /** Run the command through a managed proxy with this policy; misses are asked on the terminal. */
  network?: OperatorNetworkPolicy;
}

function parseEnvPairs(pairs: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`--env expects NAME=VALUE, not ${JSON.stringify(pair)}`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * `cordon exec`: runs one command and returns the exit code to leave with: the command's (128+n for
 * a signal death), 125 when cordon could not run it, 126/127 for a command that cannot be executed
 * or found, 141 when our stdout's reader went away, 128+n when we were stopped by signal n, 255
 * when the connection to the server was lost for good. docs/cli.md has the details.
 */
export async function runExec(command: string[], opts: ExecOptions): Promise<number> {
  const label = opts.label ?? 'cordon exec';
  const complain = (text: string): void => void process.stderr.write(`${label}: ${text}\n`);
  let environment: Environment & OutputFlowControl;
  let remote: RemoteEnvironment | undefined;
  let overrides: Record<string, string>;
  const cwd = path.resolve(opts.cwd);
  let networkPolicy: OperatorNetworkPolicy | undefined;
  try {
    overrides = parseEnvPairs(opts.env);
    networkPolicy = opts.network ?? (await operatorNetworkFromFlags(opts, undefined));
    if (opts.url) {
      remote = await connectRemote({ url: opts.url, ...(opts.tokenFile ? { tokenFile: opts.tokenFile } : {}) }, 'cordon-exec', {
        reconnectWindowMs: opts.reconnectWindowMs ?? DEFAULT_RECONNECT_WINDOW_MS,
        requestHandlers: { 'execPolicy/request': terminalExecPolicyPrompt() },
      });
      environment = remote;
    } else {
      // Loaded only here: `cordon exec --url` needs none of the local machinery.
      const { LocalEnvironment } = await import('../local/local-environment.js');
      environment = new LocalEnvironment();
    }
  } catch (err) {
    complain(message(err));
    return EXIT_CORDON_ERROR;
  }
  // A missing working directory would otherwise surface as the command "not found".
  try {
    const meta = await environment.fs.getMetadata(cwd);
    if (!meta.isDirectory) throw new Error('Not a directory');
  } catch (err) {
    complain(`--cwd ${cwd}: ${message(err)}`);
    await environment.close();
    return EXIT_CORDON_ERROR;
  }

  const processId = `exec-${randomUUID()}`;
  const tty = opts.tty ?? false;
  let exitCode = 1;
  let leaveWith: number | undefined;
  let finish!: (code: number) => void;
  const finished = new Promise<number>((resolve) => (finish = resolve));
  let closing = false;

  /** Ends the command (its whole process group) and leaves with `code` once it is gone. */
  const stop = (code: number): void => {
    if (leaveWith !== undefined) return;
    leaveWith = code;
    void environment.exec.terminate(processId).catch(() => undefined);
    setTimeout(() => finish(code), STOP_WAIT_MS).unref();
  };

  const sink = new StdioSink({ pause: () => environment.pauseOutput(), resume: () => environment.resumeOutput() }, () =>
    stop(EXIT_BROKEN_PIPE),
  );
  const unsubscribe = environment.exec.subscribe((event: ProcessEvent) => {
    if (event.processId !== processId) return;
    if (event.type === 'output') sink.write(event.stream === 'stderr' ? 'stderr' : 'stdout', event.data);
    else if (event.type === 'exited') exitCode = event.exitCode;
    else finish(leaveWith ?? exitCode);
  });

  const client = remote?.client;
  const onReconnecting = (info: ReconnectingInfo): void =>
    complain(`lost the connection to ${opts.url}; reconnecting (up to ${info.attempts} attempts within ${info.windowMs / 1000} s)`);
  const onReconnected = (): void => complain(`reconnected to ${opts.url}; the command's output resumes`);
  const onGap = (gap: OutputGapEvent): void =>
    complain(`output lost while disconnected: the server no longer held chunks ${gap.fromSeq}..${gap.toSeq} (beyond its retention)`);
  const onDisconnected = (err: Error): void => {
    if (closing) return;
    complain(`${message(err)}; giving up (exit ${EXIT_CONNECTION_LOST})`);
    leaveWith ??= EXIT_CONNECTION_LOST;
    finish(leaveWith);
  };
  client?.on('reconnecting', onReconnecting).on('reconnected', onReconnected).on('gap', onGap).on('disconnected', onDisconnected);

  // Signals: an interrupt goes to the command (a second one stops it); hang-up and terminate stop
  // it, and we leave with 128+n as if the signal had killed us.
  let interrupts = 0;
  const onSignal = (signal: StopSignal): void => {
    if (signal === 'SIGINT' && interrupts++ === 0) {
      void environment.exec.signal(processId, 'interrupt').catch(() => undefined);
      return;
    }
    stop(128 + SIGNAL_NUMBERS[signal]);
  };
  const handlers = (Object.keys(SIGNAL_NUMBERS) as StopSignal[]).map((signal) => {
    const handler = (): void => onSignal(signal);
    process.on(signal, handler);
    return () => process.off(signal, handler);
  });

  const cleanup = async (): Promise<void> => {
    closing = true;
    unsubscribe();
    for (const off of handlers) off();
    process.stdin.pause();
    if (process.stdin.isTTY && tty) process.stdin.setRawMode(false);
    client?.off('reconnecting', onReconnecting).off('reconnected', onReconnected).off('gap', onGap).off('disconnected', onDisconnected);
    await environment.close();
  };

  let network: ProcessNetwork | undefined;
  let denial: string | undefined;
  let inputPaused = false;
  if (networkPolicy) {
    if (opts.url) {
      process.stderr.write(
        `${opts.label ?? 'cordon exec'}: --network-* with --url is not supported yet (the server's own network policy applies there) there\n`,
      );
      await environment.close();
      return 125;
    }
    // Loaded only when asked for: the CLI starts faster without the proxy's modules.
    const [{ NetworkApprovals, deferredDenialMessage }, { ManagedProxy }, { terminalApprovalHandler }] = await Promise.all([
      import('../client/network-approvals.js'),
      import('../network/managed-proxy.js'),
      import('./network-prompt.js'),
    ]);
    const approvals = new NetworkApprovals(
      terminalApprovalHandler({
        pauseInput: () => ((inputPaused = true), process.stdin.pause()),
        resumeInput: () => ((inputPaused = false), process.stdin.resume()),
      }),
    );
    const proxy = new ManagedProxy({
      policy: {
        mode: networkPolicy.mode,
        domains: networkPolicy.domains,
        allowLocalBinding: networkPolicy.allowLocalBinding,
        trustedRanges: networkPolicy.trustedRanges,
      },
      enableSocks5: true,
      enableSocks5Udp: true,
      decider: async (r) => {
        const answer = await approvals.decide({ ...r, processId });
        if (answer.type === 'deny' && !denial) {
          // Deferred denial: the command is already running; stop it and say why.
          denial = deferredDenialMessage(r);
          void environment.exec.terminate(processId).catch(() => undefined);
        }
        return answer;
      },
    });
    network = proxiedNetwork(proxy, { allowLocalBinding: networkPolicy.allowLocalBinding, enforce: true });
  }
  try {
    await environment.exec.start({
      processId,
      argv: command,
      cwd,
      env: overrides,
      envPolicy: { inherit: 'all', ignoreDefaultExcludes: true, exclude: [], set: {}, includeOnly: [] },
      tty,
      pipeStdin: !tty,
      rows: tty ? (process.stdout.rows ?? 24) : null,
      cols: tty ? (process.stdout.columns ?? 80) : null,
      sandbox: opts.sandbox ?? null,
      network: network ?? null,
    });
  } catch (err) {
    complain(`${command[0] ?? ''}: ${message(err)}`);
    await cleanup();
    return leaveWith ?? (/Permission denied|os error 13/.test(message(err)) ? 126 : 127);
  }
  if (leaveWith !== undefined) void environment.exec.terminate(processId).catch(() => undefined);
  forwardInput(environment, processId, tty, () => inputPaused);
  const code = await finished;
  await cleanup();
  // The reader may have gone away during the last writes, after the command ended.
  const delivered = await flushed(process.stdout as unknown as Writable);
  if (sink.brokenPipe || !delivered) return EXIT_BROKEN_PIPE;
  if (denial) {
    complain(denial);
    return code === 0 ? 1 : code;
  }
  return code;
}

/**
 * Copies our stdin to the command, one write at a time (stdin is paused while a write is in flight,
 * so a slow command slows the reading), then closes the command's stdin at our end of input. On a
 * pty the end is ^D, which a terminal honours at the start of a line: after a partial last line, a
 * first ^D hands that line over and the second one is the end.
 */
function forwardInput(environment: Environment, processId: string, tty: boolean, held: () => boolean): void {
  const stdin = process.stdin;
  let lastByte: number | undefined;
  let done = false;
  const send = async (data: Uint8Array, closeStdin = false): Promise<void> => {
    try {
      const status = await environment.exec.write({ processId, data, closeStdin });
      if (status !== 'accepted') done = true;
    } catch {
      done = true;
    }
    if (done) stdin.pause();
  };
  if (tty && stdin.isTTY) stdin.setRawMode(true);
  stdin.on('data', (data: Buffer) => {
    if (done || data.length === 0) return;
    lastByte = data[data.length - 1];
    stdin.pause();
    void send(data).then(() => {
      if (!done && !held()) stdin.resume(); // held: a network approval prompt is reading the terminal
    });
  });
  stdin.on('end', () => {
    if (done) return;
    if (tty && lastByte !== undefined && lastByte !== 0x0a && lastByte !== 0x04) void send(Buffer.from([0x04]));
    void send(new Uint8Array(0), true);
  });
  stdin.on('error', () => undefined);
  stdin.resume();
  if (tty) {
    process.stdout.on('resize', () => {
      void environment.exec.resize(processId, process.stdout.rows ?? 24, process.stdout.columns ?? 80).catch(() => undefined);
    });
  }
}
