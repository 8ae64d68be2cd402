import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import type { CordonServer } from '../src/server/index.js';
import { RawClient, SH_ENV, startServer } from './helpers.js';

const NO_VARIANT = 'data did not match any variant of untagged enum JSONRPCMessage';

describe('protocol: lifecycle, framing and errors over WebSocket', () => {
  let server: CordonServer;
  let url: string;
  before(async () => ({ server, url } = await startServer()));
  after(() => server.close());

  it('initialize returns a UUIDv4 session id; responses omit jsonrpc and echo ids verbatim', async () => {
    const c = await RawClient.open(url);
    const res = await c.request('initialize', { clientName: 'x', sessionId: 'ignored', extra: 1 });
    assert.match(res.result.sessionId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.ok(!('jsonrpc' in res));
    c.send({ jsonrpc: '2.0', method: 'initialized', params: {} });
    c.send({ jsonrpc: '2.0', id: 'str-id', method: 'environment/info', params: null });
    const info = await c.next((m) => m.id === 'str-id');
    assert.deepEqual(Object.keys(info), ['id', 'result']);
    assert.ok(info.result.shell.path.startsWith('/'));
    c.close();
  });

  it('answers the lifecycle errors of docs/protocol.md §4', async () => {
    const c = await RawClient.open(url);
    const startParams = { processId: 'p', argv: ['true'], cwd: '/tmp', env: {}, tty: false };
    assert.deepEqual((await c.request('process/start', startParams)).error, {
      code: -32600,
      message: 'client must call initialize before using exec methods',
    });
    assert.deepEqual((await c.request('initialize')).error, {
      code: -32602,
      message: 'invalid type: null, expected struct InitializeParams',
    });
    assert.deepEqual((await c.request('initialize', {})).error, { code: -32602, message: 'missing field `clientName`' });
    assert.deepEqual((await c.request('initialize', { clientName: 'x', resumeSessionId: '00000000-0000-0000-0000-000000000000' })).error, {
      code: -32600,
      message: 'unknown session id 00000000-0000-0000-0000-000000000000',
    });
    assert.ok((await c.request('initialize', { clientName: 'x' })).result.sessionId);
    assert.deepEqual((await c.request('process/start', startParams)).error, {
      code: -32600,
      message: 'client must send initialized before using exec methods',
    });
    assert.deepEqual((await c.request('initialize', { clientName: 'x' })).error, {
      code: -32600,
      message: 'initialize may only be sent once per connection',
    });
    c.send({ method: 'initialized' });
    c.send({ method: 'initialized', params: {} });
    assert.deepEqual((await c.request('process/start', startParams)).result, { processId: 'p', sandboxType: 'none' });
    assert.deepEqual((await c.request('no/suchMethod', {})).error, {
      code: -32601,
      message: 'exec-server stub does not implement `no/suchMethod` yet',
    });
    c.close();
  });

  it('answers unparseable input, batches, {} and stray messages with id -1 and stays open', async () => {
    const { client: c } = await RawClient.ready(url);
    c.send('{not json');
    const parse = await c.next((m) => m.id === -1);
    assert.equal(parse.error.code, -32600);
    assert.match(parse.error.message, /^failed to parse websocket JSON-RPC message from exec-server websocket 127\.0\.0\.1:\d+: /);
    for (const bad of ['[]', '[{"id":1,"method":"initialize"}]', '{}', '42', 'null']) {
      const before = c.received.length;
      c.send(bad);
      const err = await c.next((m) => m.id === -1 && c.received.indexOf(m) >= before);
      assert.ok(err.error.message.endsWith(`: ${NO_VARIANT}`), `${bad}: ${err.error.message}`);
    }
    for (const stray of [
      { method: 'process/output', params: {} },
      { id: null, method: 'process/read', params: {} },
      { id: 77, result: {} },
    ]) {
      const before = c.received.length;
      c.send(stray);
      const err = await c.next((m) => m.id === -1 && c.received.indexOf(m) >= before);
      assert.equal(err.error.code, -32600);
    }
    const info = await c.request('environment/info', {});
    assert.ok(info.result, 'the connection is still usable');
    assert.equal(c.closeCode, undefined);
    c.close();
  });

  it('accepts binary frames holding JSON', async () => {
    const { client: c } = await RawClient.ready(url);
    c.ws.send(Buffer.from(JSON.stringify({ id: 5, method: 'environment/info', params: {} })), { binary: true });
    assert.ok((await c.next((m) => m.id === 5)).result.shell);
    c.close();
  });

  it('handles requests concurrently: a long-poll does not delay other requests', async () => {
    const { client: c } = await RawClient.ready(url);
    await c.request('process/start', { processId: 'silent', argv: ['sleep', '30'], cwd: '/tmp', env: SH_ENV, tty: false });
    let pollSettled = false;
    const poll = c.request('process/read', { processId: 'silent', afterSeq: 0, waitMs: 20_000 }).finally(() => {
      pollSettled = true;
    });
    const info = await c.request('environment/info', {});
    const started = await c.request('process/start', { processId: 'quick', argv: ['true'], cwd: '/tmp', env: SH_ENV, tty: false });
    assert.ok(info.result && started.result);
    assert.equal(pollSettled, false, 'other requests were answered only after the long-poll ended');
    await c.request('process/terminate', { processId: 'silent' });
    const polled = await poll;
    assert.deepEqual(polled.result.chunks, []);
    c.close();
  });

  it('sends the process/start response before any notification of that process', async () => {
    const { client: c } = await RawClient.ready(url);
    for (let i = 0; i < 30; i++) {
      const processId = `order-${i}`;
      const res = await c.request('process/start', { processId, argv: ['echo', 'x'], cwd: '/tmp', env: SH_ENV, tty: false });
      const notes = await c.untilClosed(processId);
      const resIndex = c.received.indexOf(res);
      assert.ok(
        notes.every((n) => c.received.indexOf(n) > resIndex),
        `notification before response in run ${i}`,
      );
      assert.deepEqual(
        notes.map((n) => n.method),
        ['process/output', 'process/exited', 'process/closed'],
      );
      assert.deepEqual(notes[0]!.params, { processId, seq: 1, stream: 'stdout', chunk: Buffer.from('x\n').toString('base64') });
      assert.deepEqual(notes[1]!.params, { processId, seq: 2, exitCode: 0, sandboxDenied: false });
      assert.deepEqual(notes[2]!.params, { processId, seq: 3 });
    }
    c.close();
  });

  it('answers the parameter errors of docs/protocol.md §7 in serde wording (§3)', async () => {
    const { client: c } = await RawClient.ready(url);
    const start = (params: unknown) => c.request('process/start', params);
    const base = { processId: 'e', argv: ['true'], cwd: '/tmp', env: {}, tty: false };
    const cases: [unknown, number, string][] = [
      [{ ...base, processId: 123 }, -32602, 'invalid type: number, expected a string'],
      [{ ...base, argv: undefined }, -32602, 'missing field `argv`'],
      [{ ...base, argv: 'ls' }, -32602, 'invalid type: string "ls", expected a sequence'],
      [{ ...base, argv: [] }, -32602, 'argv must not be empty'],
      [{ ...base, env: undefined }, -32602, 'missing field `env`'],
      [{ ...base, tty: undefined }, -32602, 'missing field `tty`'],
      [{ ...base, cwd: 'tmp' }, -32602, 'path is not absolute: tmp'],
      [{ ...base, cwd: '' }, -32602, 'path is not absolute: '],
      [
        { ...base, envPolicy: { inherit: 'bogus', ignoreDefaultExcludes: false, exclude: [], set: {}, includeOnly: [] } },
        -32602,
        'unknown variant `bogus`, expected one of `core`, `all`, `none`',
      ],
      [{ ...base, envPolicy: {} }, -32602, 'missing field `inherit`'],
      [null, -32602, 'invalid type: null, expected struct ExecParams'],
    ];
    for (const [params, code, message] of cases) assert.deepEqual((await start(params)).error, { code, message }, JSON.stringify(params));
    assert.deepEqual((await start({ ...base, processId: 'uri', cwd: 'file:///tmp' })).result, { processId: 'uri', sandboxType: 'none' });
    const read = (params: unknown) => c.request('process/read', params);
    assert.deepEqual((await read({ processId: 'uri', afterSeq: -1 })).error, { code: -32602, message: 'invalid number' });
    assert.deepEqual((await read({ processId: 'uri', waitMs: 'x' })).error, {
      code: -32602,
      message: 'invalid type: string "x", expected u64',
    });
    assert.deepEqual((await read({ processId: 'nope' })).error, { code: -32600, message: 'unknown process id nope' });
    assert.deepEqual((await read({})).error, { code: -32602, message: 'missing field `processId`' });
    const write = (params: unknown) => c.request('process/write', params);
    assert.deepEqual((await write({ processId: 'uri', chunk: 'ab c' })).error, { code: -32602, message: 'Invalid symbol 32, offset 2.' });
    assert.deepEqual((await write({ processId: 'uri', chunk: 'YQ' })).error, { code: -32602, message: 'Invalid padding' });
    assert.deepEqual((await write({ processId: 'nope', chunk: '' })).result, { status: 'unknownProcess' });
    assert.deepEqual((await c.request('process/terminate', { processId: 'nope' })).result, { running: false });
    assert.deepEqual((await c.request('process/signal', { processId: 'nope', signal: 'interrupt' })).result, {});
    assert.deepEqual((await c.request('process/signal', { processId: 'nope', signal: 'hup' })).error, {
      code: -32602,
      message: 'unknown variant `hup`, expected `interrupt`',
    });
    const missing = await start({ ...base, processId: 'm', argv: ['no-such-binary-here'], env: SH_ENV });
    assert.deepEqual(missing.error, { code: -32603, data: { kind: 'spawnNotFound' }, message: 'No such file or directory (os error 2)' });
    c.close();
  });

  it('keys process/read results in the reference order', async () => {
    const { client: c } = await RawClient.ready(url);
    await c.request('process/start', { processId: 'k', argv: ['echo', 'hi'], cwd: '/tmp', env: SH_ENV, tty: false });
    await c.untilClosed('k');
    const res = await c.request('process/read', { processId: 'k', afterSeq: null, maxBytes: null, waitMs: 0 });
    assert.deepEqual(Object.keys(res.result), ['chunks', 'nextSeq', 'exited', 'exitCode', 'closed', 'failure', 'sandboxDenied']);
    assert.deepEqual(res.result.chunks, [{ seq: 1, stream: 'stdout', chunk: 'aGkK' }]);
    c.close();
  });
});

describe('protocol: size limits', () => {
  it('closes with 1009 on a frame over the frame limit (default 16 MiB), and accepts one just under it', async () => {
    const { server, url } = await startServer();
    try {
      const { client: ok } = await RawClient.ready(url);
      const prefix = '{"id":9,"method":"environment/info","params":{"pad":"';
      const suffix = '"}}';
      ok.send(prefix + 'x'.repeat(16 * 1024 * 1024 - prefix.length - suffix.length) + suffix);
      assert.ok((await ok.next((m) => m.id === 9, 20_000)).result);
      ok.close();
      const { client: big } = await RawClient.ready(url);
      big.send(prefix + 'x'.repeat(16 * 1024 * 1024) + suffix);
      assert.equal(await big.closed, 1009);
    } finally {
      await server.close();
    }
  });

  it('closes with 1009 on a fragmented message over the message limit', async () => {
    const { server, url } = await startServer({ maxFrameBytes: 1024, maxMessageBytes: 4096 });
    try {
      const { client: c } = await RawClient.ready(url);
      for (let i = 0; i < 5; i++) c.ws.send('x'.repeat(1000), { fin: i === 4 });
      assert.equal(await c.closed, 1009);
      const { client: d } = await RawClient.ready(url);
      d.ws.send('{"id":1,"method":"environment/info",', { fin: false });
      d.ws.send('"params":{}}', { fin: true });
      assert.ok((await d.next((m) => m.id === 1)).result, 'a fragmented message under the limit is fine');
      d.close();
    } finally {
      await server.close();
    }
  });
});

describe('protocol: authentication', () => {
  it('requires the bearer token on the upgrade when configured', async () => {
    const { server, url } = await startServer({ token: 's3cret-token' });
    try {
      const status = (headers: Record<string, string>) =>
        new Promise<number>((resolve) => {
          const ws = new WebSocket(url, { headers });
          ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
          ws.once('open', () => {
            ws.close();
            resolve(101);
          });
          ws.once('error', () => undefined);
        });
      assert.equal(await status({}), 401);
      assert.equal(await status({ authorization: 'Bearer wrong' }), 401);
      assert.equal(await status({ authorization: 'Bearer s3cret-token-and-more' }), 401);
      assert.equal(await status({ authorization: 'Basic s3cret-token' }), 401);
      assert.equal(await status({ authorization: 'Bearer s3cret-token' }), 101);
    } finally {
      await server.close();
    }
  });

  it('refuses a non-loopback address without a token unless told to', async () => {
    const { CordonServer } = await import('../src/server/index.js');
    const s = new CordonServer();
    await assert.rejects(
      s.listen({ host: '0.0.0.0', port: 0 }),
      /refusing to listen on non-loopback address 0\.0\.0\.0 without authentication/,
    );
    const url = await s.listen({ host: '0.0.0.0', port: 0, insecureNoAuth: true });
    assert.match(url, /^ws:\/\/0\.0\.0\.0:\d+$/);
    await s.close();
    const withToken = new CordonServer({ token: 't' });
    assert.match(await withToken.listen({ host: '0.0.0.0', port: 0 }), /^ws:/);
    await withToken.close();
  });
});

describe('protocol: sandboxed process/start', () => {
  it('runs a process under the requested sandbox and reports sandboxType', async () => {
    const { server, url } = await startServer();
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { existsSync } = await import('node:fs');
    const dir = await mkdtemp('/tmp/cordon-sandboxed-');
    try {
      const { client: c } = await RawClient.ready(url);
      const run = async (name: string, sandbox: unknown) => {
        const res = await c.request('process/start', {
          processId: name,
          argv: ['sh', '-c', `touch ${dir}/${name}`],
          cwd: dir,
          env: SH_ENV,
          tty: false,
          sandbox,
        });
        if (res.result) await c.untilClosed(name);
        return res;
      };
      const readOnly = await run('ro', { sandboxPolicy: { type: 'read-only' }, windowsSandboxLevel: 'disabled' });
      assert.deepEqual(readOnly.result, { processId: 'ro', sandboxType: 'linuxSeccomp' });
      assert.equal(existsSync(`${dir}/ro`), false, 'read-only: nothing written');
      const ws = await run('ws', {
        permissions: {
          type: 'managed',
          network: 'restricted',
          file_system: {
            type: 'restricted',
            entries: [
              { path: { type: 'special', value: { kind: 'root' } }, access: 'read' },
              { path: { type: 'special', value: { kind: 'current_working_directory' } }, access: 'write' },
            ],
          },
        },
        cwd: dir,
        windowsSandboxLevel: 'disabled',
      });
      assert.equal(ws.result.sandboxType, 'linuxSeccomp');
      assert.equal(existsSync(`${dir}/ws`), true, 'workspace-write: written inside');
      // As the reference: a request that carries a sandbox is reported sandboxed even when it asks for nothing.
      const none = await run('none', { permissions: { type: 'disabled' }, windowsSandboxLevel: 'disabled' });
      assert.deepEqual(none.result, { processId: 'none', sandboxType: 'linuxSeccomp' });
      assert.equal(existsSync(`${dir}/none`), true, 'disabled: unrestricted');
      const plain = await run('plain', undefined);
      assert.deepEqual(plain.result, { processId: 'plain', sandboxType: 'none' });
      assert.equal((await run('bad', { permissions: { type: 'bogus' }, windowsSandboxLevel: 'disabled' })).error?.code, -32602);
      const unknownFlag = await c.request('process/start', {
        processId: 'codex-bad',
        argv: ['/home/u/.codex/bin/codex', '--bogus', 'x', '--', 'true'],
        arg0: 'codex-linux-sandbox',
        cwd: dir,
        env: SH_ENV,
        tty: false,
      });
      assert.equal(unknownFlag.error?.code, -32602);
      assert.match(unknownFlag.error?.message, /unsupported codex-linux-sandbox flag --bogus/);
      c.close();
    } finally {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
