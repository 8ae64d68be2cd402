// No trace left (issue #15 §5): what Cordon creates for its own mechanics (bwrap mount targets,
// its private directory) does not appear outside the project roots, and is gone after the sandbox,
// also after kill -9 of the server.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { FsEntry, PermissionProfile } from '../src/environment/permissions.js';
import { eventually, isAlive, RawClient, SH_ENV, startServerProcess, tempDir } from './helpers.js';

const NAMES = ['.git', '.codex', '.agents', '.cordon'];
const present = (dir: string): string[] => NAMES.filter((n) => existsSync(path.join(dir, n)));
const privateDirsOf = (pid: number): string[] => readdirSync(tmpdir()).filter((n) => n.startsWith(`cordon-sandbox-${pid}-`));

function profile(shared: string): PermissionProfile {
  const entries: FsEntry[] = [
    { path: { type: 'special', kind: 'root' }, access: 'read' },
    { path: { type: 'special', kind: 'project_roots' }, access: 'write' },
    { path: { type: 'path', path: shared }, access: 'write' },
  ];
  return { enforcement: 'managed', network: 'restricted', fileSystem: { kind: 'restricted', entries } };
}

describe('sandbox: no trace left', {
  skip: !existsSync('/usr/bin/bwrap') && !process.env.CI ? 'bubblewrap is not installed' : false,
}, () => {
  it('masks missing protected names only in the project root, and nothing remains after kill -9 of the server', async () => {
    const scratch = await tempDir('cordon-trace-');
    const ws = path.join(scratch.dir, 'ws');
    const shared = path.join(scratch.dir, 'shared'); // a writable root that is not a project root, like /tmp
    mkdirSync(ws);
    mkdirSync(shared);
    const ceiling = { profile: profile(shared), cwd: ws, workspaceRoots: [ws], name: 'test' };
    const server = await startServerProcess({ environment: { ceiling } });
    const serverPid = server.child.pid as number;
    let sleeper = 0;
    try {
      const { client } = await RawClient.ready(server.url);
      const probe =
        'mkdir .git/hooks 2>/dev/null && echo made-hooks; mkdir .codex/x 2>/dev/null && echo made-codex; echo ok > inside.txt && echo wrote';
      const res = await client.request('process/start', {
        processId: 'p',
        argv: ['sh', '-c', `${probe}; echo $$; exec sleep 600`],
        cwd: ws,
        env: SH_ENV,
        tty: false,
      });
      assert.equal(res.error, undefined, JSON.stringify(res.error));
      assert.notEqual(res.result.sandboxType, 'none');
      let out = '';
      await eventually(
        () => {
          out = client.received
            .filter((m) => m.method === 'process/output')
            .map((m) => Buffer.from(m.params.chunk, 'base64').toString())
            .join('');
          return /\d+\n$/.test(out);
        },
        30_000,
        'the sandboxed command to start',
      );
      // The protection holds: missing metadata cannot be created in the project root; writing works.
      assert.doesNotMatch(out, /made-hooks|made-codex/);
      assert.match(out, /wrote/);
      // Nothing appears in a writable root that is not a project root, while the sandbox lives.
      assert.deepEqual(present(shared), []);
      // The documented exception: the masks' empty, read-only targets exist in the project root meanwhile.
      assert.ok(present(ws).length > 0, 'the project root is masked');
      assert.equal(privateDirsOf(serverPid).length, 1, "the server's private directory");
      sleeper = Number(readdirSync('/proc').find((e) => /^\d+$/.test(e) && procCwdIsSleep(e, ws)) ?? 0);
      server.child.kill('SIGKILL');
      await server.stop();
      if (sleeper) await eventually(() => !isAlive(sleeper), 30_000, 'the sandbox to die with the server');
      // The next server to start sweeps what the killed one left: the targets and its private directory.
      const next = await startServerProcess({ environment: { ceiling } });
      try {
        const c2 = (await RawClient.ready(next.url)).client;
        const r2 = await c2.request('process/start', { processId: 'q', argv: ['true'], cwd: ws, env: SH_ENV, tty: false });
        assert.equal(r2.error, undefined);
        await c2.untilClosed('q', 30_000);
        assert.deepEqual(privateDirsOf(serverPid), [], "the killed server's private directory is gone");
        await eventually(() => present(ws).length === 0, 10_000, `no mount target left in the project root (${present(ws).join(' ')})`);
        assert.deepEqual(present(shared), []);
        c2.close();
      } finally {
        await next.stop();
      }
      assert.deepEqual(present(ws), []);
      assert.deepEqual(privateDirsOf(next.child.pid as number), [], 'a server that ends normally leaves no private directory');
    } finally {
      server.child.kill('SIGKILL');
      if (sleeper && isAlive(sleeper)) process.kill(sleeper, 'SIGKILL');
      await scratch.cleanup();
    }
  });
});

function procCwdIsSleep(pid: string, dir: string): boolean {
  try {
    return readlinkSync(`/proc/${pid}/cwd`) === dir && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep';
  } catch {
    return false;
  }
}
