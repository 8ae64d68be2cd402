import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { builtinProfile } from '../src/sandbox/builtin-profiles.js';
import type { CordonServer } from '../src/server/index.js';
import { sourcePath } from './built-cli.js';
import { type Json, RawClient, SH_ENV, startServer } from './helpers.js';

/**
 * The 0.142–0.171 additions on the wire (docs/clients.md, docs/protocol-extensions.md), each
 * compared with what the 0.171 reference answered to the same request. Sandbox outcomes are checked
 * on disk: a refused write next to the allowed one.
 */

const uri = (p: string): string => pathToFileURL(p).href;
const special = (kind: string, access: string, extra: Json = {}): Json => ({
  path: { type: 'special', value: { kind, ...extra } },
  access,
});

/** The sandbox the 0.171 CLI sends for `--sandbox workspace-write` (docs/protocol.md §8). */
function workspaceWrite(cwd: string, roots: string[]): Json {
  const carveOut = (name: string): Json => ({ ...special('project_roots', 'read', { subpath: name }), missing_path_behavior: 'skip' });
  return {
    permissions: {
      type: 'managed',
      file_system: {
        type: 'restricted',
        entries: [
          special('root', 'read'),
          special('project_roots', 'write'),
          special('slash_tmp', 'write'),
          special('tmpdir', 'write'),
          ...['.git', '.agents', '.codex', '.aws'].map(carveOut),
        ],
      },
      network: 'restricted',
    },
    cwd: uri(cwd),
    workspaceRoots: roots.map(uri),
    windowsSandboxLevel: 'disabled',
    windowsSandboxProxySettingsMode: 'reconcile',
    useLegacyLandlock: false,
  };
}

/** A scratch tree outside /tmp (the 0.171 workspace profile makes /tmp writable, which would hide a refusal). */
function scratch(prefix: string): { dir: string; cleanup: () => void } {
  const base = path.join(process.env.HOME && existsSync(process.env.HOME) ? process.env.HOME : '/var/tmp', '.cache');
  mkdirSync(base, { recursive: true });
  const dir = mkdtempSync(path.join(base, prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const decode = (chunks: { chunk: string }[]): string => Buffer.concat(chunks.map((c) => Buffer.from(c.chunk, 'base64'))).toString();

describe('0.171 wire: initialize, environmentInfo, environment/info and environment/status', () => {
  let server: CordonServer;
  let url: string;
  before(async () => ({ server, url } = await startServer()));
  after(() => server.close());

  it('answers initialize with environmentInfo in the reference shape, and environment/info with the same object', async () => {
    const c = await RawClient.open(url);
    const init = await c.request('initialize', { clientName: 'codex-environment', resumeSessionId: null });
    assert.deepEqual(Object.keys(init.result), ['sessionId', 'environmentInfo']);
    const info = init.result.environmentInfo;
    assert.deepEqual(Object.keys(info), [
      'shell',
      'executorVersion',
      'providerId',
      'cwd',
      'userHomeDir',
      'platformOs',
      'prependPathDirs',
      'temporaryDirectories',
      'tempDir',
      'capabilities',
    ]);
    const pkg = JSON.parse(readFileSync(sourcePath('package.json'), 'utf8')) as { version: string };
    assert.equal(info.executorVersion, pkg.version);
    assert.match(info.providerId, /^sha256:[0-9a-f]{64}$/);
    assert.equal(info.cwd, uri(process.cwd()));
    assert.match(info.userHomeDir, /^file:\/\/\//);
    assert.equal(info.platformOs, 'linux');
    assert.deepEqual(info.prependPathDirs, []);
    assert.deepEqual(info.temporaryDirectories, []);
    assert.match(info.tempDir, /^file:\/\/\//);
    assert.equal(typeof info.shell.path, 'string');
    for (const v of Object.values(info.capabilities)) assert.equal(typeof v, 'boolean');
    assert.equal(info.capabilities.windowsMxc, false);
    c.send({ method: 'initialized', params: {} });
    for (const params of [null, {}]) {
      const again = await c.request('environment/info', params);
      assert.deepEqual(again.result, info, 'environment/info is the same object, without sessionId');
    }
    assert.deepEqual((await c.request('environment/status', null)).result, { status: 'ready' });
    assert.deepEqual((await c.request('environment/status', {})).result, { status: 'ready' });
    c.close();
  });

  it('keeps providerId stable across servers on the same machine and account', async () => {
    const other = await startServer();
    try {
      const a = await RawClient.open(url);
      const b = await RawClient.open(other.url);
      const ia = await a.request('initialize', { clientName: 'x' });
      const ib = await b.request('initialize', { clientName: 'x' });
      assert.equal(ia.result.environmentInfo.providerId, ib.result.environmentInfo.providerId);
      a.close();
      b.close();
    } finally {
      await other.server.close();
    }
  });

  it('gives environmentInfo again on a resume', async () => {
    const { client: a, sessionId } = await RawClient.ready(url);
    a.ws.terminate();
    await a.closed;
    const b = await RawClient.open(url);
    let init: Json = {};
    // Until the server has noticed the first connection is gone, the session is still attached (-32010).
    for (let i = 0; i < 500; i++) {
      init = await b.request('initialize', { clientName: 'x', resumeSessionId: sessionId });
      if (!init.error || init.error.code !== -32010) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(init.result.sessionId, sessionId);
    assert.equal(typeof init.result.environmentInfo.providerId, 'string');
    b.close();
  });
});

describe('0.171 wire: process/start', () => {
  let server: CordonServer;
  let url: string;
  let c: RawClient;
  let tmp: { dir: string; cleanup: () => void };
  let n = 0;
  before(async () => {
    ({ server, url } = await startServer());
    ({ client: c } = await RawClient.ready(url));
    tmp = scratch('cordon-0171-');
  });
  after(async () => {
    c.close();
    await server.close();
    tmp.cleanup();
  });

  const start = (params: Json): Promise<Json> =>
    c.request('process/start', { processId: `p${++n}`, argv: ['/bin/true'], cwd: uri(tmp.dir), env: SH_ENV, tty: false, ...params });

  it('answers spawn failures with data.kind, as the 0.171 reference', async () => {
    writeFileSync(path.join(tmp.dir, 'not-exec'), 'plain text');
    chmodSync(path.join(tmp.dir, 'not-exec'), 0o644);
    const cases: [Json, number, string, string][] = [
      [{ argv: ['/nonexistent'] }, -32603, 'spawnNotFound', 'No such file or directory (os error 2)'],
      [{ argv: ['no-such-command-anywhere'] }, -32603, 'spawnNotFound', 'No such file or directory (os error 2)'],
      [{ cwd: uri(path.join(tmp.dir, 'missing-dir')) }, -32603, 'spawnNotFound', 'No such file or directory (os error 2)'],
      [{ argv: [tmp.dir] }, -32603, 'spawnPermissionDenied', 'Permission denied (os error 13)'],
      [{ argv: [path.join(tmp.dir, 'not-exec')] }, -32603, 'spawnPermissionDenied', 'Permission denied (os error 13)'],
    ];
    for (const [params, code, kind, message] of cases)
      assert.deepEqual((await start(params)).error, { code, data: { kind }, message }, JSON.stringify(params));
  });

  it('validates metadata as the reference: threadId a UUID, toolCallId a string, both optional', async () => {
    const thread = '01a23c2a-3070-79f0-a528-386924514ac9';
    const ok = [
      { threadId: thread, toolCallId: 'call_t0_0' },
      { threadId: thread },
      {},
      null,
      { threadId: thread.replaceAll('-', '') },
      { threadId: `urn:uuid:${thread}` },
    ];
    for (const metadata of ok) assert.equal((await start({ metadata })).result?.sandboxType, 'none', JSON.stringify(metadata));
    const bad: [unknown, string][] = [
      [
        { threadId: 't', toolCallId: 'x' },
        'invalid character: expected an optional prefix of `urn:uuid:` followed by [0-9a-fA-F-], found `t` at 1',
      ],
      [{ threadId: '0123' }, 'invalid length: expected length 32 for simple format, found 4'],
      [{ threadId: '01a23c2a-3070-79f0-a528-386924514ac' }, 'invalid group length in group 4: expected 12, found 11'],
      [
        { threadId: '01a23c2a-3070-79f0-a528-386924514aZ9' },
        'invalid character: expected an optional prefix of `urn:uuid:` followed by [0-9a-fA-F-], found `Z` at 35',
      ],
      [{ threadId: thread, toolCallId: 3 }, 'invalid type: number, expected a string'],
      ['x', 'invalid type: string "x", expected struct ExecMetadata'],
    ];
    for (const [metadata, message] of bad)
      assert.deepEqual((await start({ metadata })).error, { code: -32602, message }, JSON.stringify(metadata));
  });

  it('accepts the 0.142+ fields it does not act on, and refuses enforceManagedNetwork rather than run unenforced', async () => {
    const accepted = await start({
      enforceManagedNetwork: false,
      managedNetwork: { loopbackPorts: [1], allowLocalBinding: true },
      shellSnapshot: null,
      sandbox: null,
    });
    assert.deepEqual(accepted.result, { processId: `p${n}`, sandboxType: 'none' });
    const marker = path.join(tmp.dir, 'unenforced');
    const refused = await start({ argv: ['/bin/sh', '-c', `touch ${marker}`], enforceManagedNetwork: true, managedNetwork: null });
    assert.equal(refused.error?.code, -32602);
    assert.deepEqual(refused.error?.data, { kind: 'sandboxUnavailable' });
    assert.match(refused.error?.message, /enforceManagedNetwork/);
    assert.equal(existsSync(marker), false, 'nothing ran');
    assert.deepEqual((await start({ enforceManagedNetwork: 'x' })).error, {
      code: -32602,
      message: 'invalid type: string "x", expected a boolean',
    });
  });

  it('refuses windowsSandboxLevel mxc with the reference error and data.kind, and checks the other 0.171 sandbox fields', async () => {
    const sandbox = workspaceWrite(tmp.dir, [tmp.dir]);
    assert.deepEqual((await start({ sandbox: { ...sandbox, windowsSandboxLevel: 'mxc' } })).error, {
      code: -32602,
      data: { kind: 'sandboxUnavailable' },
      message: 'native MXC is unavailable on this executor',
    });
    for (const level of ['restricted-token', 'elevated'])
      assert.equal((await start({ sandbox: { ...sandbox, windowsSandboxLevel: level } })).result?.sandboxType, 'linuxSeccomp');
    assert.deepEqual((await start({ sandbox: { ...sandbox, windowsSandboxProxySettingsMode: 'bogus' } })).error, {
      code: -32602,
      message: 'unknown variant `bogus`, expected `reconcile` or `preserve`',
    });
    assert.equal(
      (
        await start({
          sandbox: { ...sandbox, windowsSandboxProxySettingsMode: 'preserve', windowsSandboxPrivateDesktop: { any: 'thing' } },
        })
      ).result?.sandboxType,
      'linuxSeccomp',
    );
    const withEntry = (entry: Json): Json => ({
      ...sandbox,
      permissions: { ...sandbox.permissions, file_system: { type: 'restricted', entries: [special('root', 'read'), entry] } },
    });
    assert.deepEqual(
      (await start({ sandbox: withEntry({ ...special('project_roots', 'read', { subpath: '.git' }), missing_path_behavior: 'error' }) }))
        .error,
      {
        code: -32602,
        message: 'unknown variant `error`, expected `skip`',
      },
    );
    assert.deepEqual((await start({ sandbox: withEntry(special('bogus', 'read')) })).error, {
      code: -32602,
      message:
        'unknown variant `bogus`, expected one of `root`, `minimal`, `current_working_directory`, `project_roots`, `tmpdir`, `slash_tmp`, `unknown`',
    });
    for (const kind of ['minimal', 'current_working_directory', 'tmpdir', 'slash_tmp'])
      assert.ok((await start({ sandbox: withEntry(special(kind, 'read')) })).result, kind);
    assert.ok(
      (await start({ sandbox: withEntry(special('unknown', 'read', { path: ':cwd' })) })).result,
      'unknown kinds are accepted and ignored',
    );
    assert.deepEqual((await start({ sandbox: { ...sandbox, workspaceRoots: ['relative'] } })).error, {
      code: -32602,
      message: 'path is not absolute: relative',
    });
    const typeErrors: [Json, string][] = [
      [{ useLegacyLandlock: 'x' }, 'invalid type: string "x", expected a boolean'],
      [{ workspaceRoots: 'x' }, 'invalid type: string "x", expected a sequence'],
      [{ policyContext: { cwd: 5 } }, 'invalid type: number, expected a string'],
      [{ userHomeDir: 5 }, 'invalid type: number, expected a string'],
    ];
    for (const [extra, message] of typeErrors)
      assert.deepEqual((await start({ sandbox: { ...sandbox, ...extra } })).error, { code: -32602, message }, JSON.stringify(extra));
  });

  it('reports sandboxType linuxSeccomp for any start with a sandbox (even one asking for nothing), none without', async () => {
    assert.equal((await start({ sandbox: workspaceWrite(tmp.dir, [tmp.dir]) })).result.sandboxType, 'linuxSeccomp');
    assert.equal(
      (await start({ sandbox: { permissions: { type: 'disabled' }, windowsSandboxLevel: 'disabled' } })).result.sandboxType,
      'linuxSeccomp',
    );
    assert.equal((await start({})).result.sandboxType, 'none');
    assert.equal((await start({ sandbox: null })).result.sandboxType, 'none');
  });

  /** Runs `sh -c script` and returns its exited notification and a full read. */
  async function outcome(script: string, sandbox: Json | null): Promise<{ exited: Json; read: Json }> {
    const processId = `d${++n}`;
    const res = await c.request('process/start', {
      processId,
      argv: ['/bin/sh', '-c', script],
      cwd: uri(tmp.dir),
      env: SH_ENV,
      tty: false,
      sandbox,
    });
    assert.ok(res.result, JSON.stringify(res));
    const notes = await c.untilClosed(processId);
    const exited = notes.find((m) => m.method === 'process/exited')!;
    const read = (await c.request('process/read', { processId, afterSeq: null, maxBytes: null, waitMs: 0 })).result;
    return { exited: exited.params, read };
  }

  it('sets sandboxDenied by the reference rule, on process/exited and in process/read', async () => {
    const sb = workspaceWrite(tmp.dir, [tmp.dir]);
    const outside = path.join(path.dirname(tmp.dir), `${path.basename(tmp.dir)}-outside-${n}`);
    const denied = await outcome(`echo try; touch ${outside}`, sb);
    assert.equal(existsSync(outside), false, 'the write outside the workspace was refused');
    assert.match(decode(denied.read.chunks), /Read-only file system|Permission denied/);
    assert.deepEqual(Object.keys(denied.exited), ['processId', 'seq', 'exitCode', 'sandboxDenied']);
    assert.equal(denied.exited.sandboxDenied, true);
    assert.equal(denied.read.sandboxDenied, true);
    assert.deepEqual(Object.keys(denied.read), ['chunks', 'nextSeq', 'exited', 'exitCode', 'closed', 'failure', 'sandboxDenied']);
    // The allowed twin: the same write inside the workspace works and is no denial.
    const inside = await outcome(`touch ${path.join(tmp.dir, 'inside')}`, sb);
    assert.equal(existsSync(path.join(tmp.dir, 'inside')), true);
    assert.equal(inside.exited.sandboxDenied, false);
    const cases: [string, Json | null, boolean][] = [
      ['echo Permission Denied >&2; exit 1', sb, true],
      ['echo "operation not permitted"; exit 126', sb, true],
      ['echo landlock; exit 137', sb, true],
      ['printf "read-only fi"; sleep 0.2; printf "le system"; exit 1', sb, true],
      ['exit 159', sb, true],
      ['echo permission denied; exit 0', sb, false],
      ['echo PERMISSION; echo " DENIED"; exit 1', sb, false],
      ['echo EPERM; exit 1', sb, false],
      ['kill -9 $$', sb, false],
      ['exit 126', sb, false],
      ['echo permission denied; exit 1', null, false],
    ];
    for (const [script, sandbox, expected] of cases) {
      const o = await outcome(script, sandbox);
      assert.equal(o.exited.sandboxDenied, expected, `${script} (${sandbox ? 'sandboxed' : 'unsandboxed'})`);
      assert.equal(o.read.sandboxDenied, expected, script);
    }
  });
});

describe('0.171 wire: the sandbox object is enforced (workspaceRoots, --add-dir, carve-outs, URIs, policyContext)', () => {
  let tmp: { dir: string; cleanup: () => void };
  let ws: string;
  let extra: string;
  let elsewhere: string;
  let n = 0;
  before(() => {
    tmp = scratch('cordon-roots-');
    ws = path.join(tmp.dir, 'ws');
    extra = path.join(tmp.dir, 'extra');
    elsewhere = path.join(tmp.dir, 'elsewhere');
    for (const d of [ws, extra, elsewhere, path.join(ws, '.git'), path.join(ws, '.aws')]) mkdirSync(d, { recursive: true });
    writeFileSync(path.join(ws, '.git', 'HEAD'), 'ref: refs/heads/main\n');
    writeFileSync(path.join(ws, '.aws', 'credentials'), '[default]\n');
  });
  after(() => tmp.cleanup());

  async function run(url: string, script: string, sandbox: Json): Promise<{ code: number; out: string }> {
    const { client: c } = await RawClient.ready(url);
    try {
      const processId = `r${++n}`;
      const res = await c.request('process/start', {
        processId,
        argv: ['/bin/sh', '-c', script],
        cwd: uri(ws),
        env: SH_ENV,
        tty: false,
        sandbox,
      });
      assert.ok(res.result, JSON.stringify(res.error));
      const notes = await c.untilClosed(processId);
      const out = decode(notes.filter((m) => m.method === 'process/output').map((m) => m.params));
      return { code: notes.find((m) => m.method === 'process/exited')!.params.exitCode, out };
    } finally {
      c.close();
    }
  }

  it('without a ceiling: every workspace root is writable (--add-dir), nothing else, and .git/.aws stay read-only', async () => {
    const { server, url } = await startServer();
    try {
      const sb = workspaceWrite(ws, [ws, extra]);
      const r = await run(
        url,
        `touch ${ws}/a ${extra}/b; touch ${elsewhere}/c; echo x >> ${ws}/.git/HEAD; echo x >> ${ws}/.aws/credentials; exit 0`,
        sb,
      );
      assert.equal(existsSync(path.join(ws, 'a')), true, r.out);
      assert.equal(existsSync(path.join(extra, 'b')), true, `the --add-dir root is writable: ${r.out}`);
      assert.equal(existsSync(path.join(elsewhere, 'c')), false, 'not a workspace root: refused');
      assert.equal(readFileSync(path.join(ws, '.git', 'HEAD'), 'utf8'), 'ref: refs/heads/main\n', '.git stays read-only');
      assert.equal(readFileSync(path.join(ws, '.aws', 'credentials'), 'utf8'), '[default]\n', '.aws stays read-only');
      // Without workspaceRoots (a 0.142–0.146 client), project_roots is the cwd alone.
      const { workspaceRoots: _, ...old } = sb;
      await run(url, `touch ${ws}/old-a ${extra}/old-b`, old);
      assert.equal(existsSync(path.join(ws, 'old-a')), true);
      assert.equal(existsSync(path.join(extra, 'old-b')), false);
      // Entry paths as URIs (0.171) and plain (older clients) both work.
      for (const [name, p] of [
        ['uri', uri(elsewhere)],
        ['plain', elsewhere],
      ] as const) {
        const entries = [special('root', 'read'), { path: { type: 'path', path: p }, access: 'write' }];
        await run(url, `touch ${elsewhere}/${name}`, {
          ...sb,
          permissions: { type: 'managed', network: 'restricted', file_system: { type: 'restricted', entries } },
        });
        assert.equal(existsSync(path.join(elsewhere, name)), true, name);
      }
    } finally {
      await server.close();
    }
  });

  it('under a ceiling: an extra root is writable only when the ceiling covers it (cordon serve --workspace)', async () => {
    const narrow = await startServer({
      environment: { ceiling: { profile: builtinProfile(':workspace'), cwd: ws, workspaceRoots: [ws], name: ':workspace' } },
    });
    try {
      await run(narrow.url, `touch ${ws}/n-a ${extra}/n-b`, workspaceWrite(ws, [ws, extra]));
      assert.equal(existsSync(path.join(ws, 'n-a')), true);
      assert.equal(existsSync(path.join(extra, 'n-b')), false, 'the ceiling does not cover the extra root: refused');
    } finally {
      await narrow.server.close();
    }
    const wide = await startServer({
      environment: { ceiling: { profile: builtinProfile(':workspace'), cwd: ws, workspaceRoots: [ws, extra], name: ':workspace' } },
    });
    try {
      await run(wide.url, `touch ${ws}/w-a ${extra}/w-b ${elsewhere}/w-c`, workspaceWrite(ws, [ws, extra]));
      assert.equal(existsSync(path.join(ws, 'w-a')), true);
      assert.equal(existsSync(path.join(extra, 'w-b')), true, 'covered by --workspace: writable');
      assert.equal(existsSync(path.join(elsewhere, 'w-c')), false);
    } finally {
      await wide.server.close();
    }
  });

  it('fs calls honour workspaceRoots, or those of policyContext, as 0.171 apply_patch sends them', async () => {
    const { server, url } = await startServer();
    const { client: c } = await RawClient.ready(url);
    try {
      const write = (p: string, sandbox: Json) => c.request('fs/writeFile', { path: uri(p), dataBase64: 'eA==', sandbox });
      const sb = workspaceWrite(ws, [ws, extra]);
      assert.deepEqual((await write(path.join(extra, 'fs-b'), sb)).result, {});
      assert.ok((await write(path.join(elsewhere, 'fs-c'), sb)).error, 'outside every root: refused');
      assert.equal(existsSync(path.join(elsewhere, 'fs-c')), false);
      const { cwd: _c, workspaceRoots: _w, ...bare } = sb;
      const viaContext = { ...bare, policyContext: { cwd: uri(ws), workspaceRoots: [uri(ws), uri(extra)] }, userHomeDir: uri(tmp.dir) };
      assert.deepEqual((await write(path.join(extra, 'fs-ctx'), viaContext)).result, {});
      assert.ok((await write(path.join(ws, '.aws', 'credentials'), viaContext)).error, '.aws under a root stays read-only');
      assert.equal(readFileSync(path.join(ws, '.aws', 'credentials'), 'utf8'), '[default]\n');
      const read = await c.request('fs/readFile', { path: uri(path.join(extra, 'fs-b')), sandbox: { ...sb, policyContext: {} } });
      assert.deepEqual(read.result, { dataBase64: 'eA==' }, '{} is a valid policyContext');
    } finally {
      c.close();
      await server.close();
    }
  });
});

describe('0.171 wire: paths and texts per client generation', () => {
  let server: CordonServer;
  let url: string;
  let tmp: { dir: string; cleanup: () => void };
  before(async () => {
    ({ server, url } = await startServer());
    tmp = scratch('cordon-gen-');
  });
  after(async () => {
    await server.close();
    tmp.cleanup();
  });

  it('answers a URI request with URIs and the 0.142+ texts, a plain one with plain paths and the 0.141 texts', async () => {
    const { client: c } = await RawClient.ready(url);
    const real = realpathSync(tmp.dir);
    assert.deepEqual((await c.request('fs/canonicalize', { path: uri(tmp.dir) })).result, { path: uri(real) });
    assert.deepEqual((await c.request('fs/canonicalize', { path: tmp.dir })).result, { path: real });
    assert.deepEqual((await c.request('fs/readFile', { path: uri(tmp.dir) })).error, {
      code: -32600,
      message: `path \`${tmp.dir}\` is not a file`,
    });
    assert.deepEqual((await c.request('fs/readFile', { path: tmp.dir })).error, { code: -32603, message: 'Is a directory (os error 21)' });
    assert.deepEqual((await c.request('fs/getMetadata', { path: uri(path.join(tmp.dir, 'missing')) })).error, {
      code: -32004,
      message: 'No such file or directory (os error 2)',
    });
    c.close();
  });
});
