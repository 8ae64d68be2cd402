import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import {
  closeSync,
  constants,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FsEntry, SandboxRequest } from '../src/environment/permissions.js';
import { ONE_SHOT_SCRIPT } from '../src/sandbox/fs-one-shot.js';
import { FsWorkerPool } from '../src/sandbox/fs-worker-pool.js';
import type { FsWorkerOp } from '../src/sandbox/fs-worker-protocol.js';
import { sandboxedFs, tempDir } from './helpers.js';

const special = (kind: 'root' | 'project_roots', access: FsEntry['access']): FsEntry => ({ path: { type: 'special', kind }, access });

/** A tree's entries (relative path -> file content, `dir`, or `-> target`), to compare two trees. */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      const rel = path.relative(root, p);
      const info = lstatSync(p);
      if (info.isSymbolicLink()) out[rel] = `-> ${path.relative(root, readlinkSync(p))}`;
      else if (info.isDirectory()) {
        out[rel] = 'dir';
        walk(p);
      } else if (info.isFIFO()) out[rel] = 'fifo';
      else out[rel] = readFileSync(p, 'latin1');
    }
  };
  walk(root);
  return out;
}

type Outcome = { ok: true } | { error: string };

/** Root readable, the project root (`cwd`) writable: its missing metadata names are masked. */
const workspaceWrite = (cwd: string | null): SandboxRequest => ({
  profile: {
    enforcement: 'managed',
    network: 'restricted',
    fileSystem: { kind: 'restricted', entries: [special('root', 'read'), special('project_roots', 'write')] },
  },
  cwd,
});

/**
 * Writes and mkdirs under a sandbox that masks missing protected names in its project root (no
 * `.codex`, `.agents`, `.git` there) run in a one-shot sandbox (bwrap + Perl), not on a worker. Each
 * case runs twice on twin trees: once that way, once on the worker (the pool's `call` always uses
 * one), and the answers and the trees must be the same. The escapes are refused both ways; their
 * allowed twins work both ways.
 */
describe('one-shot sandboxed writes give the worker answer', () => {
  let fixture: ReturnType<typeof sandboxedFs>;
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let caseNo = 0;

  before(async () => {
    fixture = sandboxedFs();
    tmp = await tempDir('cordon-one-shot-');
  });
  after(async () => {
    await fixture.close();
    await tmp.cleanup();
  });

  /** A project root with some content, and a directory outside every writable root. */
  function makeTree(base: string): { ws: string; outside: string; request: SandboxRequest } {
    const ws = path.join(base, 'ws');
    const outside = path.join(base, 'outside');
    mkdirSync(path.join(ws, 'sub'), { recursive: true });
    mkdirSync(outside);
    writeFileSync(path.join(ws, 'existing.txt'), 'old content');
    writeFileSync(path.join(outside, 'host.txt'), 'HOST');
    symlinkSync(ws, path.join(ws, 'alias'));
    symlinkSync(outside, path.join(ws, 'out-link'));
    const request = workspaceWrite(ws);
    return { ws, outside, request };
  }

  async function outcome(run: () => Promise<unknown>): Promise<Outcome> {
    try {
      await run();
      return { ok: true };
    } catch (err) {
      return { error: `${(err as { code?: number }).code}: ${(err as Error).message}` };
    }
  }

  /** Runs `op(tree)` one-shot on one twin and on a worker on the other; returns the one-shot outcome. */
  async function both(opFor: (t: { ws: string; outside: string }) => FsWorkerOp): Promise<Outcome> {
    caseNo++;
    const a = makeTree(path.join(tmp.dir, `${caseNo}-one-shot`));
    const b = makeTree(path.join(tmp.dir, `${caseNo}-worker`));
    const callsBefore = fixture.workerCalls();
    const viaOneShot = await outcome(() => fixture.pool.perform(a.request, opFor(a)));
    assert.equal(fixture.workerCalls(), callsBefore, `${JSON.stringify(opFor(a))} went to a worker`);
    const viaWorker = await outcome(() => fixture.pool.call(b.request, opFor(b)));
    assert.deepEqual(viaOneShot, viaWorker, JSON.stringify(opFor(a)));
    await Promise.all(fixture.pool.list().map((w) => w.stop()));
    assert.deepEqual(snapshot(path.dirname(a.ws)), snapshot(path.dirname(b.ws)), `the trees differ after ${JSON.stringify(opFor(a))}`);
    for (const name of ['.codex', '.agents', '.git'])
      assert.equal(existsSync(path.join(a.ws, name)), false, `${name} left in the project root`);
    return viaOneShot;
  }

  const write = (p: string, text: string): FsWorkerOp => ({ op: 'writeFile', path: p, data: Buffer.from(text).toString('base64') });

  it('writes and creates directories inside the project root', async () => {
    assert.deepEqual(await both((t) => write(path.join(t.ws, 'new.txt'), 'fresh')), { ok: true });
    assert.deepEqual(await both((t) => write(path.join(t.ws, 'existing.txt'), 'new')), { ok: true });
    assert.deepEqual(await both((t) => write(path.join(t.ws, 'sub', 'deeper.txt'), 'x'.repeat(200_000))), { ok: true });
    assert.deepEqual(await both((t) => ({ op: 'createDirectory', path: path.join(t.ws, 'a', 'b', 'c'), recursive: true })), { ok: true });
    assert.deepEqual(await both((t) => ({ op: 'createDirectory', path: path.join(t.ws, 'one'), recursive: false })), { ok: true });
    assert.deepEqual(await both((t) => ({ op: 'createDirectory', path: path.join(t.ws, 'sub'), recursive: true })), { ok: true });
  });

  it('refuses what the sandbox refuses, with the worker error', async () => {
    const refusals: [string, (t: { ws: string; outside: string }) => FsWorkerOp, RegExp][] = [
      ['a missing .codex', (t) => write(path.join(t.ws, '.codex', 'config.toml'), 'x'), /Read-only file system/],
      ['a missing .git', (t) => write(path.join(t.ws, '.git', 'config'), 'x'), /Read-only file system/],
      ['.agents through a link to the root', (t) => write(path.join(t.ws, 'alias', '.agents', 'x'), 'x'), /Read-only file system/],
      ['a hook dir under .git', (t) => ({ op: 'createDirectory', path: path.join(t.ws, '.git', 'hooks'), recursive: true }), /Read-only/],
      ['outside the roots', (t) => write(path.join(t.outside, 'escape.txt'), 'x'), /Read-only file system/],
      ['over a host file', (t) => write(path.join(t.outside, 'host.txt'), 'x'), /Read-only file system/],
      ['outside through a link', (t) => write(path.join(t.ws, 'out-link', 'escape.txt'), 'x'), /Read-only file system/],
      ['mkdir outside', (t) => ({ op: 'createDirectory', path: path.join(t.outside, 'd'), recursive: true }), /Read-only/],
    ];
    for (const [what, op, expected] of refusals) {
      const answer = await both(op);
      assert.ok('error' in answer && expected.test(answer.error), `${what}: ${JSON.stringify(answer)}`);
    }
  });

  it('ordinary errors are the worker errors', async () => {
    const errors: [string, (t: { ws: string; outside: string }) => FsWorkerOp, RegExp][] = [
      ['a directory', (t) => write(path.join(t.ws, 'sub'), 'x'), /Is a directory/],
      ['a missing parent', (t) => write(path.join(t.ws, 'nope', 'x.txt'), 'x'), /No such file or directory/],
      ['mkdir of an existing directory', (t) => ({ op: 'createDirectory', path: path.join(t.ws, 'sub'), recursive: false }), /File exists/],
      ['mkdir -p over a file', (t) => ({ op: 'createDirectory', path: path.join(t.ws, 'existing.txt'), recursive: true }), /File exists/],
      ['mkdir without parents', (t) => ({ op: 'createDirectory', path: path.join(t.ws, 'x', 'y'), recursive: false }), /No such file/],
    ];
    for (const [what, op, expected] of errors) {
      const answer = await both(op);
      assert.ok('error' in answer && expected.test(answer.error), `${what}: ${JSON.stringify(answer)}`);
    }
  });

  it('removes and renames as the worker does, and refuses the same', async () => {
    const remove = (p: string, force: boolean, recursive: boolean): FsWorkerOp => ({ op: 'remove', path: p, force, recursive });
    const rename = (from: string, to: string): FsWorkerOp => ({ op: 'rename', sourcePath: from, destinationPath: to });
    const cases: [string, (t: { ws: string; outside: string }) => FsWorkerOp, RegExp | 'ok'][] = [
      ['a file', (t) => remove(path.join(t.ws, 'existing.txt'), false, false), 'ok'],
      ['a link (not its target)', (t) => remove(path.join(t.ws, 'out-link'), false, true), 'ok'],
      ['an empty directory', (t) => remove(path.join(t.ws, 'sub'), false, false), 'ok'],
      ['a missing name, forced', (t) => remove(path.join(t.ws, 'nothing'), true, true), 'ok'],
      ['a missing name', (t) => remove(path.join(t.ws, 'nothing'), false, false), /No such file or directory/],
      [
        'a non-empty directory, not recursive',
        (t) => remove(t.ws, false, false),
        /Read-only file system|Directory not empty|Device or resource busy/,
      ],
      ['a host file outside the roots', (t) => remove(path.join(t.outside, 'host.txt'), false, false), /Read-only file system/],
      ['through a link outside', (t) => remove(path.join(t.ws, 'out-link', 'host.txt'), true, false), /Read-only file system/],
      ['rename inside', (t) => rename(path.join(t.ws, 'existing.txt'), path.join(t.ws, 'sub', 'moved.txt')), 'ok'],
      ['rename onto a missing .codex', (t) => rename(path.join(t.ws, 'sub'), path.join(t.ws, '.codex')), /.+/],
      ['rename into .git', (t) => rename(path.join(t.ws, 'existing.txt'), path.join(t.ws, '.git', 'config')), /Read-only|cross-device/],
      ['rename out of the roots', (t) => rename(path.join(t.ws, 'existing.txt'), path.join(t.outside, 'taken.txt')), /.+/],
      ['rename a host file in', (t) => rename(path.join(t.outside, 'host.txt'), path.join(t.ws, 'stolen.txt')), /.+/],
    ];
    for (const [what, op, expected] of cases) {
      const answer = await both(op);
      if (expected === 'ok') assert.deepEqual(answer, { ok: true }, what);
      else assert.ok('error' in answer && expected.test(answer.error), `${what}: ${JSON.stringify(answer)}`);
    }
  });

  it('a tree to remove goes to the worker', async () => {
    const { ws, request } = makeTree(path.join(tmp.dir, 'tree'));
    writeFileSync(path.join(ws, 'sub', 'inner.txt'), 'i');
    const callsBefore = fixture.workerCalls();
    await fixture.pool.perform(request, { op: 'remove', path: path.join(ws, 'sub'), recursive: true, force: true });
    assert.equal(existsSync(path.join(ws, 'sub')), false);
    assert.equal(fixture.workerCalls(), callsBefore + 1, 'the tree went to a worker');
    await Promise.all(fixture.pool.list().map((w) => w.stop()));
  });

  it('a burst of calls keeps its order and shares one worker after the first one-shot', async () => {
    const { ws, request } = makeTree(path.join(tmp.dir, 'burst'));
    const target = path.join(ws, 'burst.txt');
    const callsBefore = fixture.workerCalls();
    await Promise.all(Array.from({ length: 12 }, (_, i) => fixture.pool.perform(request, write(target, `version ${i}`))));
    assert.equal(readFileSync(target, 'utf8'), 'version 11', 'the last write wins');
    assert.equal(fixture.workerCalls(), callsBefore + 11, 'the first ran one-shot, the others on a worker');
    await Promise.all(fixture.pool.list().map((w) => w.stop()));
    assert.equal(existsSync(path.join(ws, '.codex')), false);
  });

  it('a write whose data did not all arrive leaves the file as it was', () => {
    const { ws } = makeTree(path.join(tmp.dir, 'cut'));
    const target = path.join(ws, 'existing.txt');
    // What the one-shot's Perl sees when the server dies mid-transfer: fewer bytes than announced.
    const out = execFileSync('/usr/bin/perl', ['-e', ONE_SHOT_SCRIPT, 'write', target, '100'], { input: 'only part' });
    assert.equal(String(out).trim(), 'FALLBACK');
    assert.equal(readFileSync(target, 'utf8'), 'old content');
    const whole = execFileSync('/usr/bin/perl', ['-e', ONE_SHOT_SCRIPT, 'write', target, '9'], { input: 'only part' });
    assert.equal(String(whole).trim(), 'OK');
    assert.equal(readFileSync(target, 'utf8'), 'only part');
  });

  it('a profile that needs a cwd and has none gets the worker error, and nothing runs', async () => {
    const { ws } = makeTree(path.join(tmp.dir, 'no-cwd'));
    const request = workspaceWrite(null);
    const answer = await outcome(() => fixture.pool.perform(request, write(path.join(ws, 'x.txt'), 'x')));
    assert.match('error' in answer ? answer.error : '', /requires cwd/);
    assert.equal(existsSync(path.join(ws, 'x.txt')), false);
  });

  it('a large write to a FIFO reaches a reader that stops at the first end of file', async () => {
    const { ws, request } = makeTree(path.join(tmp.dir, 'fifo-large'));
    const fifo = path.join(ws, 'pipe');
    const out = path.join(ws, 'out.bin');
    execFileSync('mkfifo', [fifo]);
    const reader = spawn('sh', ['-c', 'cat "$0" > "$1"', fifo, out], { stdio: 'ignore' });
    const done = new Promise((resolve) => reader.on('close', resolve));
    await fixture.pool.perform(request, write(fifo, 'y'.repeat(70_000)));
    await done;
    assert.equal(readFileSync(out, 'utf8').length, 70_000);
    await Promise.all(fixture.pool.list().map((w) => w.stop()));
  });

  it('a call on a worker waits for the one-shot of its profile that came first', async () => {
    const { ws, request } = makeTree(path.join(tmp.dir, 'order'));
    const target = path.join(ws, 'big.bin');
    const askedBeforeTheWrite: string[] = [];
    const worker = fixture.pool.worker.bind(fixture.pool);
    fixture.pool.worker = (r) => {
      if (lstatSync(target, { throwIfNoEntry: false })?.size !== 1_000_000)
        askedBeforeTheWrite.push('a worker was asked for before the write');
      return worker(r);
    };
    try {
      const writing = fixture.pool.perform(request, write(target, 'z'.repeat(1_000_000)));
      const { result } = await fixture.pool.call(request, { op: 'getMetadata', path: target });
      await writing;
      assert.deepEqual(askedBeforeTheWrite, []);
      assert.equal((result as { size: number }).size, 1_000_000);
    } finally {
      fixture.pool.worker = worker;
      await Promise.all(fixture.pool.list().map((w) => w.stop()));
    }
  });

  it('a pool disposed during a one-shot waits for it: the write is done, nothing is left in the project root', async () => {
    const { ws, request } = makeTree(path.join(tmp.dir, 'dispose'));
    const pool = new FsWorkerPool({ sandbox: fixture.sandbox, maxWorkers: 2, idleMs: 60_000, serverEnv: { PATH: process.env.PATH } });
    const writing = outcome(() => pool.perform(request, write(path.join(ws, 'late.txt'), 'late')));
    await new Promise((r) => setImmediate(r));
    await pool.dispose();
    assert.equal(readFileSync(path.join(ws, 'late.txt'), 'utf8'), 'late', 'the one-shot had ended');
    for (const name of ['.codex', '.agents', '.git', '.aws', '.cordon']) assert.equal(existsSync(path.join(ws, name)), false, name);
    assert.deepEqual(await writing, { ok: true });
  });

  it('a path with a NUL goes to the worker and gets its error', async () => {
    const { ws, request } = makeTree(path.join(tmp.dir, 'nul'));
    const viaPerform = await outcome(() => fixture.pool.perform(request, write(`${ws}/a\0b`, 'x')));
    const viaWorker = await outcome(() => fixture.pool.call(request, write(`${ws}/a\0b`, 'x')));
    assert.deepEqual(viaPerform, viaWorker);
    assert.match('error' in viaPerform ? viaPerform.error : '', /^-32\d+: /);
    await Promise.all(fixture.pool.list().map((w) => w.stop()));
  });

  it('a FIFO goes to the worker, which writes to its reader', async () => {
    const { ws, request } = makeTree(path.join(tmp.dir, 'fifo'));
    const fifo = path.join(ws, 'pipe');
    execFileSync('mkfifo', [fifo]);
    // Held open for reading and writing: a reader that sees no end of file when a writer closes.
    const reader = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
    const callsBefore = fixture.workerCalls();
    await fixture.pool.perform(request, write(fifo, 'through the pipe'));
    const buffer = Buffer.alloc(100);
    const n = readSync(reader, buffer, 0, buffer.length, null);
    closeSync(reader);
    assert.equal(buffer.toString('utf8', 0, n), 'through the pipe');
    assert.equal(fixture.workerCalls(), callsBefore + 1, 'the FIFO write went to a worker');
    await Promise.all(fixture.pool.list().map((w) => w.stop()));
  });

  it('a profile whose sandbox leaves nothing on the host keeps using a warm worker', async () => {
    const { ws } = makeTree(path.join(tmp.dir, 'warm'));
    for (const name of ['.codex', '.agents', '.git', '.aws', '.cordon']) mkdirSync(path.join(ws, name));
    for (const name of ['.codex', '.agents', '.git', '.aws', '.cordon']) writeFileSync(path.join(ws, name, 'keep'), 'k');
    const request = workspaceWrite(ws);
    const callsBefore = fixture.workerCalls();
    await fixture.pool.perform(request, write(path.join(ws, 'one.txt'), '1'));
    await fixture.pool.perform(request, write(path.join(ws, 'two.txt'), '2'));
    assert.equal(fixture.workerCalls(), callsBefore + 2, 'both writes went to the worker');
    assert.equal(fixture.pool.size, 1, 'one warm worker');
    assert.equal(readFileSync(path.join(ws, 'two.txt'), 'utf8'), '2');
    await Promise.all(fixture.pool.list().map((w) => w.stop()));
  });
});
