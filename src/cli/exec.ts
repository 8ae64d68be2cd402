import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { RemoteEnvironment } from '../client/remote-environment.js';
import type { SandboxRequest } from '../environment/permissions.js';
import type { Environment, ProcessEvent, ProcessNetwork } from '../environment/types.js';
import { LocalEnvironment } from '../local/local-environment.js';
import { terminalExecPolicyPrompt } from './exec-policy-prompt.js';
import type { OperatorNetworkPolicy } from '../network/policy.js';
import { operatorNetworkFromFlags, readToken, type NetworkFlags } from './serve.js';

export interface ExecOptions extends NetworkFlags {
  /** The command name used in error messages. */
  label?: string;
  sandbox?: SandboxRequest;
  url?: string;
  tokenFile?: string;
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

/** `cordon exec`: runs one command and returns its exit code (128+n for a signal death). */
export async function runExec(command: string[], opts: ExecOptions): Promise<number> {
  let environment: Environment;
  let overrides: Record<string, string>;
  let networkPolicy: OperatorNetworkPolicy | undefined;
  try {
    overrides = parseEnvPairs(opts.env);
    networkPolicy = opts.network ?? (await operatorNetworkFromFlags(opts, undefined));
    if (opts.url) {
      const token = opts.tokenFile ? await readToken(opts.tokenFile) : undefined;
      environment = await RemoteEnvironment.connect({
        url: opts.url,
        clientName: 'cordon-exec',
        requestHandlers: { 'execPolicy/request': terminalExecPolicyPrompt() },
        ...(token ? { token } : {}),
      });
    } else {
      environment = new LocalEnvironment();
    }
  } catch (err) {
    process.stderr.write(`${opts.label ?? 'cordon exec'}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 125;
  }
  const processId = `exec-${randomUUID()}`;
  const tty = opts.tty ?? false;
  let exitCode = 1;
  const closed = new Promise<void>((resolve) => {
    environment.exec.subscribe((event: ProcessEvent) => {
      if (event.processId !== processId) return;
      if (event.type === 'output') (event.stream === 'stderr' ? process.stderr : process.stdout).write(event.data);
      else if (event.type === 'exited') exitCode = event.exitCode;
      else resolve();
    });
  });
  let network: ProcessNetwork | undefined;
  let denial: string | undefined;
  let inputPaused = false;
  if (networkPolicy) {
    if (opts.url) {
      process.stderr.write(`${opts.label ?? 'cordon exec'}: --network-* with --url is not supported yet (the server's own network policy applies there) there\n`);
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
      terminalApprovalHandler({ pauseInput: () => ((inputPaused = true), process.stdin.pause()), resumeInput: () => ((inputPaused = false), process.stdin.resume()) }),
    );
    const proxy = new ManagedProxy({
      policy: { mode: networkPolicy.mode, domains: networkPolicy.domains, allowLocalBinding: networkPolicy.allowLocalBinding, trustedRanges: networkPolicy.trustedRanges },
      enableSocks5: true,
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
    network = { enableSocks5: true, allowLocalBinding: networkPolicy.allowLocalBinding, enforce: true, accept: (e, st) => proxy.accept(e, st), listen: () => proxy.listen(), close: () => proxy.close() };
  }
  void inputPaused;
  try {
    await environment.exec.start({
      processId,
      argv: command,
      cwd: path.resolve(opts.cwd),
      env: overrides,
      envPolicy: { inherit: 'all', ignoreDefaultExcludes: true, exclude: [], set: {}, includeOnly: [] },
      tty,
      pipeStdin: !tty,
      rows: tty ? process.stdout.rows ?? 24 : null,
      cols: tty ? process.stdout.columns ?? 80 : null,
      sandbox: opts.sandbox ?? null,
      network: network ?? null,
    });
  } catch (err) {
    process.stderr.write(`${opts.label ?? 'cordon exec'}: ${command[0] ?? ''}: ${err instanceof Error ? err.message : String(err)}\n`);
    await environment.close();
    return 127;
  }
  forwardInput(environment, processId, tty);
  await closed;
  process.stdin.pause();
  if (process.stdin.isTTY && tty) process.stdin.setRawMode(false);
  await environment.close();
  if (denial) {
    process.stderr.write(`${opts.label ?? 'cordon exec'}: ${denial}\n`);
    return exitCode === 0 ? 1 : exitCode;
  }
  return exitCode;
}

function forwardInput(environment: Environment, processId: string, tty: boolean): void {
  let chain: Promise<unknown> = Promise.resolve();
  const send = (data: Uint8Array, closeStdin = false): void => {
    chain = chain.then(() => environment.exec.write({ processId, data, closeStdin })).catch(() => undefined);
  };
  if (tty && process.stdin.isTTY) process.stdin.setRawMode(true);
  process.stdin.on('data', (data: Buffer) => send(data));
  process.stdin.on('end', () => {
    if (!tty) send(new Uint8Array(0), true);
  });
  process.stdin.on('error', () => undefined);
  if (tty) {
    process.stdout.on('resize', () => {
      void environment.exec.resize(processId, process.stdout.rows ?? 24, process.stdout.columns ?? 80).catch(() => undefined);
    });
  } else {
    process.on('SIGINT', () => void environment.exec.signal(processId, 'interrupt').catch(() => undefined));
  }
}
