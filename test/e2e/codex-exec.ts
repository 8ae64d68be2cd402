import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Runs `codex exec` with an isolated CODEX_HOME whose config points the model at the mock and
 * turns off everything that would reach the internet (update checks, analytics, feedback,
 * plugin/app syncing). The remote executor is chosen with CODEX_EXEC_SERVER_URL.
 */

export interface CodexExecOptions {
  bin: string;
  /** The CLI's own CODEX_HOME (created by the caller; config.toml is written here). */
  codexHome: string;
  /** The working directory (`-C`), on the executor. */
  cwd: string;
  modelUrl: string;
  execServerUrl: string;
  /** Extra `codex exec` arguments, e.g. `['--add-dir', DIR]`. */
  args?: string[];
  /** TOML appended to the CLI's config (after the fixed top-level keys). */
  extraConfig?: string;
  timeoutMs?: number;
  /** Rewrites the command line (e.g. to run the CLI inside a network namespace). */
  wrap?: (command: string, args: string[]) => string[];
}

export interface CodexExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

const MODEL_KEY_ENV = 'CORDON_E2E_MODEL_KEY';

export function cliConfig(modelUrl: string, extra = ''): string {
  return `model = "gpt-5.5"
model_provider = "mock"
approval_policy = "never"
check_for_update_on_startup = false

[model_providers.mock]
name = "mock"
base_url = ${JSON.stringify(modelUrl)}
wire_api = "responses"
env_key = "${MODEL_KEY_ENV}"
request_max_retries = 0
stream_max_retries = 0

[analytics]
enabled = false

[feedback]
enabled = false

[features]
plugins = false
remote_plugin = false
apps = false
tool_suggest = false
${extra}`;
}

export function runCodexExec(opts: CodexExecOptions): Promise<CodexExecResult> {
  writeFileSync(path.join(opts.codexHome, 'config.toml'), cliConfig(opts.modelUrl, opts.extraConfig));
  const args = [
    'exec',
    '--skip-git-repo-check',
    '--sandbox',
    'workspace-write',
    '-C',
    opts.cwd,
    ...(opts.args ?? []),
    'run the scripted tools',
  ];
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: process.env.HOME ?? opts.codexHome,
    CODEX_HOME: opts.codexHome,
    CODEX_EXEC_SERVER_URL: opts.execServerUrl,
    [MODEL_KEY_ENV]: 'not-a-real-key',
    RUST_LOG: process.env.CORDON_E2E_RUST_LOG ?? 'warn',
  };
  return new Promise((resolve) => {
    const [command, ...argv] = opts.wrap ? opts.wrap(opts.bin, args) : [opts.bin, ...args];
    const child = spawn(command!, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (output += d.toString('utf8')));
    const timer = setTimeout(() => {
      output += `\n[e2e: killed after ${opts.timeoutMs ?? 120_000} ms]`;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 120_000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output });
    });
  });
}
