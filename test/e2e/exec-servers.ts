import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../built-cli.js';
import { CLI } from '../cli-helpers.js';
import { findCodexBinary } from './codex-install.js';

/**
 * The exec-server the CLI talks to: Cordon (`cordon serve`, the built CLI) or, for comparing,
 * the reference `codex exec-server` of a given version. Each runs as its own process with its own
 * CODEX_HOME (the executor's Codex config, read by `environmentConfig/read`).
 */

export interface ExecServer {
  readonly url: string;
  /** Everything the server printed, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

export interface ExecServerOptions {
  /** The executor's CODEX_HOME. */
  codexHome: string;
  /** Roots of Cordon's ceiling (`--workspace`); the reference has no ceiling. */
  workspaces: string[];
  /** Scratch directory for the reference's sandbox helper link. */
  scratch: string;
  /** Extra `cordon serve` flags. */
  extraArgs?: string[];
}

function waitForUrl(child: ChildProcess, out: { text: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      out.text += chunk.toString('utf8');
      const m = /^(ws:\/\/127\.0\.0\.1:\d+)\s*$/m.exec(out.text);
      if (m) resolve(m[1]!);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`exec-server exited (${code}) before listening:\n${out.text}`)));
  });
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
    });
}

export async function startCordon(opts: ExecServerOptions): Promise<ExecServer> {
  const args = [CLI, 'serve', '--listen', 'ws://127.0.0.1:0', '--log-level', 'warn'];
  for (const w of opts.workspaces) args.push('--workspace', w);
  args.push(...(opts.extraArgs ?? []));
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, CODEX_HOME: opts.codexHome },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = { text: '' };
  const url = await waitForUrl(child, out);
  return { url, output: () => out.text, stop: stopper(child) };
}

export async function startReference(version: string, opts: ExecServerOptions): Promise<ExecServer> {
  const bin = findCodexBinary(version);
  if (!bin) throw new Error(`reference exec-server ${version} is not installed (test/e2e/install-codex.sh ${version})`);
  // The reference finds its sandbox helper as `codex-linux-sandbox` on PATH.
  const helperDir = path.join(opts.scratch, 'reference-bin');
  mkdirSync(helperDir, { recursive: true });
  symlinkSync(bin, path.join(helperDir, 'codex-linux-sandbox'));
  const child = spawn(bin, ['exec-server', '--listen', 'ws://127.0.0.1:0'], {
    env: { ...process.env, CODEX_HOME: opts.codexHome, PATH: `${helperDir}:${process.env.PATH ?? ''}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = { text: '' };
  const url = await waitForUrl(child, out);
  return { url, output: () => out.text, stop: stopper(child) };
}
