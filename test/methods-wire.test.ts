import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { CordonServer } from '../src/server/index.js';
import { eventually, type Json, RawClient, startServer, tempDir } from './helpers.js';

const uri = (p: string): string => pathToFileURL(p).href;

/** The 0.171 methods on the wire: exact shapes, URIs in and out, and what outlives a connection. */
describe('0.171 methods on the wire', () => {
  let server: CordonServer;
  let url: string;
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let upstream: http.Server;
  let base: string;
  let upstreamClosed = 0;
  let hanging = 0;
  let gate: (() => void) | undefined;

  before(async () => {
    tmp = await tempDir('cordon-wire-');
    mkdirSync(path.join(tmp.dir, 'home'));
    writeFileSync(path.join(tmp.dir, 'home', 'config.toml'), '[mcp_servers.exec]\nurl = "http://127.0.0.1:9/mcp"\n');
    ({ server, url } = await startServer({
      sessionGraceMs: 2_000,
      environment: { codexHome: path.join(tmp.dir, 'home'), requirementsFile: path.join(tmp.dir, 'none.toml') },
    }));
    upstream = http.createServer((req, res) => {
      req.socket.once('close', () => upstreamClosed++);
      if (req.url === '/hang') return void hanging++;
      if (req.url === '/gated') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('before');
        gate = () => res.end('after');
        return;
      }
      if (req.url === '/stream') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('one');
        setTimeout(() => res.end('two'), 50);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  });
  after(async () => {
    await server.close();
    upstream.closeAllConnections();
    await new Promise((r) => upstream.close(r));
    await tmp.cleanup();
  });

  const result = (m: Json): Json => {
    assert.equal(m.error, undefined, JSON.stringify(m.error));
    return m.result as Json;
  };

  it('fs/open, fs/readBlock, fs/writeBlock, fs/close in the 0.142+ shape, with the reference wording for bad params', async () => {
    const { client } = await RawClient.ready(url);
    try {
      const f = path.join(tmp.dir, 'F');
      writeFileSync(f, 'hello world');
      assert.deepEqual(result(await client.request('fs/open', { handleId: 'h1', path: uri(f), sandbox: null })), { handleId: 'h1' });
      assert.deepEqual(result(await client.request('fs/readBlock', { handleId: 'h1', offset: 0, len: 5 })), {
        chunk: Buffer.from('hello').toString('base64'),
        eof: false,
      });
      assert.deepEqual(
        result(
          await client.request('fs/open', { handleId: 'w', path: uri(path.join(tmp.dir, 'G')), sandbox: null, mode: { replace: null } }),
        ),
        { handleId: 'w' },
      );
      assert.deepEqual(result(await client.request('fs/writeBlock', { handleId: 'w', offset: 0, chunk: 'YWJj' })), {});
      assert.deepEqual((await client.request('fs/writeBlock', { handleId: 'w', offset: 0, chunk: '!!' })).error?.code, -32602);
      assert.deepEqual(result(await client.request('fs/close', { handleId: 'w' })), {});
      assert.deepEqual(result(await client.request('fs/close', { handleId: 'w' })), {});
      const errors: [unknown, string][] = [
        [{ handleId: 'x', path: uri(f), mode: 'bogus' }, 'unknown variant `bogus`, expected `read` or `replace`'],
        [{ handleId: 'x', path: uri(f), mode: null }, 'invalid type: null, expected string or map'],
        [{ path: uri(f) }, 'missing field `handleId`'],
      ];
      for (const [params, message] of errors) assert.deepEqual((await client.request('fs/open', params)).error, { code: -32602, message });
      assert.deepEqual((await client.request('fs/readBlock', { handleId: 'h1', offset: 0 })).error, {
        code: -32602,
        message: 'missing field `len`',
      });
      assert.deepEqual((await client.request('fs/close', {})).error, { code: -32602, message: 'missing field `handleId`' });
      // Cordon's older form is still served.
      const older = result(await client.request('fs/open', { path: f, mode: 'read' }));
      assert.equal(typeof older.handle, 'string');
      assert.deepEqual(result(await client.request('fs/readBlock', { handle: older.handle, offset: 6, length: 5 })), {
        dataBase64: Buffer.from('world').toString('base64'),
        eof: true,
      });
      assert.deepEqual(result(await client.request('fs/close', { handle: older.handle })), {});
    } finally {
      client.close();
    }
  });

  it('fs/walk answers URIs for a URI request and plain paths for a plain one', async () => {
    const { client } = await RawClient.ready(url);
    try {
      const d = path.join(tmp.dir, 'walk');
      mkdirSync(path.join(d, 'sub'), { recursive: true });
      writeFileSync(path.join(d, 'sub', 'f'), 'x');
      const options = { maxDepth: 5, maxDirectories: 10, maxEntries: 10, followDirectorySymlinks: false, pruneHiddenDirectories: false };
      assert.deepEqual(result(await client.request('fs/walk', { path: uri(d), options, sandbox: null })), {
        entries: [
          { path: uri(path.join(d, 'sub')), kind: 'directory' },
          { path: uri(path.join(d, 'sub', 'f')), kind: 'file' },
        ],
        errors: [],
        truncated: false,
      });
      assert.equal(result(await client.request('fs/walk', { path: d, options })).entries[0].path, path.join(d, 'sub'));
      assert.deepEqual((await client.request('fs/walk', { path: uri(d) })).error, { code: -32602, message: 'missing field `options`' });
      assert.deepEqual((await client.request('fs/walk', { path: uri(d), options: { maxDepth: 1 } })).error, {
        code: -32602,
        message: 'missing field `maxDirectories`',
      });
    } finally {
      client.close();
    }
  });

  it('environmentConfig/read answers directories as URIs; a flat path list is refused as serde would', async () => {
    const { client } = await RawClient.ready(url);
    try {
      const r = result(
        await client.request('environmentConfig/read', {
          cwd: uri(tmp.dir),
          configPaths: [['mcp_servers']],
          requirementsPaths: [['mcp_servers']],
        }),
      );
      assert.equal(r.codexHomeDir, uri(path.join(tmp.dir, 'home')));
      assert.match(r.userHomeDir, /^file:\/\//);
      assert.deepEqual(r.config, {
        layers: [
          {
            source: `user (${path.join(tmp.dir, 'home', 'config.toml')})`,
            baseDir: uri(path.join(tmp.dir, 'home')),
            toml: '[mcp_servers.exec]\nurl = "http://127.0.0.1:9/mcp"\n',
          },
        ],
        cloudInsertionIndex: 0,
      });
      assert.deepEqual(r.requirements, { layers: [], cloudInsertionIndex: 0 });
      assert.deepEqual(Object.keys(r), ['userHomeDir', 'codexHomeDir', 'hostname', 'config', 'requirements']);
      assert.deepEqual(
        (await client.request('environmentConfig/read', { cwd: uri(tmp.dir), configPaths: ['mcp_servers'], requirementsPaths: [] })).error,
        {
          code: -32602,
          message: 'invalid type: string "mcp_servers", expected a sequence',
        },
      );
    } finally {
      client.close();
    }
  });

  it('http/request: the result comes before the body deltas, which carry the reference keys; requestId is required', async () => {
    const { client } = await RawClient.ready(url);
    try {
      assert.deepEqual((await client.request('http/request', { method: 'GET', url: `${base}/x`, headers: [] })).error, {
        code: -32602,
        message: 'missing field `requestId`',
      });
      assert.deepEqual(
        (await client.request('http/request', { method: 'GET', url: `${base}/x`, requestId: 'r', headers: [], redirectPolicy: 'bogus' }))
          .error,
        {
          code: -32602,
          message: 'unknown variant `bogus`, expected `follow` or `stop`',
        },
      );
      const plain = result(await client.request('http/request', { method: 'GET', url: `${base}/x`, requestId: 'p1', headers: [] }));
      assert.equal(Buffer.from(plain.bodyBase64, 'base64').toString(), '{"ok":true}');
      assert.deepEqual(Object.keys(plain), ['status', 'headers', 'bodyBase64']);
      const response = await client.request('http/request', {
        method: 'GET',
        url: `${base}/stream`,
        requestId: 's1',
        headers: [],
        streamResponse: true,
        redirectPolicy: 'stop',
        timeoutMs: 30_000,
      });
      assert.equal(result(response).bodyBase64, '');
      const terminal = await client.next((m) => m.method === 'http/request/bodyDelta' && m.params.done === true);
      const deltas = client.received.filter((m) => m.method === 'http/request/bodyDelta');
      assert.ok(client.received.indexOf(response) < client.received.indexOf(deltas[0]!), 'the result first');
      assert.equal(Buffer.concat(deltas.map((d) => Buffer.from(d.params.deltaBase64, 'base64'))).toString(), 'onetwo');
      assert.deepEqual(terminal.params, { requestId: 's1', seq: deltas.length, deltaBase64: '', done: true, error: null });
      assert.deepEqual(Object.keys(deltas[0]!.params), ['requestId', 'seq', 'deltaBase64', 'done', 'error']);
    } finally {
      client.close();
    }
  });

  it('a missing-path watch and an open file handle outlive the connection: after a resume the watch fires on the new one and the handle reads', async () => {
    const dir = path.join(tmp.dir, 'resume');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'kept'), 'still open');
    const { client: a, sessionId } = await RawClient.ready(url);
    assert.deepEqual((await a.request('fs/watchMissing', { watchId: 'a', missing: [] })).error, {
      code: -32602,
      message: 'invalid type: string "a", expected u64',
    });
    assert.deepEqual(result(await a.request('fs/watchMissing', { watchId: 1, missing: [uri(path.join(dir, '.git'))], present: null })), {
      watching: true,
    });
    result(await a.request('fs/open', { handleId: 'h', path: uri(path.join(dir, 'kept')), sandbox: null }));
    a.ws.terminate();
    await a.closed;
    const { client: b } = await RawClient.ready(url, sessionId);
    try {
      assert.deepEqual(result(await b.request('fs/readBlock', { handleId: 'h', offset: 0, len: 100 })), {
        chunk: Buffer.from('still open').toString('base64'),
        eof: true,
      });
      mkdirSync(path.join(dir, '.git'));
      const fired = await b.next((m) => m.method === 'fs/missingChanged');
      assert.deepEqual(fired, { method: 'fs/missingChanged', params: { watchId: 1 } });
    } finally {
      b.close();
    }
  });

  it('a streamed HTTP body outlives the connection too: what the upstream sends while detached arrives after the resume', async () => {
    const dir = path.join(tmp.dir, 'resume-http');
    mkdirSync(dir);
    const { client: a, sessionId } = await RawClient.ready(url);
    result(await a.request('http/request', { method: 'GET', url: `${base}/gated`, requestId: 'g', headers: [], streamResponse: true }));
    const first = await a.next((m) => m.method === 'http/request/bodyDelta');
    assert.equal(Buffer.from(first.params.deltaBase64, 'base64').toString(), 'before');
    result(await a.request('fs/watchMissing', { watchId: 7, missing: [uri(path.join(dir, 'x'))] }));
    a.ws.terminate();
    await a.closed;
    const session = (server.sessions as unknown as { sessions: Map<string, { sink: unknown }> }).sessions.get(sessionId);
    await eventually(() => session?.sink === null, 5000, 'the server to detach the session');
    await eventually(() => gate !== undefined, 5000);
    gate?.();
    mkdirSync(path.join(dir, 'x')); // fires while no connection is attached
    const { client: b } = await RawClient.ready(url, sessionId);
    try {
      await b.next((m) => m.method === 'http/request/bodyDelta' && m.params.done === true);
      const later = b.received.filter((m) => m.method === 'http/request/bodyDelta');
      assert.equal(Buffer.concat(later.map((d) => Buffer.from(d.params.deltaBase64, 'base64'))).toString(), 'after');
      assert.deepEqual(
        later.map((d) => d.params.seq),
        later.map((_, i) => i + 2),
        'seq continues',
      );
      const missed = await b.next((m) => m.method === 'fs/missingChanged');
      assert.deepEqual(missed, { method: 'fs/missingChanged', params: { watchId: 7 } });
      assert.ok(b.received.findIndex((m) => m.result?.sessionId) < b.received.indexOf(missed), 'the initialize answer comes first');
    } finally {
      b.close();
    }
  });

  it('requests in flight end with their session: the upstream connection is closed', async () => {
    const { server: short, url: shortUrl } = await startServer({ sessionGraceMs: 100 });
    try {
      const { client } = await RawClient.ready(shortUrl);
      const before = upstreamClosed;
      const hangingBefore = hanging;
      client.send({ id: 1, method: 'http/request', params: { method: 'GET', url: `${base}/hang`, requestId: 'h', headers: [] } });
      client.send({
        id: 2,
        method: 'http/request',
        params: { method: 'GET', url: `${base}/hang`, requestId: 'h2', headers: [], streamResponse: true },
      });
      await eventually(() => hanging >= hangingBefore + 2, 10_000, 'both requests to reach the upstream');
      client.ws.terminate();
      await eventually(() => upstreamClosed >= before + 2, 15_000, 'the upstream sockets to close once the session expired');
    } finally {
      await short.close();
    }
  });
});
