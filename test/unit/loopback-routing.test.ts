import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { withNetworkRules } from '../../src/network/network-rules.js';
import { NetworkPolicy } from '../../src/network/policy.js';
import { RpcError } from '../../src/protocol/index.js';
import { loopbackRoute, loopbackRoutedNetwork } from '../../src/sandbox/loopback-routing.js';

const fill = (t: (string | { port: string })[]): string => t.map((p) => (typeof p === 'string' ? p : `<${p.port}>`)).join('');

describe('managedNetwork: which variables are rewritten, and how', () => {
  it('rewrites every proxy variable naming a listed loopback port, keeping scheme (lower-cased), credentials and path', () => {
    const { route } = loopbackRoute(
      { loopbackPorts: [3128, 1080] },
      {
        HTTP_PROXY: 'http://127.0.0.1:3128',
        https_proxy: 'http://u:p%40ss@localhost:3128/',
        ALL_PROXY: 'SOCKS5H://[::1]:1080',
        npm_config_proxy: '127.0.0.1:3128',
        grpc_proxy: 'http://127.0.0.1:3128/x?y#z',
        NO_PROXY: 'kept',
        FTP_PROXY: '',
        OTHER: 'http://127.0.0.1:9',
      },
    );
    assert.deepEqual(route.endpoints, ['loopback-0', 'loopback-1']);
    assert.deepEqual(Object.fromEntries(Object.entries(route.env).map(([k, v]) => [k, fill(v)])), {
      HTTP_PROXY: 'http://127.0.0.1:<loopback-0>',
      https_proxy: 'http://u:p%40ss@127.0.0.1:<loopback-0>/',
      ALL_PROXY: 'socks5h://127.0.0.1:<loopback-1>',
      npm_config_proxy: '127.0.0.1:<loopback-0>',
      grpc_proxy: 'http://127.0.0.1:<loopback-0>/x?y#z',
    });
  });

  it('refuses what it cannot route, naming the variable', () => {
    const refusal = (env: Record<string, string>, ports = [3128]): string => {
      try {
        loopbackRoute({ loopbackPorts: ports }, env);
      } catch (err) {
        assert.ok(err instanceof RpcError);
        assert.equal(err.code, -32602);
        return err.message;
      }
      assert.fail('not refused');
    };
    assert.match(
      refusal({ HTTP_PROXY: 'http://127.0.0.1:3129' }),
      /HTTP_PROXY="http:\/\/127\.0\.0\.1:3129" names port 3129, which is not in loopbackPorts \[3128\]/,
    );
    assert.match(refusal({ HTTP_PROXY: 'http://127.0.0.1' }), /names no port/);
    for (const v of [
      'http://127.0.0.2:3128',
      'http://10.0.0.1:3128',
      'http://evil@:3128',
      'not a url',
      'http://[::2]:3128',
      'http://127.0.0.1:3128@10.0.0.1:80',
    ])
      assert.match(refusal({ HTTP_PROXY: v }), /is not a proxy on this host's loopback/, v);
    assert.match(refusal({ NO_PROXY: '*' }), /none is set/);
    assert.throws(() => loopbackRoutedNetwork({ loopbackPorts: [] }), /loopbackPorts is empty/);
  });
});

describe('network_rule in the operator policy', () => {
  const policy = (decider?: () => Promise<{ type: 'allow' }>) =>
    new NetworkPolicy(
      {
        mode: 'full',
        domains: {},
        allowLocalBinding: false,
        operatorLaunch: true,
        trustedRanges: ['203.0.113.0/24'], // documentation range: resolved here, never dialled
        ceiling: withNetworkRules(undefined, [
          { normalizedHost: 'a.test', protocol: 'https', decision: 'allow' },
          { normalizedHost: 'd.test', protocol: 'http', decision: 'allow' },
          { normalizedHost: 'd.test', protocol: 'socks5_tcp', decision: 'deny' },
          { normalizedHost: 'p.test', protocol: 'http', decision: 'allow' },
          { normalizedHost: 'p.test', protocol: 'http', decision: 'prompt' },
        ]),
      },
      { resolve: async () => ['203.0.113.7'], ...(decider ? { decider } : {}) },
    );
  const reason = async (p: NetworkPolicy, protocol: 'http' | 'https_connect' | 'socks5_tcp', host: string): Promise<string> => {
    const v = await p.check({ protocol, host, port: 443 });
    return v.allowed ? 'allowed' : v.reason;
  };

  it('keeps the protocol of allow and prompt rules; a deny covers every protocol; prompt beats allow', async () => {
    const asked: string[] = [];
    const p = policy(async () => (asked.push('asked'), { type: 'allow' }));
    assert.equal(await reason(p, 'https_connect', 'a.test'), 'allowed');
    assert.equal(await reason(p, 'http', 'a.test'), 'not_allowed');
    assert.equal(await reason(p, 'socks5_tcp', 'a.test'), 'not_allowed');
    assert.equal(await reason(p, 'http', 'd.test'), 'denied');
    assert.equal(await reason(p, 'https_connect', 'other.test'), 'not_allowed');
    assert.deepEqual(asked, [], 'only prompt rules ask');
    assert.equal(await reason(p, 'http', 'p.test'), 'allowed');
    assert.deepEqual(asked, ['asked']);
    assert.equal(await reason(policy(), 'http', 'p.test'), 'not_allowed', 'nobody to ask: refused');
  });
});
