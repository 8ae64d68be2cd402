// `cordon serve` without bubblewrap (issue #15 §5): it refuses to start, saying why and what to do,
// instead of starting and then refusing every request; an explicit :danger-full-access still runs.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { CLI, ROOT } from './cli-helpers.js';
import { tempDir } from './helpers.js';

/** Runs `cordon serve ...` with PATH limited to an empty directory (no bwrap); resolves at its URL or its exit. */
function serveWithoutBwrap(args: string[], emptyDir: string): Promise<{ code: number | null; stderr: string; url?: string; stop(): void }> {
  const child = spawn(process.execPath, [CLI, 'serve', '--listen', 'ws://127.0.0.1:0', '--log-level', 'warn', ...args], {
    cwd: ROOT,
    env: { PATH: emptyDir, HOME: emptyDir },
  });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => {
    child.stdout.on('data', (d) => {
      stdout += d;
      const m = /ws:\/\/\S+/.exec(stdout);
      if (m) resolve({ code: null, stderr, url: m[0], stop: () => void child.kill('SIGTERM') });
    });
    child.once('exit', (code) => resolve({ code, stderr, stop: () => undefined }));
  });
}

describe('cordon serve without bubblewrap', () => {
  it('refuses to start with a sandboxed ceiling, naming the cause, cordon doctor and the explicit way out', async () => {
    const scratch = await tempDir('cordon-nobwrap-');
    try {
      const r = await serveWithoutBwrap(['--permissions', ':workspace', '--workspace', scratch.dir], scratch.dir);
      r.stop();
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /cannot enforce the permissions ceiling :workspace: .*bubblewrap \(bwrap\) was not found/);
      assert.match(r.stderr, /cordon doctor/);
      assert.match(r.stderr, /--permissions :danger-full-access/);
      const ok = await serveWithoutBwrap(['--permissions', ':danger-full-access'], scratch.dir);
      ok.stop();
      assert.ok(ok.url, `starts without a ceiling when asked explicitly (${ok.stderr})`);
      assert.match(ok.stderr, /WARNING: no permissions ceiling/);
    } finally {
      await scratch.cleanup();
    }
  });
});
