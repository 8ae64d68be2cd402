import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClientRequestError, ClientRequests } from '../../src/server/client-requests.js';

describe('server-to-client requests', () => {
  it('numbers requests from 1 and resolves each with its own response', async () => {
    const sent: string[] = [];
    const r = new ClientRequests((t) => sent.push(t));
    const a = r.request('x/one', { n: 1 }, 60_000);
    const b = r.request('x/two', null, 60_000);
    assert.deepEqual(
      sent.map((t) => JSON.parse(t)),
      [
        { id: 1, method: 'x/one', params: { n: 1 } },
        { id: 2, method: 'x/two', params: null },
      ],
    );
    assert.equal(r.handleResponse(2, { ok: 2 }, undefined), true);
    assert.equal(r.handleResponse(1, undefined, { code: -1, message: 'nope' }), true);
    assert.deepEqual(await b, { ok: 2 });
    await assert.rejects(a, (err: unknown) => err instanceof ClientRequestError && err.message === 'nope' && err.code === -1);
    assert.equal(r.handleResponse(1, {}, undefined), false, 'an id already answered is not ours');
    assert.equal(r.handleResponse('1', {}, undefined), false);
  });

  it('fails on timeout and on disconnect', async () => {
    const r = new ClientRequests(() => undefined);
    await assert.rejects(r.request('x/slow', {}, 10), /did not answer x\/slow within 10 ms/);
    const pending = r.request('x/pending', {}, 60_000);
    r.close();
    await assert.rejects(pending, /disconnected/);
    await assert.rejects(r.request('x/after', {}, 60_000), /disconnected/);
  });
});
