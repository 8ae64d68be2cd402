import assert from 'node:assert/strict';
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FsEntry } from '../src/environment/permissions.js';
import type { FsCallOptions } from '../src/environment/types.js';
import { LocalEnvironment } from '../src/local/local-environment.js';
import { RpcError } from '../src/protocol/errors.js';
import { FsWorkerPool } from '../src/sandbox/fs-worker-pool.js';
import type { LinuxSandbox } from '../src/sandbox/linux-sandbox.js';
import { holdsCapabilities, sandboxedFs, tempDir } from './helpers.js';

const special = (kind: 'root' | 'project_roots' | 'minimal', access: FsEntry['access'], subpath?: string): FsEntry => ({
  path: { type: 'special', kind, ...(subpath ? { subpath } : {}) },
  access,
});
const exact = (p: string, access: FsEntry['access']): FsEntry => ({ path: { type: 'path', path: p }, access });

async function refused(promise: Promise<unknown>): Promise<RpcError> {
  let error: unknown;
  try {
    await promise;
  } catch (err) {
    error = err;
  }
  assert.ok(error instanceof RpcError, `expected a refusal, got ${error === undefined ? 'success' : String(error)}`);
  return error;
}

/**
 * Reads under a policy that permits every read are answered in the server (no worker); anything a
 * deny could touch, anything the sandbox shows differently, and every write still goes through a
 * sandboxed worker. Each case counts the pool's workers to see which way a call went.
 */
describe('reads answered without a worker', () => {
  let fixture: ReturnType<typeof sandboxedFs>;
  let sandbox: LinuxSandbox;
  let pool: FsWorkerPool;
  let env: LocalEnvironment;
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let ws: string;
  let outside: string;
  let goneFd: number;
  const policy = (entries: FsEntry[]): FsCallOptions => ({
    sandbox: { profile: { enforcement: 'managed', network: 'restricted', fileSystem: { kind: 'restricted', entries } }, cwd: ws },
  });
  const workspace = (): FsCallOptions =>
    policy([
      special('root', 'read'),
      special('project_roots', 'write'),
      ...['.git', '.agents', '.codex', '.aws'].map((n) => special('project_roots', 'read', n)),
    ]);

  before(async () => {
    fixture = sandboxedFs();
    ({ sandbox, pool, env } = fixture);
    tmp = await tempDir('cordon-direct-');
    ws = path.join(tmp.dir, 'ws');
    outside = path.join(tmp.dir, 'outside');
    mkdirSync(path.join(ws, 'sub'), { recursive: true });
    mkdirSync(outside);
    writeFileSync(path.join(ws, 'small.txt'), 'small');
    writeFileSync(path.join(ws, 'big.bin'), Buffer.alloc(300 * 1024, 7));
    writeFileSync(path.join(ws, 'app.key'), 'KEY');
    writeFileSync(path.join(outside, 'host.txt'), 'HOST');
    symlinkSync(path.join(ws, 'small.txt'), path.join(ws, 'sub', 'link'));
    mkdirSync(path.join(ws, 'traps'));
    symlinkSync('/proc/self/environ', path.join(ws, 'traps', 'environ-link'));
    // A magic link to a file the server holds open but that no longer has a name: no sandbox can reach it.
    writeFileSync(path.join(tmp.dir, 'gone.txt'), 'GONE');
    goneFd = openSync(path.join(tmp.dir, 'gone.txt'), 'r');
    unlinkSync(path.join(tmp.dir, 'gone.txt'));
    symlinkSync(`/proc/${process.pid}/fd/${goneFd}`, path.join(ws, 'traps', 'fd-link'));
  });
  after(async () => {
    closeSync(goneFd);
    await fixture.close();
    await tmp.cleanup();
  });

  it('getMetadata, readFile (small and streamed) and readDirectory run in the server and leave no mount target behind', async () => {
    assert.equal((await env.fs.getMetadata(path.join(ws, 'small.txt'), workspace())).size, 5);
    const link = await env.fs.getMetadata(path.join(ws, 'sub', 'link'), workspace());
    assert.ok(link.isSymlink && link.isFile);
    assert.equal((await env.fs.readFileStream(path.join(ws, 'small.txt'), workspace())).toString(), 'small');
    const stream = await env.fs.readFileStream(path.join(ws, 'big.bin'), workspace());
    const chunks: Buffer[] = [];
    for await (const c of stream as AsyncIterable<Buffer>) chunks.push(Buffer.from(c));
    assert.deepEqual(Buffer.concat(chunks), Buffer.alloc(300 * 1024, 7));
    const names = (await env.fs.readDirectory(ws, workspace())).map((e) => e.fileName).sort();
    assert.deepEqual(names, ['app.key', 'big.bin', 'small.txt', 'sub', 'traps']);
    assert.deepEqual(await env.fs.readDirectory(path.join(ws, 'sub'), workspace()), [
      { fileName: 'link', isDirectory: false, isFile: true },
    ]);
    await refused(env.fs.getMetadata(path.join(ws, 'missing'), workspace()));
    await refused(env.fs.getMetadata(path.join(ws, '.agents'), workspace()));
    assert.equal(pool.size, 0, 'no worker was started');
    for (const name of ['.git', '.agents', '.codex', '.aws'])
      assert.equal(existsSync(path.join(ws, name)), false, `${name} not created on the host`);
  });

  it("the server's own /proc is never read for the client, through a symlink or a magic link", async () => {
    // A variable of the server's environment that the worker's does not hold (it gets PATH, TMPDIR, CORDON_SANDBOX).
    const own = readFileSync('/proc/self/environ', 'utf8')
      .split('\0')
      .find((v) => v.includes('=') && !/^(PATH|TMPDIR|CORDON_SANDBOX)=/.test(v));
    assert.ok(own, 'the test process has some variable of its own');
    const data = (await env.fs.readFileStream(path.join(ws, 'traps', 'environ-link'), workspace())).toString();
    assert.ok(!data.includes(own), "the server's environment leaked");
    assert.ok(data.includes('CORDON_SANDBOX=bwrap'), "the link was read in the sandbox, as the worker's own /proc/self/environ");
    // The twin: the same read under no sandbox at all reads the server's own environment.
    assert.ok((await env.fs.readFileStream(path.join(ws, 'traps', 'environ-link'))).toString().includes(own));
    const viaMagic = await env.fs.readFileStream(path.join(ws, 'traps', 'fd-link'), workspace()).catch((e: unknown) => e);
    assert.ok(viaMagic instanceof RpcError, `the server's open, deleted file was read: ${String(viaMagic)}`);
    assert.equal(
      (await env.fs.readFileStream(path.join(ws, 'traps', 'fd-link'))).toString(),
      'GONE',
      'the twin without a sandbox reads it',
    );
  });

  it('a read under a deny entry or a deny glob is refused; its allowed twin works', async () => {
    const denyEntry = policy([special('root', 'read'), special('project_roots', 'write'), exact(path.join(ws, 'app.key'), 'deny')]);
    await refused(env.fs.readFileStream(path.join(ws, 'app.key'), denyEntry));
    assert.equal((await env.fs.readFileStream(path.join(ws, 'small.txt'), denyEntry)).toString(), 'small');
    const denyGlob = policy([
      special('root', 'read'),
      special('project_roots', 'write'),
      { path: { type: 'glob_pattern', pattern: '**/*.key' }, access: 'deny' },
    ]);
    await refused(env.fs.readFileStream(path.join(ws, 'app.key'), denyGlob));
    assert.equal((await env.fs.readFileStream(path.join(ws, 'small.txt'), denyGlob)).toString(), 'small');
  });

  it('a read of a path the policy does not make readable is refused; inside the roots it works', async () => {
    const rootsOnly = policy([special('minimal', 'read'), special('project_roots', 'write')]);
    await refused(env.fs.readFileStream(path.join(outside, 'host.txt'), rootsOnly));
    await refused(env.fs.readDirectory(outside, rootsOnly));
    assert.equal((await env.fs.readFileStream(path.join(ws, 'small.txt'), rootsOnly)).toString(), 'small');
  });

  it('writes still run sandboxed: outside the roots refused, inside they work', async () => {
    const fresh = new FsWorkerPool({ sandbox, maxWorkers: 2, idleMs: 60_000, serverEnv: { PATH: process.env.PATH } });
    const local = new LocalEnvironment({ sandbox, fsWorkers: fresh });
    try {
      await refused(local.fs.writeFile(path.join(outside, 'w.txt'), Buffer.from('x'), workspace()));
      assert.equal(existsSync(path.join(outside, 'w.txt')), false);
      await local.fs.writeFile(path.join(ws, 'w.txt'), Buffer.from('x'), workspace());
      assert.equal(readFileSync(path.join(ws, 'w.txt'), 'utf8'), 'x');
      // In a sandbox of their own: a worker, or here (the project root has no .codex, so its sandbox
      // masks it) a one-shot sandbox, whose refusals fs-one-shot.test.ts compares with the worker's.
      await refused(local.fs.writeFile(path.join(ws, '.codex', 'config.toml'), Buffer.from('x'), workspace()));
      assert.equal(existsSync(path.join(ws, '.codex')), false);
    } finally {
      await local.close();
      await fresh.dispose();
    }
  });

  it("as root, a file only root's capabilities can read is read as unsandboxed (and as reference 0.171 reads it); with a deny entry the worker, without them, refuses it", {
    skip: !holdsCapabilities() && 'needs a server holding capabilities',
  }, async () => {
    const theirs = path.join(ws, 'theirs.txt');
    const locked = path.join(ws, 'locked.txt');
    writeFileSync(theirs, 'THEIRS');
    chownSync(theirs, 1000, 1000);
    chmodSync(theirs, 0o600);
    writeFileSync(locked, 'LOCKED');
    chmodSync(locked, 0o000);
    const denyElsewhere = (): FsCallOptions => policy([special('root', 'read'), exact(path.join(tmp.dir, 'unrelated'), 'deny')]);
    for (const [p, text] of [
      [theirs, 'THEIRS'],
      [locked, 'LOCKED'],
    ] as const) {
      const calls = fixture.workerCalls();
      assert.equal((await env.fs.readFileStream(p, workspace())).toString(), text);
      assert.equal((await env.fs.readFile(p)).toString(), text, 'the unsandboxed twin');
      assert.equal(fixture.workerCalls(), calls, `${p}: went to a worker`);
      await refused(env.fs.readFileStream(p, denyElsewhere()));
      assert.ok(fixture.workerCalls() > calls, `${p}: the twin with a deny entry did not go to a worker`);
    }
  });
});
