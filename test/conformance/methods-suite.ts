import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { FsEntry } from '../../src/environment/permissions.js';
import type { Environment, FsCallOptions, HttpBodyDelta, HttpRequest, WalkOptions } from '../../src/environment/types.js';
import type { LocalEnvironmentOptions } from '../../src/local/options.js';
import { RpcError } from '../../src/protocol/errors.js';
import { eventually, sleep, tempDir } from '../helpers.js';
import type { EnvironmentFixture } from './process-suite.js';

const ENOENT = 'No such file or directory (os error 2)';

const rejectsWith = async (promise: Promise<unknown>, code: number, message: string | RegExp): Promise<void> => {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof RpcError, `expected an RpcError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
};

const special = (kind: 'root' | 'project_roots', access: FsEntry['access']): FsEntry => ({ path: { type: 'special', kind }, access });
const exact = (p: string, access: FsEntry['access']): FsEntry => ({ path: { type: 'path', path: p }, access });
const sandboxed = (cwd: string, entries: FsEntry[]): FsCallOptions => ({
  sandbox: { profile: { enforcement: 'managed', network: 'restricted', fileSystem: { kind: 'restricted', entries } }, cwd },
});

/** A local HTTP server for http/request: echo, redirects, a never-ending body, a hanging answer, a large body. */
async function startUpstream(): Promise<{ base: string; closedSockets: () => number; close: () => Promise<void> }> {
  let closed = 0;
  const server = http.createServer((req, res) => {
    const body: Buffer[] = [];
    req.on('data', (d: Buffer) => body.push(d));
    req.on('end', () => {
      const url = req.url ?? '/';
      if (url === '/redirect') return void res.writeHead(302, { location: '/echo' }).end('moved');
      if (url === '/loop') return void res.writeHead(302, { location: '/loop' }).end();
      if (url === '/hang') return; // never answers
      if (url === '/endless') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('first\n');
        return; // never ends
      }
      if (url.startsWith('/big/')) {
        const size = Number(url.slice(5));
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        const data = Buffer.alloc(size);
        for (let i = 0; i < size; i++) data[i] = i % 251;
        return void res.end(data);
      }
      res.setHeader('x-multi', ['a', 'b']);
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ method: req.method, url, headers: req.rawHeaders, body: Buffer.concat(body).toString('utf8') }));
    });
    req.socket.on('close', () => closed++);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    closedSockets: () => closed,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

export interface MethodsFixtureOptions {
  environment: Partial<LocalEnvironmentOptions>;
}

/**
 * The methods today's Codex CLI (0.143–0.171) added, for any Environment: fs/walk, fs/watchMissing,
 * client-named file handles, environmentConfig/read, http/request.
 */
export function methodsConformance(name: string, makeFixture: (options: MethodsFixtureOptions) => Promise<EnvironmentFixture>): void {
  describe(`0.171 methods conformance: ${name}`, () => {
    let fx: EnvironmentFixture;
    let env: Environment;
    let tmp: { dir: string; cleanup: () => Promise<void> };
    let codexHome: string;
    let requirementsFile: string;
    let upstream: Awaited<ReturnType<typeof startUpstream>>;
    let root: string;
    let n = 0;
    const p = (...parts: string[]): string => path.join(root, ...parts);

    before(async () => {
      tmp = await tempDir('cordon-methods-');
      codexHome = path.join(tmp.dir, 'codex-home');
      mkdirSync(codexHome);
      requirementsFile = path.join(tmp.dir, 'etc-codex', 'requirements.toml');
      upstream = await startUpstream();
      fx = await makeFixture({
        environment: { codexHome, requirementsFile, serverEnv: { ...process.env, CORDON_TEST_TOKEN: 's3cret', PATH: process.env.PATH } },
      });
      env = fx.env;
    });
    after(async () => {
      await fx.cleanup();
      await upstream.close();
      await tmp.cleanup();
    });
    beforeEach(() => {
      root = path.join(tmp.dir, `case-${++n}`);
      mkdirSync(root);
    });

    describe('fs/walk', () => {
      const options = (o: Partial<WalkOptions> = {}): WalkOptions => ({
        maxDepth: 5,
        maxDirectories: 100,
        maxEntries: 100,
        followDirectorySymlinks: false,
        pruneHiddenDirectories: false,
        ...o,
      });
      const tree = (): void => {
        for (const d of ['a/b', '.hidden/x', 'c']) mkdirSync(p(d), { recursive: true });
        writeFileSync(p('f1'), '1');
        writeFileSync(p('a', 'f2'), '2');
        writeFileSync(p('a', 'b', 'f3'), '3');
        writeFileSync(p('.hidden', 'x', 'f4'), '4');
        symlinkSync(p('a'), p('linkdir'));
        symlinkSync(p('f1'), p('linkfile'));
        symlinkSync(p('nowhere'), p('broken'));
      };
      const rel = (entries: { path: string; kind: string }[]): string[] =>
        entries.map((e) => `${path.relative(root, e.path)}:${e.kind[0]}`);

      it('lists breadth-first, names sorted per directory; links to files and broken links are left out', async () => {
        tree();
        const r = await env.fs.walk(root, options());
        assert.deepEqual(rel(r.entries), [
          '.hidden:d',
          'a:d',
          'c:d',
          'f1:f',
          '.hidden/x:d',
          'a/b:d',
          'a/f2:f',
          '.hidden/x/f4:f',
          'a/b/f3:f',
        ]);
        assert.deepEqual(r.errors, []);
        assert.equal(r.truncated, false);
      });

      it('follows directory links only when asked, and reads a directory once however it is reached', async () => {
        tree();
        const r = await env.fs.walk(root, options({ followDirectorySymlinks: true }));
        assert.ok(rel(r.entries).includes('linkdir:d'));
        assert.ok(!rel(r.entries).some((e) => e.startsWith('linkdir/')), 'the target was already walked as a');
        assert.ok(!rel(r.entries).includes('linkfile:f'));
        assert.deepEqual(await env.fs.walk(p('linkdir'), options()), { entries: [], errors: [], truncated: false });
        const viaLink = await env.fs.walk(p('linkdir'), options({ followDirectorySymlinks: true }));
        assert.deepEqual(
          viaLink.entries.map((e) => path.relative(p('linkdir'), e.path)),
          ['b', 'f2', path.join('b', 'f3')],
        );
      });

      it('prunes hidden directories, honours depth, entry and directory limits', async () => {
        tree();
        assert.deepEqual(rel((await env.fs.walk(root, options({ pruneHiddenDirectories: true }))).entries), [
          '.hidden:d',
          'a:d',
          'c:d',
          'f1:f',
          'a/b:d',
          'a/f2:f',
          'a/b/f3:f',
        ]);
        const shallow = await env.fs.walk(root, options({ maxDepth: 0 }));
        assert.deepEqual(rel(shallow.entries), ['.hidden:d', 'a:d', 'c:d', 'f1:f']);
        assert.equal(shallow.truncated, false, 'the depth limit does not truncate');
        assert.equal((await env.fs.walk(root, options({ maxDepth: 1 }))).entries.length, 7);
        const three = await env.fs.walk(root, options({ maxEntries: 3 }));
        assert.deepEqual(rel(three.entries), ['.hidden:d', 'a:d', 'c:d']);
        assert.equal(three.truncated, true);
        const oneDir = await env.fs.walk(root, options({ maxDirectories: 1 }));
        assert.deepEqual(rel(oneDir.entries), ['.hidden:d', 'a:d', 'c:d', 'f1:f']);
        assert.equal(oneDir.truncated, true);
        const twoDirs = await env.fs.walk(root, options({ maxDirectories: 2 }));
        assert.deepEqual(rel(twoDirs.entries), ['.hidden:d', 'a:d', 'c:d', 'f1:f', '.hidden/x:d']);
      });

      it('refuses zero limits and a missing root; a file as root lists nothing', async () => {
        writeFileSync(p('file'), 'x');
        await rejectsWith(env.fs.walk(root, options({ maxEntries: 0 })), -32600, 'filesystem walk limits must be greater than zero');
        await rejectsWith(env.fs.walk(root, options({ maxDirectories: 0 })), -32600, 'filesystem walk limits must be greater than zero');
        await rejectsWith(env.fs.walk(p('missing'), options()), -32004, ENOENT);
        assert.deepEqual(await env.fs.walk(p('file'), options()), { entries: [], errors: [], truncated: false });
      });

      it('runs a sandboxed walk in the sandbox: a denied directory is an error entry, its contents stay unlisted', async () => {
        mkdirSync(p('open'));
        mkdirSync(p('private'));
        writeFileSync(p('open', 'visible'), 'v');
        writeFileSync(p('private', 'secret'), 's');
        const sb = sandboxed(root, [special('root', 'read'), exact(p('private'), 'deny')]);
        const r = await env.fs.walk(root, options(), sb);
        assert.ok(rel(r.entries).includes('open/visible:f'), JSON.stringify(r));
        assert.ok(!rel(r.entries).includes('private/secret:f'), 'the denied file is not listed');
        assert.deepEqual(r.errors, [{ path: p('private'), message: 'Permission denied (os error 13)' }]);
        const plain = await env.fs.walk(root, options());
        assert.ok(rel(plain.entries).includes('private/secret:f'), 'without the sandbox it is');
      });
    });

    describe('fs/watchMissing', () => {
      let fired: number[];
      let off: () => void;
      let nextId = 1000 * n;
      beforeEach(() => {
        fired = [];
        off = env.fs.subscribeMissingChanged((id) => fired.push(id));
        nextId = 1000 * n;
      });
      const done = (): void => off();

      it('fires once when a missing path appears, and once when a missing ancestor appears', async () => {
        try {
          const id = ++nextId;
          assert.equal(await env.fs.watchMissing(id, [p('x')], null), true);
          writeFileSync(p('x'), 'x');
          await eventually(() => fired.includes(id), 10_000, 'fs/missingChanged for x');
          const deep = ++nextId;
          assert.equal(await env.fs.watchMissing(deep, [p('a', 'b', 'c')], null), true);
          mkdirSync(p('a'));
          await eventually(() => fired.includes(deep), 10_000, 'fs/missingChanged for an ancestor');
          rmSync(p('x'));
          writeFileSync(p('x'), 'again');
          await sleep(200);
          assert.deepEqual(fired, [id, deep], 'one-shot: nothing more');
        } finally {
          done();
        }
      });

      it('fires when present is modified or removed, not for a new file inside a present directory', async () => {
        try {
          writeFileSync(p('present'), 'p');
          const id = ++nextId;
          assert.equal(await env.fs.watchMissing(id, [p('never')], p('present')), true);
          appendFileSync(p('present'), 'more');
          await eventually(() => fired.includes(id), 10_000, 'modified present');
          mkdirSync(p('dir'));
          const dirId = ++nextId;
          assert.equal(await env.fs.watchMissing(dirId, [p('never')], p('dir')), true);
          writeFileSync(p('dir', 'inside'), 'x');
          await sleep(300);
          assert.ok(!fired.includes(dirId), 'a new file inside present does not fire');
          rmSync(p('dir'), { recursive: true });
          await eventually(() => fired.includes(dirId), 10_000, 'removed present');
        } finally {
          done();
        }
      });

      it('answers watching:false for nothing to watch, an existing path, a missing present, a path under a file, too many paths, and a stale watchId', async () => {
        try {
          writeFileSync(p('file'), 'f');
          const base = ++nextId + 10;
          assert.equal(await env.fs.watchMissing(base, [], null), false);
          assert.equal(await env.fs.watchMissing(base + 1, [p('file')], null), false);
          assert.equal(await env.fs.watchMissing(base + 2, [p('m')], p('not-there')), false);
          assert.equal(await env.fs.watchMissing(base + 3, [p('file', 'sub')], null), false);
          assert.equal(
            await env.fs.watchMissing(
              base + 4,
              Array.from({ length: 65 }, (_, i) => p(`m${i}`)),
              null,
            ),
            false,
          );
          assert.equal(
            await env.fs.watchMissing(
              base + 5,
              Array.from({ length: 64 }, (_, i) => p(`m${i}`)),
              null,
            ),
            true,
            '64 paths are fine',
          );
          assert.equal(await env.fs.watchMissing(base + 5, [p('other')], null), false, 'the same id again');
          assert.equal(await env.fs.watchMissing(base + 4, [p('other')], null), false, 'a smaller id');
          writeFileSync(p('m63'), 'x');
          await eventually(() => fired.includes(base + 5), 10_000, 'the current watch still fires');
          // A larger id replaces the watch even when it answers false: the old one no longer fires.
          assert.equal(await env.fs.watchMissing(base + 6, [p('y')], null), true);
          assert.equal(await env.fs.watchMissing(base + 7, [p('file')], null), false);
          writeFileSync(p('y'), 'y');
          await sleep(300);
          assert.ok(!fired.includes(base + 6));
        } finally {
          done();
        }
      });
    });

    describe('client-named file handles (fs/open with handleId)', () => {
      it('reads in blocks; eof once a block reaches the end; reading past the end is empty', async () => {
        writeFileSync(p('F'), 'hello world\n0123456789\n');
        await env.fs.openFile('h1', p('F'), 'read');
        assert.deepEqual(await env.fs.readFileBlock('h1', 0, 5), { data: Buffer.from('hello'), eof: false });
        const rest = await env.fs.readFileBlock('h1', 6, 100);
        assert.equal(rest.data.toString(), 'world\n0123456789\n');
        assert.equal(rest.eof, true);
        assert.deepEqual(await env.fs.readFileBlock('h1', 1000, 10), { data: Buffer.alloc(0), eof: true });
        await env.fs.closeFile('h1');
      });

      it('replace truncates at open and writes at offsets (gaps are zeros)', async () => {
        writeFileSync(p('G'), 'old content that is long');
        await env.fs.openFile('w', p('G'), 'replace');
        assert.equal(readFileSync(p('G'), 'utf8'), '', 'truncated at open');
        await env.fs.writeFileBlock('w', 5, Buffer.from('abc'));
        await env.fs.writeFileBlock('w', 0, Buffer.from('xy'));
        await env.fs.closeFile('w');
        assert.deepEqual(readFileSync(p('G')), Buffer.from('xy\0\0\0abc'));
        await env.fs.openFile('new', p('created'), 'replace');
        await env.fs.closeFile('new');
        assert.equal(readFileSync(p('created'), 'utf8'), '');
      });

      it('words every refusal like the reference', async () => {
        writeFileSync(p('F'), 'data');
        await env.fs.openFile('r', p('F'), 'read');
        await rejectsWith(env.fs.openFile('r', p('F'), 'read'), -32600, 'file handle `r` already exists');
        await rejectsWith(env.fs.readFileBlock('r', 0, 0), -32600, 'file read block length must be between 1 and 1048576');
        await rejectsWith(env.fs.readFileBlock('r', 0, 1048577), -32600, 'file read block length must be between 1 and 1048576');
        await rejectsWith(env.fs.writeFileBlock('r', 0, Buffer.from('x')), -32603, 'Bad file descriptor (os error 9)');
        await env.fs.openFile('w', p('W'), 'replace');
        await rejectsWith(env.fs.readFileBlock('w', 0, 5), -32603, 'Bad file descriptor (os error 9)');
        await rejectsWith(env.fs.writeFileBlock('w', 0, Buffer.alloc(0)), -32600, 'file write block length must be between 1 and 1048576');
        await rejectsWith(
          env.fs.writeFileBlock('w', 0, Buffer.alloc(1048577)),
          -32600,
          'file write block length must be between 1 and 1048576',
        );
        await env.fs.closeFile('r');
        await env.fs.closeFile('w');
        await rejectsWith(env.fs.readFileBlock('r', 0, 5), -32004, 'unknown file handle `r`');
        await rejectsWith(env.fs.writeFileBlock('nope', 0, Buffer.from('x')), -32004, 'unknown file handle `nope`');
        await env.fs.closeFile('r'); // closing an unknown handle is fine
        await rejectsWith(env.fs.openFile('m', p('missing'), 'read'), -32004, ENOENT);
        await rejectsWith(env.fs.openFile('m', p('no', 'parent'), 'replace'), -32004, ENOENT);
        await rejectsWith(env.fs.openFile('d', root, 'read'), -32600, `path \`${root}\` is not a file`);
        await rejectsWith(env.fs.openFile('d', root, 'replace'), -32603, 'Is a directory (os error 21)');
        await env.fs.openFile('m', p('F'), 'read'); // a failed open leaves the id free
        await env.fs.closeFile('m');
      });

      it('allows 128 open handles per session, then refuses with the reference text', async () => {
        writeFileSync(p('F'), 'x');
        const ids = Array.from({ length: 128 }, (_, i) => `many-${i}`);
        try {
          for (const id of ids) await env.fs.openFile(id, p('F'), 'read');
          await rejectsWith(env.fs.openFile('one-more', p('F'), 'read'), -32600, 'at most 128 file handles may be open per connection');
        } finally {
          for (const id of ids) await env.fs.closeFile(id);
        }
        await env.fs.openFile('after', p('F'), 'read');
        await env.fs.closeFile('after');
      });

      it('opens through the sandbox: a read-only profile refuses replace (EROFS), a writable root allows it, a denied file is unreadable', async () => {
        writeFileSync(p('F'), 'readable');
        writeFileSync(p('secret'), 'SECRET');
        const readOnly = sandboxed(root, [special('root', 'read')]);
        await rejectsWith(env.fs.openFile('ro', p('out'), 'replace', readOnly), -32603, 'Read-only file system (os error 30)');
        assert.equal(existsSync(p('out')), false);
        await env.fs.openFile('sr', p('F'), 'read', readOnly);
        assert.deepEqual(await env.fs.readFileBlock('sr', 0, 100), { data: Buffer.from('readable'), eof: true });
        await rejectsWith(env.fs.writeFileBlock('sr', 0, Buffer.from('x')), -32603, 'Bad file descriptor (os error 9)');
        await env.fs.closeFile('sr');
        const writable = sandboxed(root, [special('root', 'read'), special('project_roots', 'write'), exact(p('secret'), 'deny')]);
        await env.fs.openFile('sw', p('out'), 'replace', writable);
        await env.fs.writeFileBlock('sw', 0, Buffer.from('written in the sandbox'));
        await env.fs.closeFile('sw');
        assert.equal(readFileSync(p('out'), 'utf8'), 'written in the sandbox');
        await assert.rejects(
          env.fs.openFile('sx', p('secret'), 'read', writable),
          (err: unknown) => err instanceof RpcError && !err.message.includes('SECRET'),
        );
        await rejectsWith(env.fs.readFileBlock('sx', 0, 10), -32004, 'unknown file handle `sx`');
      });
    });

    describe('environmentConfig/read', () => {
      const read = (cwd: string, configPaths: string[][] = [['mcp_servers']], requirementsPaths: string[][] = []) =>
        env.readConfig({ cwd, configPaths, requirementsPaths });
      const userConfig = (text: string): void => writeFileSync(path.join(codexHome, 'config.toml'), text);

      it('reads the user layer and the trusted project layers, selected keys only', async () => {
        const repo = p('repo');
        mkdirSync(path.join(repo, '.codex'), { recursive: true });
        mkdirSync(path.join(repo, 'sub', '.codex'), { recursive: true });
        execFileSync('git', ['init', '-q', repo]);
        writeFileSync(path.join(repo, '.codex', 'config.toml'), '[mcp_servers.proj]\nurl = "http://127.0.0.1:9/p"\n[other]\nx = 1\n');
        writeFileSync(path.join(repo, 'sub', '.codex', 'config.toml'), '[mcp_servers.sub]\nurl = "http://127.0.0.1:9/s"\n');
        userConfig(
          `model = "m"\n[mcp_servers.foo]\nurl = "http://127.0.0.1:9/mcp"\nbearer_token_env_var = "TOK"\n[mcp_servers.foo.env]\nA = "1"\n[projects."${repo}"]\ntrust_level = "trusted"\n`,
        );
        const r = await read(path.join(repo, 'sub', 'not', 'there'));
        assert.equal(r.codexHomeDir, codexHome);
        assert.equal(typeof r.hostname, 'string');
        assert.ok(path.isAbsolute(r.userHomeDir));
        assert.deepEqual(
          r.config.layers.map((l) => [l.source, l.baseDir]),
          [
            [`user (${path.join(codexHome, 'config.toml')})`, codexHome],
            [`project (${path.join(repo, '.codex', 'config.toml')})`, path.join(repo, '.codex')],
            [`project (${path.join(repo, 'sub', '.codex', 'config.toml')})`, path.join(repo, 'sub', '.codex')],
          ],
        );
        const toml = await import('smol-toml');
        const parse = (text: string): unknown => JSON.parse(JSON.stringify(toml.parse(text)));
        assert.deepEqual(parse(r.config.layers[0]!.toml), {
          mcp_servers: { foo: { url: 'http://127.0.0.1:9/mcp', bearer_token_env_var: 'TOK', env: { A: '1' } } },
        });
        assert.equal(r.config.layers[1]!.toml.includes('other'), false, 'unselected keys are left out');
        assert.equal(r.config.cloudInsertionIndex, 0);
        assert.deepEqual(r.requirements, { layers: [], cloudInsertionIndex: 0 });
        // A path that goes deeper than a layer has: the existing part stays, as an empty table.
        const foo = await read(repo, [['mcp_servers', 'foo']]);
        assert.deepEqual(
          foo.config.layers.map((l) => parse(l.toml)),
          [parse(r.config.layers[0]!.toml), { mcp_servers: {} }],
        );
        assert.equal(foo.config.layers[1]!.toml, '[mcp_servers]\n');
        const two = await read(repo, [['model'], ['other', 'x']]);
        assert.deepEqual(
          two.config.layers.map((l) => parse(l.toml)),
          [{ model: 'm' }, { other: { x: 1 } }],
        );
      });

      it('leaves out untrusted projects and layers without a selected key; reads requirements', async () => {
        const repo = p('repo');
        mkdirSync(path.join(repo, '.codex'), { recursive: true });
        writeFileSync(path.join(repo, '.codex', 'config.toml'), '[mcp_servers.proj]\nurl = "http://x"\n');
        userConfig(`model = "m"\n[projects."${repo}"]\ntrust_level = "untrusted"\n`);
        assert.deepEqual((await read(repo)).config.layers, [], 'an untrusted project and a user layer without mcp_servers');
        userConfig(`[mcp_servers.u]\nurl = "http://u"\n`);
        assert.deepEqual((await read(repo)).config.layers.length, 1, 'a project that is not listed is not trusted');
        mkdirSync(path.dirname(requirementsFile), { recursive: true });
        writeFileSync(requirementsFile, '[mcp_servers.required]\nurl = "http://r"\n[other]\ny = 2\n');
        try {
          const r = await read(repo, [['mcp_servers']], [['mcp_servers']]);
          assert.deepEqual(r.requirements.layers, [
            {
              source: `requirements (${requirementsFile})`,
              baseDir: path.dirname(requirementsFile),
              toml: '[mcp_servers.required]\nurl = "http://r"\n',
            },
          ]);
        } finally {
          rmSync(requirementsFile);
        }
      });

      it('refuses requests without paths and malformed config files with clear errors, and keeps serving', async () => {
        userConfig('[mcp_servers.ok]\nurl = "http://ok"\n');
        await rejectsWith(read(root, [], []), -32602, 'at least one config or requirements path is required');
        await rejectsWith(read(root, [[]]), -32602, 'TOML paths must contain at least one key segment');
        userConfig('[mcp_servers\n');
        await rejectsWith(
          read(root),
          -32603,
          new RegExp(
            `^failed to load executor-local config: ${path.join(codexHome, 'config.toml').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `,
          ),
        );
        userConfig(`[projects."${root}"]\ntrust_level = "trusted"\n`);
        mkdirSync(p('.codex'));
        writeFileSync(p('.codex', 'config.toml'), 'x = = 1');
        await rejectsWith(read(root), -32603, /^failed to load executor-local config: Error parsing project config file .*config\.toml: /);
        rmSync(path.join(codexHome, 'config.toml'));
        assert.deepEqual((await read(root)).config.layers, [], 'no user config: nothing, and the untrusted project is not read');
      });
    });

    describe('http/request', () => {
      let deltas: HttpBodyDelta[];
      let off: () => void;
      beforeEach(() => {
        deltas = [];
        off = env.http.subscribeBodyDeltas((d) => deltas.push(d));
      });
      const req = (o: Partial<HttpRequest>): HttpRequest => ({
        method: 'GET',
        url: `${upstream.base}/echo`,
        requestId: `r-${n}-${Math.random()}`,
        headers: [],
        ...o,
      });

      it('sends method, repeated headers, valueEnvVar and body; returns status, repeated headers and body', async () => {
        try {
          const r = await env.http.request(
            req({
              method: 'POST',
              headers: [
                { name: 'X-A', value: '1' },
                { name: 'x-a', value: '2' },
                { name: 'Authorization', value: 'Bearer ', valueEnvVar: 'CORDON_TEST_TOKEN' },
              ],
              body: Buffer.from('hi'),
            }),
          );
          assert.equal(r.status, 201);
          assert.deepEqual(
            r.headers.filter((h) => h.name === 'x-multi'),
            [
              { name: 'x-multi', value: 'a' },
              { name: 'x-multi', value: 'b' },
            ],
          );
          const echo = JSON.parse(r.body.toString()) as { method: string; headers: string[]; body: string };
          assert.equal(echo.method, 'POST');
          assert.equal(echo.body, 'hi');
          const pairs = [];
          for (let i = 0; i < echo.headers.length; i += 2) pairs.push(`${echo.headers[i]!.toLowerCase()}: ${echo.headers[i + 1]}`);
          assert.ok(pairs.includes('x-a: 1') && pairs.includes('x-a: 2'), pairs.join('\n'));
          assert.ok(pairs.includes('authorization: Bearer s3cret'), 'the executor variable is appended');
          assert.deepEqual(deltas, []);
        } finally {
          off();
        }
      });

      it('follows redirects or stops at them; bounds redirect loops', async () => {
        try {
          assert.equal((await env.http.request(req({ url: `${upstream.base}/redirect` }))).status, 201);
          const stopped = await env.http.request(req({ url: `${upstream.base}/redirect`, redirectPolicy: 'stop' }));
          assert.equal(stopped.status, 302);
          assert.equal(stopped.body.toString(), 'moved');
          await rejectsWith(
            env.http.request(req({ url: `${upstream.base}/loop` })),
            -32603,
            /^http\/request failed: error following redirect/,
          );
        } finally {
          off();
        }
      });

      it('refuses bad requests with the reference texts; transport failures and timeouts are -32603', async () => {
        try {
          await rejectsWith(
            env.http.request(req({ headers: [{ name: 'Authorization', value: 'x', valueEnvVar: 'CORDON_NOT_SET_ANYWHERE' }] })),
            -32602,
            'http/request header Authorization requires executor environment variable CORDON_NOT_SET_ANYWHERE',
          );
          await rejectsWith(
            env.http.request(req({ url: 'ftp://127.0.0.1/x' })),
            -32602,
            'http/request only supports http and https URLs, got ftp',
          );
          await rejectsWith(
            env.http.request(req({ url: 'not a url' })),
            -32602,
            'http/request url is invalid: relative URL without a base',
          );
          await rejectsWith(env.http.request(req({ method: 'GE T' })), -32602, 'http/request method is invalid: invalid HTTP method');
          await rejectsWith(
            env.http.request(req({ headers: [{ name: 'a b', value: 'x' }] })),
            -32602,
            'http/request header name is invalid: invalid HTTP header name',
          );
          await rejectsWith(
            env.http.request(req({ headers: [{ name: 'ab', value: 'x\ny' }] })),
            -32602,
            'http/request header value is invalid for ab: failed to parse header value',
          );
          const closed = http.createServer();
          await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
          const port = (closed.address() as AddressInfo).port;
          await new Promise((r) => closed.close(r));
          await rejectsWith(
            env.http.request(req({ url: `http://127.0.0.1:${port}/x` })),
            -32603,
            `http/request failed: error sending request for url (http://127.0.0.1:${port}/x)`,
          );
          await rejectsWith(
            env.http.request(req({ url: `${upstream.base}/hang`, timeoutMs: 200 })),
            -32603,
            `http/request failed: error sending request for url (${upstream.base}/hang)`,
          );
        } finally {
          off();
        }
      });

      it('streams a body as ordered deltas of at most 1 MiB, then a terminal delta', async () => {
        try {
          const size = 3 * 1024 * 1024 + 17;
          const id = `stream-${n}`;
          const r = await env.http.request(req({ url: `${upstream.base}/big/${size}`, requestId: id, streamResponse: true }));
          assert.equal(r.status, 200);
          assert.equal(r.body.length, 0);
          await eventually(() => deltas.some((d) => d.requestId === id && d.done), 30_000, 'the terminal delta');
          const mine = deltas.filter((d) => d.requestId === id);
          assert.deepEqual(
            mine.map((d) => d.seq),
            mine.map((_, i) => i + 1),
          );
          const last = mine[mine.length - 1]!;
          assert.deepEqual({ done: last.done, error: last.error, len: last.data.length }, { done: true, error: null, len: 0 });
          assert.ok(mine.slice(0, -1).every((d) => !d.done && d.data.length > 0 && d.data.length <= 1024 * 1024));
          const body = Buffer.concat(mine.map((d) => d.data));
          assert.equal(body.length, size);
          assert.ok(body.every((b, i) => b === i % 251));
        } finally {
          off();
        }
      });

      it('a never-ending upstream stalls nothing else; a streamed timeout ends with an error delta; a streaming requestId is unique while active', async () => {
        try {
          const endless = `endless-${n}`;
          await env.http.request(req({ url: `${upstream.base}/endless`, requestId: endless, streamResponse: true, timeoutMs: 1500 }));
          await rejectsWith(
            env.http.request(req({ url: `${upstream.base}/endless`, requestId: endless, streamResponse: true })),
            -32602,
            `http/request streamResponse requestId \`${endless}\` is already active`,
          );
          const hanging = env.http.request(req({ url: `${upstream.base}/hang`, timeoutMs: 1500 })).catch((e: unknown) => e);
          assert.equal((await env.http.request(req({}))).status, 201, 'another request goes through meanwhile');
          assert.ok(
            (
              await env.fs.walk(root, {
                maxDepth: 1,
                maxDirectories: 1,
                maxEntries: 1,
                followDirectorySymlinks: false,
                pruneHiddenDirectories: false,
              })
            ).entries.length === 0,
          );
          await eventually(() => deltas.some((d) => d.requestId === endless && d.done), 30_000, 'the endless stream to time out');
          const mine = deltas.filter((d) => d.requestId === endless);
          assert.equal(mine[0]!.data.toString(), 'first\n');
          assert.deepEqual({ done: mine.at(-1)!.done, error: mine.at(-1)!.error }, { done: true, error: 'error decoding response body' });
          assert.ok((await hanging) instanceof RpcError);
        } finally {
          off();
        }
      });
    });
  });
}
