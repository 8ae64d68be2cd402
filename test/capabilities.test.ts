import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CAPABILITY_NAMES, type CapabilityName } from '../src/protocol/capabilities.js';
import { CORDON_CAPABILITIES } from '../src/server/capabilities.js';
import type { CordonServer } from '../src/server/index.js';
import { RawClient, startServer, tempDir } from './helpers.js';

/**
 * A capability advertised true must hold: a 0.171 client calls what is advertised, and a failing
 * call breaks its work. Each flag that Cordon sets true needs a case below that performs the call
 * the flag enables against a real server and checks the answer. Turning a flag on in
 * src/server/capabilities.ts without adding its case here fails this test.
 */

interface CaseContext {
  client: RawClient;
  /** A scratch directory the case may write in. */
  dir: string;
}

type CapabilityCase = (ctx: CaseContext) => Promise<void>;

const CASES: Partial<Record<CapabilityName, CapabilityCase>> = {
  // One entry per flag advertised true, e.g.:
  // fsWatchMissing: async ({ client, dir }) => { ...fs/watchMissing, then create the path, expect fs/missingChanged... },
};

describe('capabilities: what is advertised is what works', () => {
  let server: CordonServer;
  let url: string;
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let advertised: Record<string, boolean>;

  before(async () => {
    ({ server, url } = await startServer());
    tmp = await tempDir('cordon-caps-');
    const { client, sessionId } = await RawClient.ready(url);
    assert.ok(sessionId);
    advertised = (await client.request('environment/info', null)).result.capabilities;
    client.close();
  });
  after(async () => {
    await server.close();
    await tmp.cleanup();
  });

  it('advertises every known flag, in the reference order, as the server module decides', () => {
    assert.deepEqual(Object.keys(advertised), [...CAPABILITY_NAMES]);
    assert.deepEqual(advertised, { ...CORDON_CAPABILITIES });
  });

  it('never advertises what Linux cannot do', () => {
    assert.equal(advertised.windowsMxc, false);
  });

  for (const name of CAPABILITY_NAMES) {
    const on = CORDON_CAPABILITIES[name];
    it(`${name}: the call it enables works`, { skip: on ? false : 'advertised false' }, async () => {
      const run = CASES[name];
      assert.ok(run, `${name} is advertised true but test/capabilities.test.ts has no case for it`);
      const { client } = await RawClient.ready(url);
      try {
        await run({ client, dir: tmp.dir });
      } finally {
        client.close();
      }
    });
  }
});
