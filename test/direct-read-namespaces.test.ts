import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readlinkSync,
  rmdirSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FsEntry } from '../src/environment/permissions.js';
import type { FsCallOptions } from '../src/environment/types.js';
import { DirectReads } from '../src/local/direct-read.js';
import { RpcError } from '../src/protocol/errors.js';
import { builtinProfile } from '../src/sandbox/builtin-profiles.js';
import type { CordonServer } from '../src/server/index.js';
import { RawClient, sandboxedFs, startServer, tempDir } from './helpers.js';

/** `unshare` arguments for a new mount namespace: root needs none other; a user gets a user namespace too. */
const unshareArgs = (): string[] => (process.geteuid?.() === 0 ? ['-m'] : ['-r', '-m']);

/** Why this machine cannot build another mount namespace with its own tmpfs, or false when it can. */
function namespacesUnavailable(): string | false {
  if (process.platform !== 'linux') return 'Linux only';
  if (!existsSync('/usr/bin/bwrap') && !process.env.CI) return 'bubblewrap is not installed';
  const probe = mkdtempSync(path.join(tmpdir(), 'cordon-ns-probe-'));
  try {
    // The mount lives and dies with the probe's own namespace: nothing shows here.
    execFileSync('unshare', [...unshareArgs(), '--propagation', 'private', 'mount', '-t', 'tmpfs', 'tmpfs', probe], { stdio: 'pipe' });
    return false;
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    return `cannot mount a tmpfs in a new mount namespace (unshare): ${e.stderr?.toString().trim() || e.message}`;
  } finally {
    rmdirSync(probe);
  }
}

const special = (kind: 'root' | 'project_roots', access: FsEntry['access']): FsEntry => ({ path: { type: 'special', kind }, access });

/**
 * A process in another mount namespace holds a tmpfs over a directory of ours, with a secret in it.
 * Through /proc/PID/root/… of that process, a symlink here reaches the secret, and the kernel names
 * it by its path in the other namespace, which is the very path asked for (or resolves to the same
 * inode through the link). No sandbox can follow that link (its /proc is its own), so a read under a
 * policy permitting every read must not return the secret: it must go to the sandboxed worker, which
 * answers "not found". The twins, through paths of our own namespace (a plain one, and one through
 * /proc/<server pid>/root), are answered in the server.
 */
describe('a read through another mount namespace is never answered in the server', {
  skip: namespacesUnavailable(),
}, () => {
  const secret = `SECRET-${randomBytes(8).toString('hex')}`;
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let other: ChildProcess;
  /** The directory another namespace covers with its own tmpfs (empty here). */
  let covered: string;
  /** The secret's path in the other namespace; here its parent is a link into that namespace. */
  let sameName: string;
  /** A link whose target is the secret through the other process's root. */
  let otherName: string;
  /** A directory below the secret's, through the link (the link itself is not the kernel's name for it). */
  let linkedDir: string;
  /** The same layout in our own namespace: a file, and a plain link to it. */
  let own: string;
  let ownViaLink: string;
  /** A link to our own file through our own /proc/PID/root: no sandbox has our /proc, so not found. */
  let ownViaProc: string;

  before(async () => {
    tmp = await tempDir('cordon-direct-ns-');
    covered = path.join(tmp.dir, 'covered');
    mkdirSync(covered);
    other = spawn(
      'unshare',
      [
        ...unshareArgs(),
        '--propagation',
        'private',
        'sh',
        '-c',
        'mount -t tmpfs -o mode=755 tmpfs "$1" && mkdir -p "$1/priv/inner" && printf %s "$2" > "$1/priv/hidden-note" && : > "$1/priv/inner/hidden-note" && echo ready && exec cat',
        'sh',
        covered,
        secret,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    const ready = await new Promise<boolean>((resolve) => {
      let out = '';
      other.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('ready')) resolve(true);
      });
      other.once('exit', () => resolve(false));
    });
    assert.ok(ready, 'the other namespace is set up');
    // `unshare` runs sh in the new namespace itself (no fork): its pid is the child's.
    const root = `/proc/${other.pid}/root`;
    symlinkSync(`${root}${covered}/priv`, path.join(covered, 'priv'));
    sameName = path.join(covered, 'priv', 'hidden-note');
    linkedDir = path.join(covered, 'priv', 'inner');
    otherName = path.join(tmp.dir, 'note-link');
    symlinkSync(`${root}${sameName}`, otherName);
    mkdirSync(path.join(tmp.dir, 'mine'));
    own = path.join(tmp.dir, 'mine', 'hidden-note');
    writeFileSync(own, 'OWN');
    ownViaProc = path.join(tmp.dir, 'own-link');
    symlinkSync(`/proc/${process.pid}/root${own}`, ownViaProc);
    ownViaLink = path.join(tmp.dir, 'own-plain-link');
    symlinkSync(own, ownViaLink);
  });
  after(async () => {
    if (other && other.exitCode === null && other.signalCode === null) {
      const exited = new Promise((resolve) => other.once('exit', resolve));
      other.stdin?.end();
      await exited;
    }
    await tmp.cleanup();
  });

  it('through a server under the :workspace ceiling: readFile, getMetadata and readDirectory answer "not found"; our own paths are read', async () => {
    const ws = path.join(tmp.dir, 'ws');
    mkdirSync(ws, { recursive: true });
    const ceilinged = await startServer({
      environment: { ceiling: { profile: builtinProfile(':workspace'), cwd: ws, workspaceRoots: [ws], name: ':workspace' } },
    });
    const open = await startServer();
    const servers: CordonServer[] = [ceilinged.server, open.server];
    try {
      const { client: c } = await RawClient.ready(ceilinged.url);
      for (const p of [sameName, otherName, ownViaProc]) {
        const read = await c.request('fs/readFile', { path: p });
        assert.ok(!JSON.stringify(read).includes(Buffer.from(secret).toString('base64')), `${p}: the other namespace's file was read`);
        assert.match(read.error?.message ?? '', /No such file or directory/, `${p}: ${JSON.stringify(read)}`);
        const meta = await c.request('fs/getMetadata', { path: p });
        assert.match(meta.error?.message ?? '', /No such file or directory/, `${p}: metadata given: ${JSON.stringify(meta)}`);
      }
      const listed = await c.request('fs/readDirectory', { path: linkedDir });
      assert.ok(!JSON.stringify(listed).includes('hidden-note'), `the other namespace's directory was listed: ${JSON.stringify(listed)}`);
      assert.match(listed.error?.message ?? '', /No such file or directory/);
      // The twins: the same kind of file in our own namespace, by its path and through a plain link.
      for (const p of [own, ownViaLink]) {
        const read = await c.request('fs/readFile', { path: p });
        assert.equal(Buffer.from(read.result?.dataBase64 ?? '', 'base64').toString(), 'OWN', `${p}: ${JSON.stringify(read)}`);
        assert.equal((await c.request('fs/getMetadata', { path: p })).result?.isFile, true, p);
      }
      c.close();
      // Without any sandbox the links do reach the secret: what the first server refused was there.
      const { client: u } = await RawClient.ready(open.url);
      for (const p of [sameName, otherName]) {
        const read = await u.request('fs/readFile', { path: p });
        assert.equal(Buffer.from(read.result?.dataBase64 ?? '', 'base64').toString(), secret, `${p}: ${JSON.stringify(read)}`);
      }
      const viaProc = await u.request('fs/readFile', { path: ownViaProc });
      assert.equal(Buffer.from(viaProc.result?.dataBase64 ?? '', 'base64').toString(), 'OWN', JSON.stringify(viaProc));
      assert.ok(JSON.stringify(await u.request('fs/readDirectory', { path: linkedDir })).includes('hidden-note'));
      u.close();
    } finally {
      for (const s of servers) await s.close();
    }
  });

  it('in the file system: the crafted paths go to the worker, the twins are answered without one', async () => {
    const fixture = sandboxedFs(2);
    const { env } = fixture;
    const everyRead: FsCallOptions = {
      sandbox: {
        profile: {
          enforcement: 'managed',
          network: 'restricted',
          fileSystem: { kind: 'restricted', entries: [special('root', 'read'), special('project_roots', 'write')] },
        },
        cwd: tmp.dir,
      },
    };
    const answer = async (op: () => Promise<unknown>): Promise<{ value: string; worker: boolean }> => {
      const before = fixture.workerCalls();
      let value: string;
      try {
        const got = await op();
        value = Buffer.isBuffer(got) ? got.toString() : JSON.stringify(got);
      } catch (err) {
        assert.ok(err instanceof RpcError, String(err));
        value = `error: ${err.message}`;
      }
      return { value, worker: fixture.workerCalls() > before };
    };
    try {
      const crafted = [
        ...[sameName, otherName, ownViaProc].flatMap((p) => [
          { what: `readFile ${p}`, op: () => env.fs.readFileStream(p, everyRead).then((b) => Buffer.from(b.toString())) },
          { what: `getMetadata ${p}`, op: () => env.fs.getMetadata(p, everyRead) },
        ]),
        { what: `readDirectory ${linkedDir}`, op: () => env.fs.readDirectory(linkedDir, everyRead) },
      ];
      for (const { what, op } of crafted) {
        const got = await answer(op);
        assert.ok(!got.value.includes(secret) && !got.value.includes('hidden-note') && !got.value.includes('OWN'), `${what}: ${got.value}`);
        assert.match(got.value, /^error: No such file or directory/, what);
        assert.ok(got.worker, `${what}: answered in the server`);
      }
      for (const p of [own, ownViaLink]) {
        const read = await answer(() => env.fs.readFileStream(p, everyRead).then((b) => Buffer.from(b.toString())));
        assert.deepEqual(read, { value: 'OWN', worker: false }, p);
        const meta = await answer(() => env.fs.getMetadata(p, everyRead));
        assert.equal(meta.worker, false, `${p}: metadata went to the worker`);
        assert.equal((JSON.parse(meta.value) as { size?: number }).size, 3, p);
      }
    } finally {
      await fixture.close();
    }
  });

  it('the checks refuse them (by the mount, or by a route through /proc); the twins pass', () => {
    const direct = new DirectReads(() => []);
    for (const p of [sameName, otherName, ownViaProc]) {
      assert.equal(direct.metadata(p), undefined, `metadata of ${p}`);
      const opened = direct.openForReading(p);
      if (opened) closeSync(opened.fd);
      assert.equal(opened, undefined, `${p} opened for reading`);
      assert.equal(direct.linkTarget(p), undefined, `link target of ${p}`);
    }
    const dir = direct.openDirectory(linkedDir);
    if (dir !== undefined) closeSync(dir);
    assert.equal(dir, undefined, `${linkedDir} opened for listing`);
    for (const p of [own, ownViaLink]) {
      assert.equal(direct.metadata(p)?.target.size, 3, `metadata of ${p}`);
      const opened = direct.openForReading(p);
      assert.ok(opened, `${p} not opened`);
      closeSync(opened.fd);
      assert.deepEqual(direct.linkTarget(p), { isDirectory: false, isFile: true });
    }
    const ownDir = direct.openDirectory(path.dirname(own));
    assert.notEqual(ownDir, undefined, 'our own directory not opened');
    if (ownDir !== undefined) closeSync(ownDir);
  });

  it('a name answered in our namespace, then made to lead into the other one, is refused again', () => {
    // The secret's own name first leads to a file of ours (answered and remembered), then, the link
    // put back, to the secret: the name and the kernel's name for it are the same string again.
    const direct = new DirectReads(() => []);
    const link = path.join(covered, 'priv');
    const target = readlinkSync(link);
    unlinkSync(link);
    try {
      mkdirSync(link);
      writeFileSync(sameName, 'ours');
      assert.equal(direct.metadata(sameName)?.target.size, 4);
      assert.equal(direct.metadata(sameName)?.target.size, 4, 'asked again');
    } finally {
      rmSync(link, { recursive: true, force: true });
      symlinkSync(target, link);
    }
    assert.equal(direct.metadata(sameName), undefined);
    assert.equal(direct.metadata(sameName), undefined, 'asked again');
  });
});
