import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface RunningServer {
  name: string;
  url: string;
  pid: number;
  stop(): Promise<void>;
}

function waitForUrl(child: ChildProcess, name: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout?.on('data', (d) => {
      out += d;
      const m = /ws:\/\/[^\s]+/.exec(out);
      if (m) resolve(m[0]);
    });
    child.stderr?.on('data', (d) => (err += d));
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code} before listening: ${err.slice(-2000)}`)));
  });
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 3000).unref();
    });
}

/**
 * Starts the built Cordon server (dist/) on a free loopback port: with no ceiling
 * (`--permissions :danger-full-access`, like the reference), or, given `workspace`, as users run it:
 * `cordon serve` with its default `:workspace` ceiling, started in that directory.
 */
export async function startCordon(workspace?: string): Promise<RunningServer> {
  const main = path.join(ROOT, 'dist', 'cli', 'main.js');
  if (!existsSync(main)) throw new Error('dist/ is missing: run `npm run build` first');
  const ceiling = workspace ? [] : ['--permissions', ':danger-full-access'];
  const child = spawn(process.execPath, [main, 'serve', '--listen', 'ws://127.0.0.1:0', '--log-level', 'warn', ...ceiling], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(workspace ? { cwd: workspace } : {}),
  });
  const name = workspace ? 'cordon-default' : 'cordon';
  const url = await waitForUrl(child, name);
  return { name, url, pid: child.pid as number, stop: stopper(child) };
}

/**
 * Installs (once) and starts the reference `codex exec-server` of npm @openai/codex VERSION, the way
 * ../shared/reference/install.sh does; uses that script when it is present.
 */
export function installReference(version: string): string {
  const script = path.resolve(ROOT, '..', 'shared', 'reference', 'install.sh');
  if (existsSync(script)) return execFileSync('bash', [script, version], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  const dir = path.join(process.env.CORDON_REFERENCE_DIR ?? path.join(homedir(), '.cache', 'cordon-reference'), version);
  const find = (): string =>
    execFileSync('bash', ['-c', `find "${dir}/node_modules" -path '*linux-x64*' -name codex -type f -size +1M 2>/dev/null | head -n 1`], {
      encoding: 'utf8',
    }).trim();
  let bin = existsSync(dir) ? find() : '';
  if (!bin) {
    mkdirSync(dir, { recursive: true });
    if (!existsSync(path.join(dir, 'package.json'))) writeFileSync(path.join(dir, 'package.json'), '{"private":true}');
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--silent', `@openai/codex@${version}`], { cwd: dir, stdio: 'inherit' });
    bin = find();
  }
  if (!bin) throw new Error(`reference install failed: no codex binary under ${dir}`);
  mkdirSync(path.join(dir, 'bin'), { recursive: true });
  execFileSync('ln', ['-sf', bin, path.join(dir, 'bin', 'codex-linux-sandbox')]);
  return bin;
}

export async function startReference(bin: string, name = 'reference'): Promise<RunningServer> {
  const home = path.join(process.env.CORDON_REFERENCE_DIR ?? path.join(homedir(), '.cache', 'cordon-reference'), 'home');
  mkdirSync(home, { recursive: true });
  const env = { ...process.env, CODEX_HOME: home, PATH: `${path.join(path.dirname(path.dirname(bin)), 'bin')}:${process.env.PATH ?? ''}` };
  const child = spawn(bin, ['exec-server', '--listen', 'ws://127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'], env });
  const url = await waitForUrl(child, name);
  return { name, url, pid: child.pid as number, stop: stopper(child) };
}

/** Resident set size of a process, in bytes. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}
