import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type ApprovalRequest, ExecServerClient } from '../src/client/index.js';
import type { ProcessEvent } from '../src/environment/types.js';
import { loadPolicyFiles } from '../src/execpolicy/index.js';
import { withNetworkRules } from '../src/network/network-rules.js';
import type { CordonServer } from '../src/server/index.js';
import { serve } from './cli-helpers.js';
import { eventually, startServer, tempDir } from './helpers.js';
import { canUseNetns, startUpstream, type Upstream } from './network-fixture.js';

const PATH = '/usr/local/bin:/usr/bin:/bin';
const skip = !canUseNetns()
  ? 'needs root and iproute2 (ip netns)'
  : !existsSync('/usr/bin/bwrap')
    ? 'needs bubblewrap'
    : !existsSync('/usr/bin/curl')
      ? 'needs curl'
      : false;

const RULES = `
network_rule(host="allowed.test", protocol="http", decision="allow", justification="documentation")
network_rule(host="Tunnel.test.", protocol="https", decision="allow")
network_rule(host="denied.test", protocol="http", decision="forbidden", justification="exfiltration risk")
network_rule(host="both.test", protocol="http", decision="allow")
network_rule(host="both.test", protocol="socks5_tcp", decision="deny")
network_rule(host="ask.test", protocol="http", decision="prompt")
network_rule(host="askfirst.test", protocol="http", decision="allow")
network_rule(host="askfirst.test", protocol="http", decision="prompt")
`;

/**
 * `network_rule`s of an operator's .rules files, loaded as `cordon serve --rules` loads them, judge a
 * sandboxed curl's requests through the proxy, against upstream servers in a namespace this test
 * creates. Each refusal has an allowed twin.
 */
describe('network_rule: the operator’s rules files feed the proxy’s policy', { skip }, () => {
  let up: Upstream;
  let server: CordonServer;
  let url: string;
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let n = 0;

  before(async () => {
    tmp = await tempDir('cordon-netrules-');
    up = await startUpstream(tmp.dir);
    const file = path.join(tmp.dir, 'net.rules');
    writeFileSync(file, RULES);
    const network = withNetworkRules(undefined, (await loadPolicyFiles([file])).networkRules);
    assert.ok(network);
    ({ server, url } = await startServer({ network, networkResolve: up.resolve, networkTrustedRanges: up.ranges }));
  });
  after(async () => {
    await server?.close();
    await up?.stop();
    await tmp?.cleanup();
  });

  async function run(client: ExecServerClient, script: string, extra: Record<string, unknown> = {}): Promise<string> {
    const { events } = await client.spawn({
      processId: `nr-${++n}`,
      argv: ['/bin/sh', '-c', script],
      cwd: tmp.dir,
      env: { PATH },
      sandbox: {
        permissions: {
          type: 'managed',
          network: 'enabled',
          file_system: { type: 'restricted', entries: [{ path: { type: 'special', value: { kind: 'root' } }, access: 'read' }] },
        },
        cwd: tmp.dir,
        windowsSandboxLevel: 'disabled',
      },
      ...extra,
    });
    let out = '';
    for await (const e of events as AsyncIterable<ProcessEvent>) if (e.type === 'output') out += e.data.toString();
    return out;
  }

  it('allow and forbidden rules decide without asking, for the rule’s protocol; a deny holds for every protocol', async () => {
    const client = await ExecServerClient.connect({ url });
    const asked: ApprovalRequest[] = [];
    client.useNetworkApprovals((r) => (asked.push(r), 'allowOnce'), { terminateOnDenial: false });
    try {
      const out = await run(
        client,
        [
          'curl -sS http://allowed.test:8080/allowed; echo',
          'curl -sS http://denied.test:8080/; echo',
          // an https rule allows CONNECT tunnels (curl -p), not plain HTTP through the proxy
          'curl -sS -p http://tunnel.test:8080/tunnelled; echo " tunnel=$?"',
          'curl -sS http://tunnel.test:8080/plain; echo',
          // both.test: allowed over HTTP, denied over SOCKS5 — and the deny covers HTTP too (strictest wins)
          'curl -sS http://both.test:8080/; echo',
          // a host no rule names: not on the operator's allow list, refused without asking anyone
          'curl -sS http://unlisted.test:8080/; echo',
          // the escape twin: straight to the upstream, around the proxy
          `curl -sS --noproxy '*' --max-time 5 http://${up.v4}:8080/; echo " direct=$?"`,
        ].join('; '),
      );
      assert.match(out, /upstream GET \/allowed host=allowed\.test:8080/);
      assert.match(out, /"host":"denied\.test","reason":"denied"/);
      assert.match(out, /upstream GET \/tunnelled/);
      assert.match(out, / tunnel=0/);
      assert.match(out, /"host":"tunnel\.test","reason":"not_allowed"/);
      assert.match(out, /"host":"both\.test","reason":"denied"/);
      assert.match(out, /"host":"unlisted\.test","reason":"not_allowed"/);
      assert.match(out, / direct=7/);
      assert.deepEqual(asked, [], 'nobody was asked');
    } finally {
      await client.close();
    }
  });

  it('a prompt rule asks the client, and beats an allow rule for the same host', async () => {
    const client = await ExecServerClient.connect({ url });
    const asked: string[] = [];
    client.useNetworkApprovals(
      (r) => {
        asked.push(`${r.protocol} ${r.host}:${r.port}`);
        return r.host === 'ask.test' ? 'allowOnce' : 'deny';
      },
      { terminateOnDenial: false },
    );
    try {
      const out = await run(client, 'curl -sS http://ask.test:8080/asked; echo; curl -sS http://askfirst.test:8080/; echo');
      assert.match(out, /upstream GET \/asked/);
      assert.match(out, /"host":"askfirst\.test","reason":"user_denied","decision":"deny","source":"decider"/);
      assert.deepEqual(asked, ['http ask.test:8080', 'http askfirst.test:8080']);
    } finally {
      await client.close();
    }
  });

  it('a client’s own networkProxy cannot widen past the rules', async () => {
    const client = await ExecServerClient.connect({ url });
    try {
      const out = await run(
        client,
        'curl -sS http://denied.test:8080/; echo; curl -sS http://unlisted.test:8080/; echo; curl -sS http://allowed.test:8080/ok',
        {
          enforceManagedNetwork: true,
          networkProxy: { proxy: { enabled: true, mode: 'full', domains: { '*': 'allow' }, allowLocalBinding: false } },
        },
      );
      assert.match(out, /"host":"denied\.test","reason":"denied"/);
      assert.match(out, /"host":"unlisted\.test","reason":"not_allowed"/);
      assert.match(out, /upstream GET \/ok/);
    } finally {
      await client.close();
    }
  });
});

/** The same through `cordon serve --rules` (and cordon.toml's `rules`), as an operator runs it. */
describe('network_rule: cordon serve --rules', {
  skip: !existsSync('/usr/bin/bwrap') || !existsSync('/usr/bin/curl') ? 'needs bubblewrap and curl' : false,
}, () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  before(async () => {
    tmp = await tempDir('cordon-netrules-serve-');
    writeFileSync(path.join(tmp.dir, 'net.rules'), RULES);
  });
  after(() => tmp?.cleanup());

  const curlThrough = async (url: string): Promise<string> => {
    const client = await ExecServerClient.connect({ url });
    try {
      const { events } = await client.spawn({
        processId: 'serve-1',
        argv: [
          '/bin/sh',
          '-c',
          `curl -sS http://denied.test/; echo; curl -sS http://unlisted.test/; echo; curl -sS --noproxy '*' --max-time 5 http://127.0.0.1:1/; echo " direct=$?"`,
        ],
        cwd: tmp.dir,
        env: { PATH },
        sandbox: {
          permissions: {
            type: 'managed',
            network: 'enabled',
            file_system: { type: 'restricted', entries: [{ path: { type: 'special', value: { kind: 'root' } }, access: 'read' }] },
          },
          cwd: tmp.dir,
          windowsSandboxLevel: 'disabled',
        },
      });
      let out = '';
      for await (const e of events as AsyncIterable<ProcessEvent>) if (e.type === 'output') out += e.data.toString();
      return out;
    } finally {
      await client.close();
    }
  };

  it('routes every networked process through the proxy with the rules’ policy', async () => {
    const { child, url } = await serve(['--permissions', ':danger-full-access', '--rules', path.join(tmp.dir, 'net.rules')]);
    try {
      const out = await curlThrough(url);
      assert.match(out, /"host":"denied\.test","reason":"denied"/);
      assert.match(out, /"host":"unlisted\.test","reason":"not_allowed"/);
      assert.match(out, / direct=7/);
    } finally {
      child.kill();
    }
  });

  it('from cordon.toml `rules` too; under a ceiling without network the rules only warn', async () => {
    const config = path.join(tmp.dir, 'cordon.toml');
    writeFileSync(
      config,
      'rules = ["net.rules"]\ndefault_permissions = "open"\n[permissions.open]\nextends = ":workspace"\n[permissions.open.network]\nenabled = true\n',
    );
    const { child, url } = await serve(['--config', config, '--workspace', tmp.dir]);
    try {
      assert.match(await curlThrough(url), /"host":"denied\.test","reason":"denied"/);
    } finally {
      child.kill();
    }
    // The default ceiling (:workspace) gives no network: the rules cannot widen it, and say so.
    const restricted = await serve(['--workspace', tmp.dir, '--rules', path.join(tmp.dir, 'net.rules')]);
    let stderr = '';
    restricted.child.stderr.on('data', (d) => (stderr += d));
    try {
      await eventually(() => stderr.includes('network restricted'), 30_000, 'the banner');
      assert.match(
        stderr,
        /warning: the network_rule entries of the rules files have no effect: the permissions ceiling :workspace gives processes no network/,
      );
    } finally {
      restricted.child.kill();
    }
  });
});
