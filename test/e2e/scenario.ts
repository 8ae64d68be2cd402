import { mkdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type CodexExecResult, runCodexExec } from './codex-exec.js';
import { findCodexBinary } from './codex-install.js';
import { type ExecServer, startCordon, startReference } from './exec-servers.js';
import { exposeOnUnixSocket, jailedArgv, loopbackJailAvailable } from './loopback-jail.js';
import { type Json, type MockModel, startMockModel, type Turn } from './mock-model.js';
import { startWsTap, type WsTap } from './ws-tap.js';

/**
 * One end-to-end run: a scratch tree, an exec-server (Cordon, or the reference when
 * CORDON_E2E_SERVER=reference), a logging tap in front of it, the mock model, and one `codex exec`.
 *
 * The scratch tree lives under ~/.cache (not /tmp: the CLI's sandbox profile makes /tmp writable,
 * which would hide a refused write, and the reference will not set up its helper under /tmp).
 * Cordon's ceiling is the whole scratch tree, so a refusal inside it comes from the sandbox the
 * CLI asked for, not from the ceiling.
 */

export interface Dirs {
  base: string;
  /** The CLI's `-C` directory: the workspace. */
  workspace: string;
  /** A directory for `--add-dir`. */
  extra: string;
  /** Inside the ceiling, outside the CLI's writable roots. */
  outside: string;
  clientHome: string;
  executorHome: string;
}

export interface ScenarioSpec {
  /** Short slug; names the scratch directory (kept with CORDON_E2E_KEEP=1 for comparing wires). */
  name: string;
  cliVersion: string;
  turns: Turn[] | ((dirs: Dirs) => Turn[]);
  args?: (dirs: Dirs) => string[];
  /** TOML added to the CLI's config. */
  cliConfig?: (dirs: Dirs) => string;
  /** The executor's `$CODEX_HOME/config.toml`. */
  executorConfig?: (dirs: Dirs) => string;
  /** Extra `cordon serve` flags (the reference takes none). */
  cordonArgs?: string[];
  /** Arm the tap before the CLI starts (e.g. to drop a connection). */
  arm?: (tap: WsTap) => void;
}

export interface ScenarioRun {
  dirs: Dirs;
  result: CodexExecResult;
  mock: MockModel;
  tap: WsTap;
  server: ExecServer;
  /** Everything useful for an assertion message. */
  explain(): string;
}

/** The reference server version paired with each CLI (the newest with that CLI's protocol). */
const REFERENCE_FOR_CLI: Record<string, string> = { '0.139.0': '0.141.0', '0.171.0': '0.171.0' };

export function serverKind(): 'cordon' | 'reference' {
  return process.env.CORDON_E2E_SERVER === 'reference' ? 'reference' : 'cordon';
}

/**
 * Whether the CLI runs in a loopback-only network namespace: always when the machine allows it,
 * unless CORDON_E2E_NO_JAIL is set. On a machine without user namespaces it runs unconfined; the
 * config still turns off everything that would go out.
 */
export function jailed(): boolean {
  return !process.env.CORDON_E2E_NO_JAIL && loopbackJailAvailable();
}

export function scratchRoot(): string {
  return process.env.CORDON_E2E_SCRATCH ?? path.join(os.homedir(), '.cache', 'cordon-e2e');
}

export async function withScenario(spec: ScenarioSpec, check: (run: ScenarioRun) => Promise<void> | void): Promise<void> {
  const bin = findCodexBinary(spec.cliVersion);
  if (!bin) throw new Error(`Codex CLI ${spec.cliVersion} is not installed`);
  mkdirSync(scratchRoot(), { recursive: true });
  const base = await mkdtemp(path.join(scratchRoot(), `${serverKind()}-${spec.cliVersion}-${spec.name}-`));
  const dirs: Dirs = {
    base,
    workspace: path.join(base, 'workspace'),
    extra: path.join(base, 'extra'),
    outside: path.join(base, 'outside'),
    clientHome: path.join(base, 'client-home'),
    executorHome: path.join(base, 'executor-home'),
  };
  for (const d of [dirs.workspace, dirs.extra, dirs.outside, dirs.clientHome, dirs.executorHome]) mkdirSync(d);
  if (spec.executorConfig) await writeFile(path.join(dirs.executorHome, 'config.toml'), spec.executorConfig(dirs));

  const cleanups: (() => Promise<void>)[] = [];
  try {
    const serverOpts = { codexHome: dirs.executorHome, workspaces: [base], scratch: base, extraArgs: spec.cordonArgs ?? [] };
    const server =
      serverKind() === 'reference'
        ? await startReference(REFERENCE_FOR_CLI[spec.cliVersion] ?? spec.cliVersion, serverOpts)
        : await startCordon(serverOpts);
    cleanups.push(server.stop);
    const tap = await startWsTap(server.url);
    cleanups.push(tap.close);
    const turns = typeof spec.turns === 'function' ? spec.turns(dirs) : spec.turns;
    const mock = await startMockModel(turns);
    cleanups.push(mock.close);
    spec.arm?.(tap);
    let wrap: ((command: string, args: string[]) => string[]) | undefined;
    if (jailed()) {
      const forwards = [
        { port: Number(new URL(mock.url).port), socket: path.join(base, 'model.sock') },
        { port: Number(new URL(tap.url).port), socket: path.join(base, 'exec.sock') },
      ];
      for (const f of forwards) cleanups.push(await exposeOnUnixSocket(f.port, f.socket));
      wrap = (command, args) => jailedArgv(forwards, command, args);
    }
    const result = await runCodexExec({
      wrap,
      bin,
      codexHome: dirs.clientHome,
      cwd: dirs.workspace,
      modelUrl: mock.url,
      execServerUrl: tap.url,
      args: spec.args?.(dirs),
      extraConfig: spec.cliConfig?.(dirs),
    });
    const explain = (): string =>
      [
        `codex exec ${spec.cliVersion}${wrap ? ' (loopback-only netns)' : ''} against ${serverKind()} exited ${result.code ?? result.signal}`,
        // The CLI's own warnings and errors first: a failure report may keep only the head.
        `--- CLI warnings ---\n${
          result.output
            .split('\n')
            .filter((l) => /\b(WARN|ERROR)\b/.test(l))
            .join('\n')
            .slice(0, 3000) || '(none)'
        }`,
        `--- CLI output (tail) ---\n${result.output.slice(-3000)}`,
        `--- model saw ---\n${JSON.stringify(toolOutputs(mock.requests), null, 1).slice(0, 3000)}`,
        `--- wire (tail) ---\n${tap.transcript().slice(-6000)}`,
        `--- server output (tail) ---\n${server.output().slice(-2000)}`,
      ].join('\n');
    if (process.env.CORDON_E2E_KEEP) {
      await writeFile(path.join(base, 'model-requests.json'), JSON.stringify(mock.requests, null, 1));
      await writeFile(path.join(base, 'wire.log'), tap.transcript());
      await writeFile(path.join(base, 'cli-output.txt'), result.output);
    }
    await check({ dirs, result, mock, tap, server, explain });
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    if (!process.env.CORDON_E2E_KEEP) await rm(base, { recursive: true, force: true });
  }
}

/** The tool outputs the CLI sent back to the model, by call id. */
export function toolOutputs(requests: Json[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const body of requests) {
    for (const item of (body.input ?? []) as Json[]) {
      if (typeof item.type === 'string' && item.type.endsWith('_output')) out[String(item.call_id)] = item.output;
    }
  }
  return out;
}
