import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { builtinProfile } from '../src/sandbox/builtin-profiles.js';
import { type Json, RawClient, startServer, tempDir } from './helpers.js';

/** http/request is bound by the operator's network rules, as processes are: the server must not fetch for a client what a sandboxed process could not reach. */
describe('http/request under the operator network rules', () => {
  let upstream: http.Server;
  let base = '';
  before(async () => {
    upstream = http.createServer((_req, res) => res.end('hello'));
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  });
  after(() => upstream.close());

  const fetchOnce = async (options: Json): Promise<Json> => {
    const ws = await tempDir();
    const { server, url } = await startServer(
      options.ceiling === 'workspace'
        ? { environment: { ceiling: { profile: builtinProfile(':workspace'), cwd: ws.dir, workspaceRoots: [ws.dir], name: ':workspace' } } }
        : options,
    );
    const { client } = await RawClient.ready(url);
    try {
      return await client.request('http/request', { method: 'GET', url: `${base}/x`, requestId: 'r1', headers: [] });
    } finally {
      client.close();
      await server.close();
      await ws.cleanup();
    }
  };

  it('a ceiling without network refuses it with a clear error; a server without a ceiling fetches', async () => {
    const refused = await fetchOnce({ ceiling: 'workspace' });
    assert.equal(refused.error?.code, -32600);
    assert.match(refused.error?.message, /no network access/);
    const allowed = await fetchOnce({});
    assert.equal(Buffer.from(allowed.result.bodyBase64, 'base64').toString(), 'hello');
  });

  it('a managed network policy judges the destination: a denied host is refused, an allowed local one is fetched', async () => {
    const policy = (decision: 'allow' | 'deny'): Json => ({
      network: { mode: 'full', domains: { '127.0.0.1': decision }, allowLocalBinding: true, trustedRanges: [] },
    });
    const denied = await fetchOnce(policy('deny'));
    assert.equal(denied.error?.code, -32600);
    assert.match(denied.error?.message, /refused by the server's network policy \(denied\)/);
    const allowed = await fetchOnce(policy('allow'));
    assert.equal(Buffer.from(allowed.result.bodyBase64, 'base64').toString(), 'hello');
  });

  it('without local binding, a loopback destination is refused even when listed by name pattern', async () => {
    const refused = await fetchOnce({ network: { mode: 'full', domains: { '*': 'allow' }, allowLocalBinding: false, trustedRanges: [] } });
    assert.match(refused.error?.message ?? '', /not_allowed_local/);
  });
});
