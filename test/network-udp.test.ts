import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { CordonServer } from '../src/server/index.js';
import { type Json, RawClient, startServer, tempDir } from './helpers.js';
import { canUseNetns, startUpstream, type Upstream } from './network-fixture.js';

const PATH = '/usr/local/bin:/usr/bin:/bin';
const skip = !canUseNetns() ? 'needs root and iproute2 (ip netns)' : !existsSync('/usr/bin/bwrap') ? 'needs bubblewrap' : false;

/**
 * A SOCKS5 client in the sandbox: UDP ASSOCIATE through ALL_PROXY, then one datagram per
 * `host:payload` argument to port 5353 (the upstream's echo), printing every reply; then a datagram
 * sent directly, around the proxy.
 */
const PROBE = String.raw`
const net = require('net'), dgram = require('dgram');
const [direct, ...sends] = process.argv.slice(2);
const u = new URL(process.env.ALL_PROXY);
const c = net.connect(Number(u.port), u.hostname);
let buf = Buffer.alloc(0), stage = 0;
const done = () => {
  const d = dgram.createSocket('udp4');
  d.send(Buffer.from('direct'), 5353, direct, (err) => { console.log('direct: ' + (err ? err.code : 'sent')); process.exit(0); });
};
c.on('data', (chunk) => {
  buf = Buffer.concat([buf, chunk]);
  if (stage === 0 && buf.length >= 2) { buf = buf.subarray(2); stage = 1; c.write(Buffer.from([5, 3, 0, 1, 0, 0, 0, 0, 0, 0])); }
  if (stage === 1 && buf.length >= 10) {
    stage = 2;
    if (buf[1] !== 0) { console.log('associate refused: ' + buf[1]); return done(); }
    const relay = [[...buf.subarray(4, 8)].join('.'), buf.readUInt16BE(8)];
    const s = dgram.createSocket('udp4');
    const expected = sends.filter((x) => x.startsWith('+')).length;
    let got = 0;
    s.on('message', (m) => {
      const off = m[3] === 1 ? 10 : m[3] === 4 ? 22 : 7 + m[4];
      console.log('reply: ' + m.subarray(off).toString());
      if (++got === expected) done();
    });
    for (const x of sends) {
      const [host, payload] = x.replace(/^[+-]/, '').split(':');
      const h = Buffer.concat([Buffer.from([0, 0, 0, 3, host.length]), Buffer.from(host), Buffer.from([5353 >> 8, 5353 & 255]), Buffer.from(payload)]);
      s.send(h, relay[1], relay[0]);
    }
  }
});
c.on('error', (e) => { console.log('control: ' + e.message); process.exit(1); });
c.write(Buffer.from([5, 1, 0]));
`;

describe('managed network: SOCKS5 UDP from a sandbox', { skip }, () => {
  let up: Upstream;
  let server: CordonServer;
  let client: RawClient;
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let n = 0;

  before(async () => {
    tmp = await tempDir('cordon-udp-');
    writeFileSync(path.join(tmp.dir, 'probe.cjs'), PROBE);
    up = await startUpstream(tmp.dir);
    const started = await startServer({ networkResolve: up.resolve, networkTrustedRanges: up.ranges });
    server = started.server;
    ({ client } = await RawClient.ready(started.url));
  });
  after(async () => {
    client?.close();
    await server?.close();
    await up?.stop();
    await tmp?.cleanup();
  });

  async function run(args: string[], udp: boolean): Promise<{ out: string; decisions: Json[] }> {
    const processId = `udp-${++n}`;
    const start = await client.request('process/start', {
      processId,
      argv: [process.execPath, 'probe.cjs', up.v4, ...args],
      cwd: tmp.dir,
      env: { PATH },
      tty: false,
      sandbox: {
        permissions: {
          type: 'managed',
          network: 'enabled',
          file_system: { type: 'restricted', entries: [{ path: { type: 'special', value: { kind: 'root' } }, access: 'read' }] },
        },
        cwd: tmp.dir,
        windowsSandboxLevel: 'disabled',
      },
      enforceManagedNetwork: true,
      networkProxy: {
        proxy: {
          enabled: true,
          enableSocks5: true,
          enableSocks5Udp: udp,
          mode: 'full',
          domains: { 'udp.test': 'allow', 'denied.test': 'deny' },
        },
      },
    });
    assert.equal(start.error, undefined, JSON.stringify(start.error));
    const events = await client.untilClosed(processId, 60_000);
    const out = events
      .filter((m) => m.method === 'process/output')
      .map((m) => Buffer.from(m.params.chunk, 'base64').toString())
      .join('');
    const decisions = client.received
      .filter((m) => m.method === 'network/policyDecision' && m.params.processId === processId)
      .map((m) => m.params);
    return { out, decisions };
  }

  it('relays datagrams to an allowed host and drops those to a denied one; a direct datagram has no route', async () => {
    // The denied datagram goes first: had it been relayed, its echo would be among the replies.
    const r = await run(['-denied.test:no', '+udp.test:one', '+udp.test:two', '-unlisted.test:no'], true);
    assert.match(r.out, /^reply: pong:one$/m);
    assert.match(r.out, /^reply: pong:two$/m);
    assert.doesNotMatch(r.out, /pong:no/);
    assert.match(r.out, /^direct: ENETUNREACH$/m);
    const udpDecisions = r.decisions.filter((d) => d.protocol === 'socks5_udp').map((d) => `${d.host} ${d.decision} ${d.reason}`);
    assert.ok(udpDecisions.includes('denied.test deny denied'), JSON.stringify(udpDecisions));
    assert.equal(udpDecisions.filter((d) => d === 'udp.test allow allow').length, 1, 'one decision per destination');
  });

  it('answers UDP ASSOCIATE with 07 when the launch did not enable SOCKS5 UDP', async () => {
    const r = await run(['+udp.test:x'], false);
    assert.match(r.out, /^associate refused: 7$/m);
    assert.match(r.out, /^direct: ENETUNREACH$/m);
  });
});
