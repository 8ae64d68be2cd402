import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FsEntry } from '../src/environment/permissions.js';
import type { FileMetadata, FsCallOptions } from '../src/environment/types.js';
import { holdsCapabilities } from '../src/local/direct-read.js';
import type { LocalEnvironment } from '../src/local/local-environment.js';
import { sandboxedFs, tempDir } from './helpers.js';

const special = (kind: 'root' | 'project_roots', access: FsEntry['access'], subpath?: string): FsEntry => ({
  path: { type: 'special', kind, ...(subpath ? { subpath } : {}) },
  access,
});

type Answer = { metadata: FileMetadata } | { error: string };

/**
 * fs/getMetadata answered in the server (direct-read.ts) against the sandboxed worker's answer for
 * the same path. The worker's twin is the same policy plus a deny entry on an unrelated path, which
 * sends every call to the worker. Each path is asked both ways; the pool's calls show which way the
 * permissive call went. An answer given in the server must be the worker's; a path the sandbox sees
 * differently (its own /proc, a file that has no name any more) must go to the worker.
 */
describe('getMetadata in the server gives the worker answer', () => {
  let fixture: ReturnType<typeof sandboxedFs>;
  let env: LocalEnvironment;
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let ws: string;
  let goneFd: number;
  const policy = (extra: FsEntry[]): FsCallOptions => ({
    sandbox: {
      profile: {
        enforcement: 'managed',
        network: 'restricted',
        fileSystem: { kind: 'restricted', entries: [special('root', 'read'), special('project_roots', 'write'), ...extra] },
      },
      cwd: ws,
    },
  });
  let permissive: FsCallOptions;
  let viaWorker: FsCallOptions;

  const ask = async (p: string, options: FsCallOptions): Promise<{ answer: Answer; worker: boolean }> => {
    const before = fixture.workerCalls();
    try {
      const metadata = await env.fs.getMetadata(p, options);
      return { answer: { metadata }, worker: fixture.workerCalls() > before };
    } catch (err) {
      return { answer: { error: (err as Error).message }, worker: fixture.workerCalls() > before };
    }
  };

  before(async () => {
    fixture = sandboxedFs();
    env = fixture.env;
    tmp = await tempDir('cordon-direct-meta-');
    ws = path.join(tmp.dir, 'ws');
    mkdirSync(path.join(ws, 'sub'), { recursive: true });
    writeFileSync(path.join(ws, 'file.txt'), 'twelve bytes');
    writeFileSync(path.join(ws, 'named (deleted)'), 'x');
    symlinkSync(path.join(ws, 'file.txt'), path.join(ws, 'sub', 'link'));
    symlinkSync(path.join(ws, 'missing'), path.join(ws, 'broken'));
    symlinkSync('/proc/self', path.join(ws, 'proc-self'));
    symlinkSync('/proc/self/environ', path.join(ws, 'environ-link'));
    writeFileSync(path.join(tmp.dir, 'gone.txt'), 'GONE');
    goneFd = openSync(path.join(tmp.dir, 'gone.txt'), 'r');
    unlinkSync(path.join(tmp.dir, 'gone.txt'));
    symlinkSync(`/proc/${process.pid}/fd/${goneFd}`, path.join(ws, 'fd-link'));
    // The deleted file's own name as the kernel writes it: a link of that name leads to the magic link.
    symlinkSync(path.join(ws, 'fd-link'), path.join(tmp.dir, 'gone.txt (deleted)'));
    if (holdsCapabilities()) execFileSync('mknod', [path.join(ws, 'null-dev'), 'c', '1', '3']);
    permissive = policy([]);
    viaWorker = policy([{ path: { type: 'path', path: path.join(tmp.dir, 'unrelated') }, access: 'deny' }]);
  });
  after(async () => {
    closeSync(goneFd);
    await fixture.close();
    await tmp.cleanup();
  });

  it('ordinary paths are answered in the server, as the worker answers them', async () => {
    // Answered here: the canonical forms, and names that only look unusual. The others may go either
    // way (a broken link or a missing name under root's capabilities are left to the worker).
    const here = ['file.txt', 'sub', 'sub/link', 'named (deleted)', 'sub/../file.txt', 'sub/'];
    for (const rel of [...here, 'broken', 'missing', 'sub/link/']) {
      const p = path.join(ws, rel) + (rel.endsWith('/') ? '/' : '');
      const direct = await ask(p, permissive);
      const worker = await ask(p, viaWorker);
      assert.ok(worker.worker, `${rel}: the twin went to the worker`);
      if (here.includes(rel)) assert.equal(direct.worker, false, `${rel}: not answered in the server`);
      assert.deepEqual(direct.answer, worker.answer, rel);
    }
  });

  it('a name missing several levels deep is answered in the server, unless a directory above needs capabilities to search', async () => {
    // Codex probes `.agents/skills` in every project at every turn; most projects have no `.agents`.
    const here = ['.agents/skills', 'no/such/dir/file', 'sub/none/deeper'];
    // Only root can search `locked` (mode 000): the sandbox, without capabilities, is refused there.
    const locked = path.join(ws, 'locked');
    mkdirSync(locked, { mode: 0o000 });
    try {
      const needsWorker = holdsCapabilities() ? ['locked/none/deeper'] : [];
      for (const rel of [...here, ...needsWorker]) {
        const direct = await ask(path.join(ws, rel), permissive);
        const worker = await ask(path.join(ws, rel), viaWorker);
        assert.ok(worker.worker, `${rel}: the twin went to the worker`);
        assert.equal(
          direct.worker,
          needsWorker.includes(rel),
          `${rel}: ${direct.worker ? 'went to the worker' : 'answered in the server'}`,
        );
        assert.deepEqual(direct.answer, worker.answer, rel);
        if (needsWorker.includes(rel)) assert.match(JSON.stringify(direct.answer), /Permission denied/, rel);
        else assert.match(JSON.stringify(direct.answer), /No such file or directory/, rel);
      }
    } finally {
      execFileSync('rmdir', [locked]);
    }
  });

  it("what the sandbox sees differently goes to the worker: its own /proc, a deleted file's magic link, device nodes", async () => {
    const traps = [
      path.join(ws, 'environ-link'),
      path.join(ws, 'proc-self', 'environ'),
      path.join(ws, 'proc-self', 'fd', String(goneFd)),
      path.join(ws, 'fd-link'),
      path.join(tmp.dir, 'gone.txt (deleted)'),
      ...(holdsCapabilities() ? [path.join(ws, 'null-dev')] : []),
    ];
    for (const p of traps) {
      // Not compared with the twin's answer: each policy has its own worker, whose /proc is its own.
      const direct = await ask(p, permissive);
      assert.ok(direct.worker, `${p} was answered in the server: ${JSON.stringify(direct.answer)}`);
    }
    // The twin: the same links without any sandbox reach the server's own objects.
    assert.ok((await env.fs.getMetadata(path.join(ws, 'fd-link'))).isSymlink);
  });
});
