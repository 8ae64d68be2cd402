import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { builtCli, ROOT } from './built-cli.js';

// The CLI reads these; a developer's own settings must not point the tests at their server.
delete process.env.CORDON_URL;
delete process.env.CORDON_TOKEN;

export { ROOT };
/** The built CLI (dist/, rebuilt first when stale): run it as `node CLI args...`. */
export const CLI = builtCli();

/** Runs the CLI with `args` and `input` on stdin. */
export function cordon(args: string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.stdin.end(input ?? '');
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** `cordon serve` with `args`; resolves with its URL once it listens. */
export function serve(args: string[], env: Record<string, string> = {}): Promise<{ child: ChildProcessWithoutNullStreams; url: string }> {
  const child = spawn(process.execPath, [CLI, 'serve', '--log-level', 'warn', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /ws:\/\/\S+/.exec(out);
      if (m) resolve({ child, url: m[0] });
    });
    child.once('exit', (code) => reject(new Error(`serve exited early with ${code}`)));
  });
}

/** Runs a bash script with `$CORDON` set to the CLI; killed (and failing) after `timeoutMs`. */
export function bash(
  script: string,
  env: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], {
      cwd: ROOT,
      env: { ...process.env, CORDON: `${process.execPath} ${CLI}`, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`timed out: ${script}\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs the scripts at once (each scenario is independent); stdout and stderr joined in the scripts' order. */
export async function bashAll(scripts: string[], env: Record<string, string> = {}): Promise<{ stdout: string; stderr: string }> {
  const results = await Promise.all(scripts.map((script) => bash(script, env, 90_000)));
  return { stdout: results.map((r) => r.stdout).join(''), stderr: results.map((r) => r.stderr).join('') };
}
