import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RemoteEnvironment } from '../src/client/remote-environment.js';
import type { FsEntry, SandboxRequest } from '../src/environment/permissions.js';
import type { FsCallOptions } from '../src/environment/types.js';
import { LocalEnvironment } from '../src/local/local-environment.js';
import { RpcError } from '../src/protocol/errors.js';
import { builtinProfile } from '../src/sandbox/builtin-profiles.js';
import { FsWorkerPool } from '../src/sandbox/fs-worker-pool.js';
import { LinuxSandbox } from '../src/sandbox/linux-sandbox.js';
import type { CordonServer } from '../src/server/index.js';
import { eventually, isAlive, RawClient, SH_ENV, startServer, tempDir } from './helpers.js';

const special = (kind: 'root' | 'project_roots', access: FsEntry['access'], subpath?: string): FsEntry => ({
  path: { type: 'special', kind, ...(subpath ? { subpath } : {}) },
  access,
});
const exact = (p: string, access: FsEntry['access']): FsEntry => ({ path: { type: 'path', path: p }, access });

const refused = async (promise: Promise<unknown>, codes = [-32600, -32603, -32004]): Promise<RpcError> => {
  let error: unknown;
  try {
    await promise;
  } catch (err) {
    error = err;
  }
  assert.ok(error instanceof RpcError, `expected a refusal, got ${error === undefined ? 'success' : String(error)}`);
  assert.ok(codes.includes(error.code), `${error.code} ${error.message}`);
  return error;
};

/** The fs escape suite: every fs method under a restricting sandbox tries to get out, next to the allowed operation that works. */
describe('sandboxed file operations: escape suite', () => {
  let env: LocalEnvironment;
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let ws: string;
  let outside: string;
  let sb: FsCallOptions;

  before(async () => {
    env = new LocalEnvironment();
    tmp = await tempDir('cordon-fs-escape-');
    ws = path.join(tmp.dir, 'ws');
    outside = path.join(tmp.dir, 'outside');
    mkdirSync(path.join(ws, '.git', 'hooks'), { recursive: true });
    mkdirSync(path.join(ws, 'private'), { recursive: true });
    mkdirSync(path.join(ws, 'sub'), { recursive: true });
    mkdirSync(outside, { recursive: true });
    writeFileSync(path.join(ws, 'secret.txt'), 'SECRET');
    writeFileSync(path.join(ws, 'private', 'key'), 'KEY');
    writeFileSync(path.join(ws, 'ok.txt'), 'OK');
    writeFileSync(path.join(ws, '.git', 'config'), '[core]\n');
    writeFileSync(path.join(outside, 'host.txt'), 'HOST');
    symlinkSync(path.join(ws, 'secret.txt'), path.join(ws, 'sub', 'link-to-secret'));
    const request: SandboxRequest = {
      profile: {
        enforcement: 'managed',
        network: 'restricted',
        fileSystem: {
          kind: 'restricted',
          entries: [
            special('root', 'read'),
            special('project_roots', 'write'),
            exact(path.join(ws, 'secret.txt'), 'deny'),
            exact(path.join(ws, 'private'), 'deny'),
          ],
        },
      },
      cwd: ws,
    };
    sb = { sandbox: request };
  });
  after(async () => {
    await env.close();
    for (const name of ['.codex', '.agents', '.cordon'])
      assert.equal(existsSync(path.join(ws, name)), false, `${name} mount target removed once the worker stopped`);
    await tmp.cleanup();
  });

  it('writeFile / createDirectory / copy / rename / remove outside the roots are refused; inside they work', async () => {
    await refused(env.fs.writeFile(path.join(outside, 'w.txt'), Buffer.from('x'), sb));
    await refused(env.fs.createDirectory(path.join(outside, 'd'), {}, sb));
    await refused(env.fs.copy(path.join(ws, 'ok.txt'), path.join(outside, 'copied.txt'), { recursive: false }, sb));
    await refused(env.fs.rename(path.join(outside, 'host.txt'), path.join(outside, 'moved.txt'), sb));
    await refused(env.fs.remove(path.join(outside, 'host.txt'), {}, sb));
    assert.deepEqual(readFileSync(path.join(outside, 'host.txt'), 'utf8'), 'HOST');
    assert.equal(
      existsSync(path.join(outside, 'w.txt')) || existsSync(path.join(outside, 'd')) || existsSync(path.join(outside, 'copied.txt')),
      false,
    );
    await env.fs.writeFile(path.join(ws, 'new.txt'), Buffer.from('NEW'), sb);
    await env.fs.createDirectory(path.join(ws, 'made', 'deep'), {}, sb);
    await env.fs.copy(path.join(ws, 'ok.txt'), path.join(ws, 'copy.txt'), { recursive: false }, sb);
    await env.fs.rename(path.join(ws, 'copy.txt'), path.join(ws, 'renamed.txt'), sb);
    await env.fs.remove(path.join(ws, 'made'), {}, sb);
    assert.equal(readFileSync(path.join(ws, 'renamed.txt'), 'utf8'), 'OK');
    assert.equal(existsSync(path.join(ws, 'made')), false);
  });

  it('reading a denied file is refused directly, via a symlink, via .., and via /proc/self/root; a normal read works', async () => {
    const secret = path.join(ws, 'secret.txt');
    for (const attempt of [secret, path.join(ws, 'sub', 'link-to-secret'), `${ws}/sub/../secret.txt`, `/proc/self/root${secret}`]) {
      const err = await refused(env.fs.readFile(attempt, sb));
      assert.ok(!err.message.includes('SECRET'));
    }
    await refused(env.fs.readDirectory(path.join(ws, 'private'), sb));
    await refused(env.fs.readFile(path.join(ws, 'private', 'key'), sb));
    assert.equal((await env.fs.readFile(path.join(ws, 'ok.txt'), sb)).toString(), 'OK');
    assert.ok((await env.fs.readDirectory(ws, sb)).some((e) => e.fileName === 'ok.txt'));
  });

  it('copying a denied file into the workspace is refused and copies nothing', async () => {
    await refused(env.fs.copy(path.join(ws, 'secret.txt'), path.join(ws, 'stolen.txt'), { recursive: false }, sb));
    assert.ok(!existsSync(path.join(ws, 'stolen.txt')) || readFileSync(path.join(ws, 'stolen.txt'), 'utf8') === '');
    await refused(env.fs.copy(path.join(ws, 'private'), path.join(ws, 'stolen-dir'), { recursive: true }, sb));
    assert.ok(!existsSync(path.join(ws, 'stolen-dir', 'key')));
  });

  it('writing into, renaming into or removing protected metadata is refused', async () => {
    await refused(env.fs.writeFile(path.join(ws, '.git', 'hooks', 'pre-commit'), Buffer.from('evil'), sb));
    await refused(env.fs.writeFile(path.join(ws, '.git', 'config'), Buffer.from('evil'), sb));
    await refused(env.fs.rename(path.join(ws, 'ok.txt'), path.join(ws, '.git', 'hooks', 'post-checkout'), sb));
    await refused(env.fs.writeFile(path.join(ws, '.codex', 'config.toml'), Buffer.from('evil'), sb));
    await refused(env.fs.createDirectory(path.join(ws, '.agents', 'skills'), {}, sb));
    await refused(env.fs.remove(path.join(ws, '.git'), {}, sb));
    assert.equal(readFileSync(path.join(ws, '.git', 'config'), 'utf8'), '[core]\n');
    assert.equal(existsSync(path.join(ws, '.git', 'hooks', 'pre-commit')), false);
    assert.equal(existsSync(path.join(ws, '.codex', 'config.toml')), false);
    assert.equal(existsSync(path.join(ws, '.agents', 'skills')), false);
    assert.equal(existsSync(path.join(ws, 'ok.txt')), true, 'the rename source is intact');
  });

  it('chunked access and watches honour the sandbox', async () => {
    await refused(env.fs.open(path.join(outside, 'chunked.bin'), 'write', sb));
    await refused(env.fs.open(path.join(ws, 'secret.txt'), 'read', sb));
    const h = await env.fs.open(path.join(ws, 'chunked.bin'), 'write', sb);
    await env.fs.writeBlock(h, 0, Buffer.from('hello '));
    await env.fs.writeBlock(h, 6, Buffer.from('blocks'));
    await env.fs.close(h);
    const r = await env.fs.open(path.join(ws, 'chunked.bin'), 'read', sb);
    assert.deepEqual(await env.fs.readBlock(r, 0, 100), { data: Buffer.from('hello blocks'), eof: true });
    await env.fs.close(r);
    await refused(env.fs.watch(path.join(ws, 'private'), { recursive: true }, sb));
    const changes: string[] = [];
    const off = env.fs.subscribeChanges((c) => changes.push(`${c.kind}:${path.basename(c.path)}`));
    const watchId = await env.fs.watch(ws, { recursive: false }, sb);
    writeFileSync(path.join(ws, 'watched.txt'), 'x');
    await eventually(() => changes.includes('created:watched.txt'), 5000, 'a change seen from inside the sandbox');
    await env.fs.unwatch(watchId);
    off();
  });
});

describe('mount targets shared by sandboxes', () => {
  it('a sandbox started while the last one using a mount target is released keeps it, and it is removed after', async () => {
    const sandbox = new LinuxSandbox({ searchPath: process.env.PATH, tmpdir: undefined, maxGlobMatches: 8192 });
    const tmp = await tempDir('cordon-targets-');
    const profile = {
      enforcement: 'managed' as const,
      network: 'restricted' as const,
      fileSystem: { kind: 'restricted' as const, entries: [special('root', 'read'), special('project_roots', 'write')] },
    };
    const launch = (script: string) =>
      sandbox.wrap({ profile, policyCwd: tmp.dir, commandCwd: tmp.dir, command: ['/bin/sh', '-c', script], tty: false });
    const run = (cmd: {
      file: string;
      args: string[];
      env: Record<string, string>;
      fd3?: string;
    }): Promise<{ code: number | null; err: string }> =>
      new Promise((resolve) => {
        const fd3 = cmd.fd3 === undefined ? [] : [openSync(cmd.fd3, 'r')];
        const child = spawn(cmd.file, cmd.args, { env: { ...SH_ENV, ...cmd.env }, stdio: ['ignore', 'ignore', 'pipe', ...fd3] });
        for (const fd of fd3) closeSync(fd);
        let err = '';
        child.stderr?.on('data', (d) => (err += d));
        child.on('close', (code) => resolve({ code, err }));
      });
    try {
      for (let round = 0; round < 5; round++) {
        const first = await launch('true');
        assert.equal((await run(first)).code, 0);
        assert.ok(existsSync(path.join(tmp.dir, '.agents')), 'bwrap made the mount target');
        // The first sandbox is released while the next one is being set up.
        const released = first.cleanup();
        const second = await launch('test -d .agents');
        await released;
        const result = await run(second);
        assert.equal(result.code, 0, `the second sandbox lost its mount target: ${result.err}`);
        await second.cleanup();
        for (const name of ['.codex', '.agents', '.cordon'])
          assert.equal(existsSync(path.join(tmp.dir, name)), false, `${name} left behind (round ${round})`);
      }
    } finally {
      sandbox.dispose();
      await tmp.cleanup();
    }
  });
});

describe('the fs worker pool', () => {
  it('reuses a warm worker, stops idle ones, replaces a crashed one, and bounds their number', async () => {
    const sandbox = new LinuxSandbox({ searchPath: process.env.PATH, tmpdir: undefined, maxGlobMatches: 8192 });
    const pool = new FsWorkerPool({ sandbox, maxWorkers: 2, idleMs: 400, serverEnv: process.env });
    const env = new LocalEnvironment({ sandbox, fsWorkers: pool });
    const tmp = await tempDir('cordon-pool-');
    try {
      // The deny entry keeps these reads in a worker (a policy that permits every read is answered in the server).
      const req = (extra: FsEntry[] = []): FsCallOptions => ({
        sandbox: {
          profile: {
            enforcement: 'managed',
            network: 'restricted',
            fileSystem: {
              kind: 'restricted',
              entries: [special('root', 'read'), special('project_roots', 'write'), exact(path.join(tmp.dir, 'never'), 'deny'), ...extra],
            },
          },
          cwd: tmp.dir,
        },
      });
      writeFileSync(path.join(tmp.dir, 'f'), 'x');
      await env.fs.getMetadata(path.join(tmp.dir, 'f'), req());
      const first = pool.list()[0];
      assert.ok(first?.pid);
      for (let i = 0; i < 20; i++) await env.fs.getMetadata(path.join(tmp.dir, 'f'), req());
      assert.equal(pool.size, 1);
      assert.equal(pool.list()[0], first, 'the same worker served every call');

      // Crash mid-request: a request in flight fails clearly; the next call gets a new worker.
      const slow = env.fs.readFile('/dev/zero', req()).catch((e: unknown) => e);
      await eventually(() => first.busy, 10_000, 'the read to reach the worker');
      process.kill(first.pid as number, 'SIGKILL');
      const failure = await slow;
      assert.ok(failure instanceof RpcError && /fs sandbox helper failed/.test(failure.message), String(failure));
      await env.fs.getMetadata(path.join(tmp.dir, 'f'), req());
      assert.notEqual(pool.list()[0], first, 'replaced');

      // Many distinct profiles: bounded by maxWorkers, each still correct.
      for (let i = 0; i < 5; i++) {
        const denied = path.join(tmp.dir, `d${i}`);
        writeFileSync(denied, 'secret');
        await refused(env.fs.readFile(denied, req([exact(denied, 'deny')])));
        assert.ok(pool.size <= 2, `pool size ${pool.size}`);
      }
      const pids = pool.list().map((w) => w.pid as number);
      await eventually(() => pool.size === 0, 5000, 'idle workers to stop');
      await eventually(() => pids.every((p) => !isAlive(p)), 5000, 'idle worker processes to exit');
    } finally {
      await env.close();
      await pool.dispose();
      sandbox.dispose();
      await tmp.cleanup();
    }
  });
});

describe("the operator's ceiling", () => {
  let server: CordonServer;
  let url: string;
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let ws: string;
  before(async () => {
    // Not under /tmp: the :workspace ceiling lets everyone write /tmp.
    const dir = await (await import('node:fs/promises')).mkdtemp('/var/tmp/cordon-ceiling-');
    tmp = { dir, cleanup: () => import('node:fs/promises').then((m) => m.rm(dir, { recursive: true, force: true })) };
    ws = path.join(tmp.dir, 'ws');
    mkdirSync(ws);
    writeFileSync(path.join(tmp.dir, 'outside.txt'), 'OUTSIDE');
    ({ server, url } = await startServer({
      environment: { ceiling: { profile: builtinProfile(':workspace'), cwd: ws, workspaceRoots: [ws], name: ':workspace' } },
    }));
  });
  after(async () => {
    await server.close();
    await tmp.cleanup();
  });

  it('a client asking for no sandbox cannot write outside the workspace; inside works', async () => {
    const env = await RemoteEnvironment.connect({ url });
    try {
      await refused(env.fs.writeFile(path.join(tmp.dir, 'escape.txt'), Buffer.from('x')));
      assert.equal(existsSync(path.join(tmp.dir, 'escape.txt')), false);
      await env.fs.writeFile(path.join(ws, 'inside.txt'), Buffer.from('in'));
      assert.equal(readFileSync(path.join(ws, 'inside.txt'), 'utf8'), 'in');
      assert.equal((await env.fs.readFile(path.join(tmp.dir, 'outside.txt'))).toString(), 'OUTSIDE', 'reads outside are within :workspace');
      const { client: c } = await RawClient.ready(url);
      const started = await c.request('process/start', {
        processId: 'p',
        argv: ['sh', '-c', `echo x > ${tmp.dir}/proc-escape.txt; echo y > ${ws}/proc-inside.txt`],
        cwd: ws,
        env: SH_ENV,
        tty: false,
      });
      assert.equal(started.result.sandboxType, 'linuxSeccomp', 'the ceiling sandboxes a process that asked for nothing');
      await c.untilClosed('p');
      assert.equal(existsSync(path.join(tmp.dir, 'proc-escape.txt')), false);
      assert.equal(existsSync(path.join(ws, 'proc-inside.txt')), true);
      c.close();
    } finally {
      await env.close();
    }
  });

  it('a client asking for read-only under a workspace ceiling cannot write at all', async () => {
    const { client: c } = await RawClient.ready(url);
    const ro = { sandboxPolicy: { type: 'read-only' }, windowsSandboxLevel: 'disabled' };
    const w = await c.request('fs/writeFile', { path: path.join(ws, 'ro.txt'), dataBase64: 'eA==', sandbox: ro });
    assert.equal(w.error?.code, -32603);
    assert.equal(w.error?.message, 'Read-only file system (os error 30)');
    await c.request('process/start', {
      processId: 'ro',
      argv: ['sh', '-c', `echo x > ${ws}/ro-proc.txt`],
      cwd: ws,
      env: SH_ENV,
      tty: false,
      sandbox: ro,
    });
    await c.untilClosed('ro');
    assert.equal(existsSync(path.join(ws, 'ro.txt')) || existsSync(path.join(ws, 'ro-proc.txt')), false);
    const asksForMore = await c.request('fs/writeFile', {
      path: path.join(tmp.dir, 'more.txt'),
      dataBase64: 'eA==',
      sandbox: { permissions: { type: 'disabled' }, windowsSandboxLevel: 'disabled' },
    });
    assert.equal(asksForMore.error?.code, -32603, 'asking for full access does not lift the ceiling');
    assert.equal(existsSync(path.join(tmp.dir, 'more.txt')), false);
    c.close();
  });
});

describe("Codex's client-side sandbox wrapper", () => {
  it("runs [codex, --sandbox-policy-cwd, --command-cwd, --permission-profile, --, CMD] under Cordon's sandbox", async () => {
    const { server, url } = await startServer();
    const tmp = await tempDir('cordon-codex-');
    try {
      const { client: c } = await RawClient.ready(url);
      const ws = path.join(tmp.dir, 'w');
      mkdirSync(ws);
      const profile = {
        type: 'managed',
        file_system: {
          type: 'restricted',
          entries: [
            { path: { type: 'special', value: { kind: 'root' } }, access: 'read' },
            { path: { type: 'path', path: ws }, access: 'write' },
            { path: { type: 'path', path: `${ws}/.git` }, access: 'read' },
          ],
        },
        network: 'restricted',
      };
      const start = (processId: string, flags: string[], script: string, arg0: string) =>
        c.request('process/start', {
          processId,
          argv: ['/home/someone/.npm/bin/codex', ...flags, '--', '/bin/bash', '-lc', script],
          arg0,
          cwd: ws,
          env: SH_ENV,
          tty: false,
        });
      const wrapped = await start(
        'codex1',
        ['--sandbox-policy-cwd', ws, '--command-cwd', ws, '--permission-profile', JSON.stringify(profile)],
        `echo inside > ${ws}/in.txt; echo outside > ${tmp.dir}/out.txt; echo "[$CODEX_SANDBOX_NETWORK_DISABLED]"`,
        '/home/someone/.codex/tmp/arg0/codex-arg0AbC123/codex-linux-sandbox',
      );
      assert.equal(wrapped.result?.sandboxType, 'linuxSeccomp', JSON.stringify(wrapped));
      const notes = await c.untilClosed('codex1');
      const out = Buffer.concat(
        notes.filter((n) => n.method === 'process/output').map((n) => Buffer.from(n.params.chunk, 'base64')),
      ).toString();
      assert.match(out, /Read-only file system/);
      assert.match(out, /\[1\]/);
      assert.equal(readFileSync(path.join(ws, 'in.txt'), 'utf8'), 'inside\n');
      assert.equal(existsSync(path.join(tmp.dir, 'out.txt')), false);
      const legacy = await start(
        'codex2',
        ['--sandbox-policy-cwd', ws, '--sandbox-policy', JSON.stringify({ type: 'read-only' })],
        `echo x > ${ws}/legacy.txt`,
        'codex-linux-sandbox',
      );
      assert.equal(legacy.result?.sandboxType, 'linuxSeccomp');
      await c.untilClosed('codex2');
      assert.equal(existsSync(path.join(ws, 'legacy.txt')), false, 'the legacy read-only policy is enforced');
      c.close();
    } finally {
      await server.close();
      await tmp.cleanup();
    }
  });
});
