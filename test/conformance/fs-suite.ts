import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readlinkSync, symlinkSync } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { Environment, FsCallOptions, FsChange } from '../../src/environment/types.js';
import { RpcError } from '../../src/protocol/errors.js';
import { parseWireSandbox } from '../../src/protocol/sandbox.js';
import { sandboxFromWire } from '../../src/sandbox/profile.js';
import { eventually, sleep, tempDir } from '../helpers.js';
import type { EnvironmentFixture } from './process-suite.js';

const ENOENT = 'No such file or directory (os error 2)';

/** The fs conformance suite (docs/protocol.md §10 and Cordon's extensions), for any Environment. */
export function fsConformance(name: string, makeFixture: () => Promise<EnvironmentFixture>): void {
  describe(`fs conformance: ${name}`, () => {
    let fx: EnvironmentFixture;
    let env: Environment;
    let tmp: { dir: string; cleanup: () => Promise<void> };
    let root: string;
    let n = 0;
    const p = (...parts: string[]): string => path.join(root, ...parts);

    before(async () => {
      fx = await makeFixture();
      env = fx.env;
      tmp = await tempDir('cordon-fs-');
    });
    after(async () => {
      await fx.cleanup();
      await tmp.cleanup();
    });
    beforeEach(async () => {
      root = path.join(tmp.dir, `case-${++n}`);
      await mkdir(root);
    });

    const rejectsWith = async (promise: Promise<unknown>, code: number, message: string | RegExp): Promise<void> => {
      await assert.rejects(promise, (err: unknown) => {
        assert.ok(err instanceof RpcError, `expected an RpcError, got ${String(err)}`);
        assert.equal(err.code, code, err.message);
        if (typeof message === 'string') assert.equal(err.message, message);
        else assert.match(err.message, message);
        return true;
      });
    };

    it('reads and writes files, empty files, and through symlinks', async () => {
      await env.fs.writeFile(p('a.txt'), Buffer.from('hello world\n'));
      assert.equal((await env.fs.readFile(p('a.txt'))).toString(), 'hello world\n');
      assert.equal((await stat(p('a.txt'))).mode & 0o777, 0o644 & ~process.umask());
      await env.fs.writeFile(p('a.txt'), Buffer.from('short'));
      assert.equal(readFileSync(p('a.txt'), 'utf8'), 'short', 'truncates and overwrites');
      await env.fs.writeFile(p('empty'), new Uint8Array(0));
      assert.equal((await env.fs.readFile(p('empty'))).length, 0);
      symlinkSync('a.txt', p('link'));
      await env.fs.writeFile(p('link'), Buffer.from('via link'));
      assert.equal(readFileSync(p('a.txt'), 'utf8'), 'via link');
      assert.ok(lstatSync(p('link')).isSymbolicLink(), 'the link stays a link');
      assert.equal((await env.fs.readFile(p('link'))).toString(), 'via link');
      assert.equal((await env.fs.readFile(`${root}/./sub/../a.txt`.replace('/sub/..', ''))).toString(), 'via link');
      const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      await env.fs.writeFile(p('bin'), binary);
      assert.deepEqual(await env.fs.readFile(p('bin')), binary);
      assert.ok((await env.fs.readFile('/proc/self/status')).toString().includes('Name:'));
    });

    it('handles unicode and unusual file names', async () => {
      const names = ['naïve 文件 ünïcødé.txt', 'with space', '-rf', 'new\nline', 'quote\'"s', '#hash', 'ends-with-dot.'];
      for (const name of names) {
        await env.fs.writeFile(p(name), Buffer.from(name));
        assert.equal((await env.fs.readFile(p(name))).toString(), name);
      }
      const listed = (await env.fs.readDirectory(root)).map((e) => e.fileName).sort();
      assert.deepEqual(listed, [...names].sort());
      await env.fs.copy(p(names[0]!), p('copy of 文件'), { recursive: false });
      assert.equal(readFileSync(p('copy of 文件'), 'utf8'), names[0]);
    });

    it('reports read and write errors with the reference codes and texts', async () => {
      await mkdir(p('dir'));
      symlinkSync('nowhere', p('broken'));
      await rejectsWith(env.fs.readFile(p('missing')), -32004, ENOENT);
      await rejectsWith(env.fs.readFile(p('broken')), -32004, ENOENT);
      await rejectsWith(env.fs.readFile(p('dir')), -32603, 'Is a directory (os error 21)');
      await rejectsWith(env.fs.writeFile(p('nope', 'x.txt'), Buffer.from('x')), -32004, ENOENT);
      await rejectsWith(env.fs.writeFile(p('dir'), Buffer.from('x')), -32603, 'Is a directory (os error 21)');
      if (process.getuid?.() === 0) {
        await rejectsWith(
          env.fs.readFile('/proc/1/mem'),
          -32600,
          /^(Permission denied \(os error 13\)|Input\/output error \(os error 5\))$/,
        );
      } else {
        await writeFile(p('secret'), 'x', { mode: 0o000 });
        await rejectsWith(env.fs.readFile(p('secret')), -32600, 'Permission denied (os error 13)');
      }
    });

    it('creates directories: recursive by default, with the reference errors otherwise', async () => {
      await env.fs.createDirectory(p('a', 'b', 'c'));
      assert.ok((await stat(p('a', 'b', 'c'))).isDirectory());
      await env.fs.createDirectory(p('a'));
      await rejectsWith(env.fs.createDirectory(p('x', 'y'), { recursive: false }), -32004, ENOENT);
      await rejectsWith(env.fs.createDirectory(p('a'), { recursive: false }), -32603, 'File exists (os error 17)');
      await env.fs.createDirectory(p('single'), { recursive: false });
      await writeFile(p('file'), 'x');
      await rejectsWith(env.fs.createDirectory(p('file')), -32603, 'File exists (os error 17)');
      await rejectsWith(env.fs.createDirectory(p('file'), { recursive: false }), -32603, 'File exists (os error 17)');
      await rejectsWith(env.fs.createDirectory(p('file', 'sub')), -32603, 'Not a directory (os error 20)');
    });

    it('describes files, directories, symlinks and devices', async () => {
      await writeFile(p('f'), 'twelve bytes');
      await mkdir(p('d'));
      symlinkSync('f', p('lf'));
      symlinkSync(p('d'), p('ld'));
      symlinkSync('nowhere', p('broken'));
      const before = Date.now();
      const f = await env.fs.getMetadata(p('f'));
      assert.deepEqual(Object.keys(f), ['isDirectory', 'isFile', 'isSymlink', 'size', 'createdAtMs', 'modifiedAtMs']);
      assert.deepEqual(
        { ...f, createdAtMs: 0, modifiedAtMs: 0 },
        { isDirectory: false, isFile: true, isSymlink: false, size: 12, createdAtMs: 0, modifiedAtMs: 0 },
      );
      assert.equal(f.modifiedAtMs, Math.floor((await stat(p('f'))).mtimeMs));
      assert.ok(f.createdAtMs >= 0 && f.createdAtMs <= before + 1000);
      assert.ok(Number.isInteger(f.createdAtMs) && Number.isInteger(f.modifiedAtMs));
      const lf = await env.fs.getMetadata(p('lf'));
      assert.equal(lf.isFile, true);
      assert.equal(lf.isSymlink, true);
      assert.equal(lf.size, 12);
      const ld = await env.fs.getMetadata(p('ld'));
      assert.equal(ld.isDirectory, true);
      assert.equal(ld.isSymlink, true);
      const dn = await env.fs.getMetadata('/dev/null');
      assert.equal(dn.isDirectory || dn.isFile || dn.isSymlink, false);
      await rejectsWith(env.fs.getMetadata(p('broken')), -32004, ENOENT);
      await rejectsWith(env.fs.getMetadata(p('missing')), -32004, ENOENT);
    });

    it('lists direct children, resolving symlinks and omitting broken ones', async () => {
      await writeFile(p('f'), 'x');
      await mkdir(p('d'));
      await writeFile(p('d', 'nested'), 'x');
      symlinkSync('f', p('lf'));
      symlinkSync('d', p('ld'));
      symlinkSync('nowhere', p('broken'));
      const entries = (await env.fs.readDirectory(root)).sort((a, b) => a.fileName.localeCompare(b.fileName));
      assert.deepEqual(entries, [
        { fileName: 'd', isDirectory: true, isFile: false },
        { fileName: 'f', isDirectory: false, isFile: true },
        { fileName: 'ld', isDirectory: true, isFile: false },
        { fileName: 'lf', isDirectory: false, isFile: true },
      ]);
      assert.deepEqual(await env.fs.readDirectory(p('ld')), [{ fileName: 'nested', isDirectory: false, isFile: true }]);
      await mkdir(p('empty'));
      assert.deepEqual(await env.fs.readDirectory(p('empty')), []);
      await rejectsWith(env.fs.readDirectory(p('f')), -32603, 'Not a directory (os error 20)');
      await rejectsWith(env.fs.readDirectory(p('missing')), -32004, ENOENT);
    });

    it('removes: recursive and forced by default, with the reference errors otherwise', async () => {
      await mkdir(p('tree', 'sub'), { recursive: true });
      await writeFile(p('tree', 'sub', 'f'), 'x');
      await env.fs.remove(p('tree'));
      assert.equal(existsSync(p('tree')), false);
      await env.fs.remove(p('missing'));
      await rejectsWith(env.fs.remove(p('missing'), { force: false }), -32004, ENOENT);
      await rejectsWith(env.fs.remove(p('missing'), { force: false, recursive: true }), -32004, ENOENT);
      await mkdir(p('full'));
      await writeFile(p('full', 'f'), 'x');
      await rejectsWith(env.fs.remove(p('full'), { recursive: false }), -32603, 'Directory not empty (os error 39)');
      await mkdir(p('empty'));
      await env.fs.remove(p('empty'), { recursive: false });
      assert.equal(existsSync(p('empty')), false);
      symlinkSync(p('full'), p('link-to-dir'));
      await env.fs.remove(p('link-to-dir'));
      assert.equal(existsSync(p('link-to-dir')), false);
      assert.equal(readFileSync(p('full', 'f'), 'utf8'), 'x', 'the target is untouched');
      await writeFile(p('file'), 'x');
      await env.fs.remove(p('file'), { recursive: false });
      assert.equal(existsSync(p('file')), false);
    });

    it('copies files, trees (merging) and symlinks as symlinks', async () => {
      await writeFile(p('src.txt'), 'source');
      await writeFile(p('dst.txt'), 'old destination content');
      await env.fs.copy(p('src.txt'), p('dst.txt'), { recursive: false });
      assert.equal(readFileSync(p('dst.txt'), 'utf8'), 'source');
      await mkdir(p('tree', 'sub'), { recursive: true });
      await writeFile(p('tree', 'sub', 'f'), 'f');
      await writeFile(p('tree', 'empty'), '');
      symlinkSync('sub/f', p('tree', 'rel-link'));
      symlinkSync('/nonexistent/target', p('tree', 'dangling'));
      symlinkSync('sub', p('tree', 'dir-link'));
      await env.fs.copy(p('tree'), p('copy'), { recursive: true });
      assert.equal(readFileSync(p('copy', 'sub', 'f'), 'utf8'), 'f');
      assert.equal(readFileSync(p('copy', 'empty'), 'utf8'), '');
      assert.equal(readlinkSync(p('copy', 'rel-link')), 'sub/f');
      assert.equal(readlinkSync(p('copy', 'dangling')), '/nonexistent/target');
      assert.equal(readlinkSync(p('copy', 'dir-link')), 'sub');
      await writeFile(p('tree', 'added'), 'new');
      await writeFile(p('copy', 'sub', 'f'), 'changed');
      await writeFile(p('copy', 'only-in-copy'), 'kept');
      await env.fs.copy(p('tree'), p('copy'), { recursive: true });
      assert.equal(readFileSync(p('copy', 'added'), 'utf8'), 'new');
      assert.equal(readFileSync(p('copy', 'sub', 'f'), 'utf8'), 'f', 'merge overwrites');
      assert.equal(readFileSync(p('copy', 'only-in-copy'), 'utf8'), 'kept');
      symlinkSync('src.txt', p('top-link'));
      await env.fs.copy(p('top-link'), p('top-link-copy'), { recursive: false });
      assert.equal(readlinkSync(p('top-link-copy')), 'src.txt');
    });

    it('refuses the copy errors of docs/protocol.md §10, and never truncates a file copied onto itself', async () => {
      await writeFile(p('f'), 'precious');
      await mkdir(p('d', 'inner'), { recursive: true });
      await rejectsWith(env.fs.copy(p('missing'), p('x'), { recursive: false }), -32004, ENOENT);
      await rejectsWith(env.fs.copy(p('f'), p('nodir', 'x'), { recursive: false }), -32004, ENOENT);
      await rejectsWith(env.fs.copy(p('f'), p('d'), { recursive: false }), -32603, 'Is a directory (os error 21)');
      await rejectsWith(
        env.fs.copy(p('d'), p('e'), { recursive: false }),
        -32600,
        'fs/copy requires recursive: true when sourcePath is a directory',
      );
      await rejectsWith(
        env.fs.copy(p('d'), p('d', 'inner', 'x'), { recursive: true }),
        -32600,
        'fs/copy cannot copy a directory to itself or one of its descendants',
      );
      await rejectsWith(
        env.fs.copy(p('d'), p('d'), { recursive: true }),
        -32600,
        'fs/copy cannot copy a directory to itself or one of its descendants',
      );
      await rejectsWith(env.fs.copy(p('f'), p('f'), { recursive: false }), -32600, /onto itself/);
      symlinkSync('f', p('alias'));
      await rejectsWith(env.fs.copy(p('f'), p('alias'), { recursive: false }), -32600, /onto itself/);
      await rejectsWith(env.fs.copy(p('f'), `${root}/d/../f`, { recursive: false }), -32600, /onto itself/);
      assert.equal(readFileSync(p('f'), 'utf8'), 'precious', 'the file is intact');
      execFileSync('mkfifo', [p('fifo')]);
      await rejectsWith(
        env.fs.copy(p('fifo'), p('fifo-copy'), { recursive: false }),
        -32600,
        'fs/copy only supports regular files, directories, and symlinks',
      );
    });

    it('copies a small file onto a FIFO without stalling other calls while it waits for a reader', async () => {
      await writeFile(p('small'), 'through the pipe');
      execFileSync('mkfifo', [p('pipe')]);
      // Opening a FIFO for writing waits for a reader: the copy must wait on the thread pool.
      const copying = env.fs.copy(p('small'), p('pipe'), { recursive: false }).then(
        () => 'copied',
        (err: Error) => err.message,
      );
      assert.equal((await env.fs.getMetadata(p('small'))).size, 16, 'answered while the copy waits');
      const reader = readFile(p('pipe'), 'utf8');
      // Node's copy then refuses the FIFO (EINVAL); what matters is that it settles.
      assert.match(await copying, /^(copied|Invalid argument \(os error 22\))$/);
      await reader;
    });

    it('canonicalizes and renames (extensions)', async () => {
      await mkdir(p('real'));
      symlinkSync('real', p('alias'));
      assert.equal(await env.fs.canonicalize(p('alias')), await (await import('node:fs/promises')).realpath(p('real')));
      await rejectsWith(env.fs.canonicalize(p('missing')), -32004, ENOENT);
      await writeFile(p('from'), 'moved');
      await env.fs.rename(p('from'), p('real', 'to'));
      assert.equal(readFileSync(p('real', 'to'), 'utf8'), 'moved');
      assert.equal(existsSync(p('from')), false);
      await rejectsWith(env.fs.rename(p('from'), p('x')), -32004, ENOENT);
    });

    it('reads and writes in blocks through handles', async () => {
      const data = Buffer.from(Array.from({ length: 100_000 }, (_, i) => i % 251));
      const w = await env.fs.open(p('big'), 'write');
      await env.fs.writeBlock(w, 0, data.subarray(0, 60_000));
      await env.fs.writeBlock(w, 60_000, data.subarray(60_000));
      await env.fs.close(w);
      assert.deepEqual(await readFile(p('big')), data);
      const r = await env.fs.open(p('big'), 'read');
      const first = await env.fs.readBlock(r, 0, 65_536);
      assert.equal(first.data.length, 65_536);
      assert.equal(first.eof, false);
      const second = await env.fs.readBlock(r, 65_536, 65_536);
      assert.equal(second.data.length, 100_000 - 65_536);
      assert.equal(second.eof, true);
      assert.deepEqual(Buffer.concat([first.data, second.data]), data);
      const exact = await env.fs.readBlock(r, 100_000 - 10, 10);
      assert.equal(exact.eof, true);
      await rejectsWith(env.fs.writeBlock(r, 0, Buffer.from('x')), -32600, /was not opened for writing/);
      await env.fs.close(r);
      await rejectsWith(env.fs.readBlock(r, 0, 10), -32600, `unknown file handle ${r}`);
      await rejectsWith(env.fs.close(r), -32600, `unknown file handle ${r}`);
      await rejectsWith(env.fs.open(p('missing'), 'read'), -32004, ENOENT);
      await writeFile(p('empty'), '');
      const e = await env.fs.open(p('empty'), 'read');
      assert.deepEqual(await env.fs.readBlock(e, 0, 10), { data: Buffer.alloc(0), eof: true });
      await env.fs.close(e);
    });

    it('bounds open handles per session', async () => {
      await writeFile(p('f'), 'x');
      const handles: string[] = [];
      try {
        for (;;) {
          try {
            handles.push(await env.fs.open(p('f'), 'read'));
          } catch (err) {
            assert.ok(err instanceof RpcError && /too many open file handles/.test(err.message), String(err));
            break;
          }
          assert.ok(handles.length <= 64, 'a bound exists');
        }
      } finally {
        for (const h of handles) await env.fs.close(h);
      }
      assert.equal(handles.length, 64);
    });

    it('watches a tree: create, modify, rename and remove; unwatch stops reporting', async () => {
      await mkdir(p('w', 'sub'), { recursive: true });
      await writeFile(p('w', 'sub', 'existing'), 'x');
      const changes: FsChange[] = [];
      const off = env.fs.subscribeChanges((c) => changes.push(c));
      const watchId = await env.fs.watch(p('w'), { recursive: true });
      const seen = (file: string, kind: FsChange['kind']) =>
        changes.some((c) => c.watchId === watchId && c.path === file && c.kind === kind);
      await writeFile(p('w', 'created.txt'), 'new');
      await eventually(() => seen(p('w', 'created.txt'), 'created'), 5000, 'created');
      await sleep(100);
      await writeFile(p('w', 'sub', 'existing'), 'modified content');
      await eventually(() => seen(p('w', 'sub', 'existing'), 'modified'), 5000, 'modified');
      await sleep(100);
      execFileSync('mv', [p('w', 'created.txt'), p('w', 'renamed.txt')]);
      await eventually(() => seen(p('w', 'created.txt'), 'renamed') && seen(p('w', 'renamed.txt'), 'renamed'), 5000, 'renamed');
      await sleep(100);
      execFileSync('rm', [p('w', 'renamed.txt')]);
      await eventually(() => seen(p('w', 'renamed.txt'), 'removed'), 5000, 'removed');
      await env.fs.unwatch(watchId);
      const count = changes.length;
      await writeFile(p('w', 'after-unwatch'), 'x');
      await sleep(300);
      assert.equal(changes.length, count, 'no events after unwatch');
      off();
      await rejectsWith(env.fs.unwatch(watchId), -32600, `unknown watch id ${watchId}`);
      await rejectsWith(env.fs.watch(p('missing')), -32004, ENOENT);
    });

    it('runs a restricting sandbox in bubblewrap: writes outside the roots fail, inside they work; full-access sandboxes run directly', async () => {
      const sandbox = (wire: unknown): FsCallOptions => ({ sandbox: sandboxFromWire(parseWireSandbox(wire)!) });
      const restricting = sandbox({
        permissions: {
          type: 'managed',
          network: 'restricted',
          file_system: {
            type: 'restricted',
            entries: [
              { path: { type: 'special', value: { kind: 'root' } }, access: 'read' },
              { path: { type: 'path', path: root }, access: 'write' },
            ],
          },
        },
        windowsSandboxLevel: 'disabled',
      });
      await env.fs.writeFile(p('sandboxed.txt'), Buffer.from('x'), restricting);
      assert.equal(readFileSync(p('sandboxed.txt'), 'utf8'), 'x');
      const outsideDir = path.dirname(root);
      await rejectsWith(
        env.fs.writeFile(path.join(outsideDir, `escape-${n}.txt`), Buffer.from('x'), restricting),
        -32603,
        'Read-only file system (os error 30)',
      );
      assert.equal(existsSync(path.join(outsideDir, `escape-${n}.txt`)), false, 'nothing was written outside');
      await rejectsWith(
        env.fs.createDirectory(path.join(outsideDir, `escape-dir-${n}`), {}, restricting),
        -32603,
        'Read-only file system (os error 30)',
      );
      assert.equal(
        (await env.fs.readFile('/etc/hostname', sandbox({ sandboxPolicy: { type: 'read-only' }, windowsSandboxLevel: 'disabled' })))
          .length > 0,
        true,
      );
      await rejectsWith(
        env.fs.writeFile(p('ro.txt'), Buffer.from('x'), sandbox({ sandboxPolicy: { type: 'read-only' }, windowsSandboxLevel: 'disabled' })),
        -32603,
        'Read-only file system (os error 30)',
      );
      for (const full of [
        { permissions: { type: 'disabled' }, windowsSandboxLevel: 'disabled' },
        { permissions: { type: 'external', network: 'restricted' }, windowsSandboxLevel: 'disabled' },
        { permissions: { type: 'managed', network: 'enabled', file_system: { type: 'unrestricted' } }, windowsSandboxLevel: 'disabled' },
        { sandboxPolicy: { type: 'danger-full-access' }, windowsSandboxLevel: 'disabled' },
      ]) {
        await env.fs.writeFile(p('full.txt'), Buffer.from('ok'), sandbox(full));
        assert.equal(readFileSync(p('full.txt'), 'utf8'), 'ok');
      }
      assert.equal(pathToFileURL(root).protocol, 'file:');
    });

    it('resolves project_roots against the 0.171 workspaceRoots (or policyContext) of an fs call', async () => {
      const sandbox = (wire: unknown): FsCallOptions => ({ sandbox: sandboxFromWire(parseWireSandbox(wire)!) });
      const ws = p('roots-ws');
      const extra = p('roots-extra');
      const other = p('roots-other');
      for (const d of [ws, extra, other]) await mkdir(d, { recursive: true });
      const permissions = {
        type: 'managed',
        network: 'restricted',
        file_system: {
          type: 'restricted',
          entries: [
            { path: { type: 'special', value: { kind: 'root' } }, access: 'read' },
            { path: { type: 'special', value: { kind: 'project_roots' } }, access: 'write' },
          ],
        },
      };
      const direct = sandbox({
        permissions,
        cwd: pathToFileURL(ws).href,
        workspaceRoots: [ws, extra].map((d) => pathToFileURL(d).href),
        windowsSandboxLevel: 'disabled',
      });
      const viaContext = sandbox({
        permissions,
        policyContext: { cwd: pathToFileURL(ws).href, workspaceRoots: [pathToFileURL(ws).href, pathToFileURL(extra).href] },
        windowsSandboxLevel: 'disabled',
      });
      for (const [name, options] of [
        ['direct', direct],
        ['context', viaContext],
      ] as const) {
        await env.fs.writeFile(path.join(extra, `${name}.txt`), Buffer.from(name), options);
        assert.equal(readFileSync(path.join(extra, `${name}.txt`), 'utf8'), name, 'an extra workspace root is writable');
        await rejectsWith(
          env.fs.writeFile(path.join(other, `${name}.txt`), Buffer.from('x'), options),
          -32603,
          'Read-only file system (os error 30)',
        );
        assert.equal(existsSync(path.join(other, `${name}.txt`)), false);
      }
    });
  });
}
