import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type NetworkFlags, operatorNetworkFromFlags } from '../../src/cli/network-flags.js';
import { classifyAddress, parseIpLiteral } from '../../src/network/address.js';
import { DomainPatternError, normalizeHost, parseDomainPattern, patternMatches } from '../../src/network/domain-pattern.js';
import { ManagedProxy } from '../../src/network/managed-proxy.js';
import { type DecisionEvent, NetworkPolicy } from '../../src/network/policy.js';
import { compilePermissions } from '../../src/sandbox/config.js';
import { proxyEnv } from '../../src/sandbox/proxy-env.js';
import { buildSeccompFilter, evaluateSeccomp, SECCOMP } from '../../src/sandbox/seccomp.js';

describe('network: addresses', () => {
  it('parses every inet_aton spelling and judges embedded IPv4 by the embedded address', () => {
    for (const s of [
      '127.1',
      '2130706433',
      '0x7f.1',
      '0177.0.0.1',
      '[::ffff:127.0.0.1]',
      '::ffff:7f00:1',
      '64:ff9b::7f00:1',
      '2002:7f00:1::',
      '::1',
      '0.0.0.0',
      '169.254.169.254',
      '2852039166',
      '168.63.129.16',
      '100.100.100.200',
      'fd00:ec2::254',
      '224.0.0.1',
      'fe80::1',
    ]) {
      const a = parseIpLiteral(s);
      assert.ok(a, s);
      assert.equal(classifyAddress(a), 'local', s);
    }
    for (const s of ['10.1.2.3', '172.16.0.1', '192.168.1.1', 'fc00::1', '100.64.0.1', '192.0.2.1'])
      assert.equal(classifyAddress(parseIpLiteral(s)!), 'private', s);
    for (const s of ['8.8.8.8', '::ffff:8.8.8.8', '2606:4700::1']) assert.equal(classifyAddress(parseIpLiteral(s)!), 'public', s);
    assert.equal(parseIpLiteral('example.com'), undefined);
    assert.equal(parseIpLiteral('1.2.3.4.5'), undefined);
  });
});

describe('network: domain patterns', () => {
  const m = (p: string, host: string, port = 80): boolean => patternMatches(parseDomainPattern(p), normalizeHost(host), port);
  it('matches like the reference, and honours a port', () => {
    assert.ok(m('*.wild.test', 'a.wild.test'));
    assert.ok(!m('*.wild.test', 'wild.test'));
    assert.ok(m('**.wild2.test', 'wild2.test') && m('**.wild2.test', 'a.b.wild2.test'));
    assert.ok(m('exact.test', 'EXACT.TEST') && m('exact.test', 'exact.test.') && !m('exact.test', 'sub.exact.test'));
    assert.ok(m('EXACT2.TEST', 'exact2.test'));
    assert.ok(m('*', 'anything.example'));
    assert.ok(m('127.0.0.2:9999', '127.0.0.2', 9999) && !m('127.0.0.2:9999', '127.0.0.2', 9998));
    assert.ok(m('127.1', '127.0.0.1'), 'an IP entry matches every spelling');
    assert.ok(m('[::1]:8080', '::1', 8080));
    assert.throws(() => parseDomainPattern('https://x.test'), DomainPatternError);
    assert.throws(() => parseDomainPattern('a*.test'), DomainPatternError);
    assert.throws(() => parseDomainPattern('::1:80:x'), DomainPatternError);
    assert.throws(() => parseDomainPattern(''), DomainPatternError);
  });
});

describe('network: decision pipeline', () => {
  const events: DecisionEvent[] = [];
  const policy = (
    domains: Record<string, 'allow' | 'deny'>,
    extra: Partial<ConstructorParameters<typeof NetworkPolicy>[0]> = {},
    decider?: () => Promise<{ type: 'allow' } | { type: 'deny' | 'ask'; reason?: string }>,
  ): NetworkPolicy =>
    new NetworkPolicy(
      { mode: 'full', domains, allowLocalBinding: false, ...extra },
      {
        resolve: async (h) => (h === 'pub.test' ? ['8.8.8.8'] : h === 'mixed.test' ? ['127.0.0.1', '8.8.4.4'] : []),
        ...(decider ? { decider } : {}),
        onDecision: (e) => events.push(e),
      },
    );

  it('deny wins and is never asked about; local literals are refused before the decider', async () => {
    let asked = 0;
    const p = policy({ 'x.test': 'deny', '*.test': 'allow' }, {}, async () => (asked++, { type: 'allow' }));
    assert.deepEqual(await p.check({ protocol: 'http', host: 'x.test', port: 80 }), {
      allowed: false,
      host: 'x.test',
      reason: 'denied',
      decision: 'deny',
      source: 'baseline_policy',
    });
    assert.equal((await p.check({ protocol: 'http', host: '127.1', port: 80 })).allowed, false);
    assert.equal(asked, 0);
  });

  it('drops local answers of a resolution and dials only what survived', async () => {
    const v = await policy({ '*.test': 'allow' }).check({ protocol: 'http', host: 'mixed.test', port: 80 });
    assert.deepEqual(v, { allowed: true, host: 'mixed.test', addresses: ['8.8.4.4'] });
    const none = await policy({ '*.test': 'allow' }).check({ protocol: 'http', host: 'unresolvable.test', port: 80 });
    assert.equal(none.allowed === false && none.reason, 'not_allowed_local');
  });

  it('an explicitly listed loopback literal is reachable; metadata never is, even with local binding', async () => {
    assert.equal((await policy({ '127.0.0.1': 'allow' }).check({ protocol: 'http', host: '127.0.0.1', port: 80 })).allowed, true);
    const meta = await policy({ '*': 'allow' }, { allowLocalBinding: true }).check({ protocol: 'http', host: '169.254.169.254', port: 80 });
    assert.equal(meta.allowed, false);
    const loop = await policy({ '*': 'allow' }, { allowLocalBinding: true }).check({ protocol: 'http', host: '127.0.0.1', port: 80 });
    assert.equal(loop.allowed, true);
  });

  it('limited mode refuses the method before the host is considered', async () => {
    let asked = 0;
    const p = policy({}, { mode: 'limited' }, async () => (asked++, { type: 'allow' }));
    const post = await p.check({ protocol: 'http', host: 'pub.test', port: 80, method: 'POST' });
    assert.equal(post.allowed === false && post.reason, 'method_not_allowed');
    assert.equal((await p.check({ protocol: 'https_connect', host: 'pub.test', port: 443 })).allowed, false);
    assert.equal((await p.check({ protocol: 'socks5_tcp', host: 'pub.test', port: 443 })).allowed, false);
    assert.equal(asked, 0);
  });

  it('maps decider answers; errors and malformed answers deny', async () => {
    const deny = await policy({}, {}, async () => ({ type: 'deny', reason: 'user_denied' })).check({
      protocol: 'http',
      host: 'pub.test',
      port: 80,
    });
    assert.deepEqual(deny, { allowed: false, host: 'pub.test', reason: 'user_denied', decision: 'deny', source: 'decider' });
    const ask = await policy({}, {}, async () => ({ type: 'ask' })).check({ protocol: 'http', host: 'pub.test', port: 80 });
    assert.equal(ask.allowed === false && ask.decision, 'ask');
    const boom = await policy({}, {}, async () => {
      throw new Error('x');
    }).check({ protocol: 'http', host: 'pub.test', port: 80 });
    assert.equal(boom.allowed === false && boom.reason, 'not_allowed');
    events.length = 0;
    const ok = await policy({}, {}, async () => ({ type: 'allow' })).check({ protocol: 'http', host: 'pub.test', port: 80, method: 'GET' });
    assert.equal(ok.allowed, true);
    assert.deepEqual(
      { ...events[0], timestamp: 't' },
      {
        timestamp: 't',
        scope: 'domain',
        decision: 'allow',
        source: 'decider',
        reason: 'not_allowed',
        protocol: 'http',
        host: 'pub.test',
        port: 80,
        method: 'GET',
        policyOverride: true,
      },
    );
  });
});

describe('network: proxy listener edge cases (real sockets)', () => {
  let proxy: ManagedProxy;
  let ports: { http: number; socks5?: number };
  let up: http.Server;
  let upPort = 0;
  before(async () => {
    up = http.createServer((req, res) => res.end(`up ${req.url}`));
    await new Promise<void>((r) => up.listen(0, '127.0.0.1', r));
    upPort = (up.address() as net.AddressInfo).port;
    proxy = new ManagedProxy({
      policy: { mode: 'full', domains: { '127.0.0.1': 'allow', 'refused.test': 'allow' }, allowLocalBinding: true },
      enableSocks5: true,
      resolve: async () => ['127.0.0.1'],
    });
    ports = await proxy.listen();
  });
  after(() => {
    proxy.close();
    up.close();
  });

  const raw = (port: number, data: Buffer | string, until = 200): Promise<Buffer> =>
    new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => s.write(data));
      let got = Buffer.alloc(0);
      const done = (): void => {
        s.destroy();
        resolve(got);
      };
      s.on('data', (d) => {
        got = Buffer.concat([got, d]);
        if (
          got.length >= until ||
          (got.includes('\r\n\r\n') &&
            /content-length: (\d+)/i.test(got.toString()) &&
            got.toString().split('\r\n\r\n')[1]!.length >= Number(/content-length: (\d+)/i.exec(got.toString())![1]))
        )
          done();
      });
      s.on('close', done);
      s.on('error', done);
    });

  it('answers malformed requests like the reference', async () => {
    assert.match((await raw(ports.http, 'HELLO\r\n\r\n')).toString(), /^HTTP\/1\.1 400 Bad Request/);
    assert.match((await raw(ports.http, 'GET /x HTTP/1.1\r\n\r\n')).toString(), /400[\s\S]*missing host$/);
    assert.match(
      (await raw(ports.http, `GET http://127.0.0.1:${upPort}/ HTTP/1.1\r\nHost: other\r\n\r\n`)).toString(),
      /400[\s\S]*Host header does not match request target$/,
    );
    assert.match(
      (await raw(ports.http, `GET ftp://127.0.0.1/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`)).toString(),
      /400[\s\S]*Host header does not match request target$/,
    );
    assert.match(
      (
        await raw(
          ports.http,
          `GET http://127.0.0.1:${upPort}/ HTTP/1.1\r\nHost: 127.0.0.1:${upPort}\r\nx-unix-socket: /run/docker.sock\r\n\r\n`,
        )
      ).toString(),
      /501[\s\S]*unix sockets unsupported$/,
    );
    assert.match(
      (await raw(ports.http, `GET http://127.0.0.1:${upPort}/fine HTTP/1.1\r\nHost: 127.0.0.1:${upPort}\r\n\r\n`)).toString(),
      /200[\s\S]*up \/fine$/,
    );
    assert.match((await raw(ports.http, `GET /origin HTTP/1.1\r\nHost: 127.0.0.1:${upPort}\r\n\r\n`)).toString(), /200[\s\S]*up \/origin$/);
    assert.match(
      (await raw(ports.http, `GET http://refused.test:1/ HTTP/1.1\r\nHost: refused.test:1\r\n\r\n`)).toString(),
      /502[\s\S]*x-proxy-error: upstream-failure[\s\S]*upstream failure$/,
    );
    assert.match(
      (await raw(ports.http, `GET http://[fe80::1]/ HTTP/1.1\r\nHost: [fe80::1]\r\n\r\n`)).toString(),
      /403[\s\S]*"host":"fe80::1"[\s\S]*"port":80/,
    );
  });

  it('speaks SOCKS5 CONNECT only, without authentication', async () => {
    const socks = ports.socks5 as number;
    assert.deepEqual([...(await raw(socks, Buffer.from([5, 1, 2])))], [5, 0xff]);
    assert.equal((await raw(socks, Buffer.from([4, 1, 0, 80, 127, 0, 0, 1, 0]))).length, 0, 'SOCKS4: closed without a reply');
    const bind = await raw(socks, Buffer.from([5, 1, 0, 5, 2, 0, 1, 127, 0, 0, 1, 0, 80]), 12);
    assert.equal(bind[3], 7);
    const udp = await raw(socks, Buffer.from([5, 1, 0, 5, 3, 0, 1, 127, 0, 0, 1, 0, 80]), 12);
    assert.equal(udp[3], 7);
    const blocked = await raw(socks, Buffer.from([5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 2, 0, 80]), 12);
    assert.equal(blocked[3], 2);
    const refused = await raw(
      socks,
      Buffer.concat([Buffer.from([5, 1, 0, 5, 1, 0, 3, 12]), Buffer.from('refused.test'), Buffer.from([0, 1])]),
      12,
    );
    assert.equal(refused[3], 5);
  });
});

describe('network: proxied seccomp program and child environment', () => {
  it('allows inet stream/datagram sockets only, and AF_UNIX socketpairs', () => {
    const filter = buildSeccompFilter({ restrictNetwork: true, proxied: true, arch: 'x64' });
    const table = SECCOMP.ARCHES.x64!;
    const run = (name: string, args: number[]): number => evaluateSeccomp(filter, { arch: table.audit, nr: table.nr[name]!, args });
    const EPERM = SECCOMP.RET_ERRNO | SECCOMP.EPERM;
    assert.equal(run('socket', [2, 1 | 0x80000]), SECCOMP.RET_ALLOW);
    assert.equal(run('socket', [10, 2]), SECCOMP.RET_ALLOW);
    assert.equal(run('socket', [2, 3]), EPERM, 'raw');
    assert.equal(run('socket', [1, 1]), EPERM, 'unix');
    assert.equal(run('socket', [16, 3]), EPERM, 'netlink');
    assert.equal(run('socket', [17, 3]), EPERM, 'packet');
    assert.equal(run('socketpair', [1, 1]), SECCOMP.RET_ALLOW);
    assert.equal(run('socketpair', [2, 1]), EPERM);
    assert.equal(run('connect', [3]), SECCOMP.RET_ALLOW);
    assert.equal(run('ptrace', []), EPERM);
  });

  it('sets every proxy variable family, NO_PROXY empty without local binding', () => {
    const env = proxyEnv({ httpPort: 1, socksPort: 2, allowLocalBinding: false });
    assert.equal(env.HTTPS_PROXY, 'http://127.0.0.1:1');
    assert.equal(env.ALL_PROXY, 'socks5h://127.0.0.1:2');
    assert.equal(env.NO_PROXY, '');
    assert.equal(proxyEnv({ httpPort: 1, socksPort: undefined, allowLocalBinding: true }).ftp_proxy, 'http://127.0.0.1:1');
    assert.equal(proxyEnv({ httpPort: 1, socksPort: undefined, allowLocalBinding: true }).no_proxy, 'localhost,127.0.0.1,::1');
  });
});

describe('network: operator configuration', () => {
  it('reads [permissions.NAME.network] keys and --network-* flags, and rejects bad ones', async () => {
    const toml = `default_permissions = "p"\n[permissions.p.filesystem]\n":minimal" = "read"\n[permissions.p.network]\nenabled = true\nmode = "limited"\ntrusted_ranges = ["10.0.0.0/8"]\n[permissions.p.network.domains]\n"a.test" = "allow"\n"b.test" = "deny"\n`;
    const compiled = compilePermissions(toml, undefined);
    assert.deepEqual(compiled.network, {
      mode: 'limited',
      domains: { 'a.test': 'allow', 'b.test': 'deny' },
      allowLocalBinding: false,
      trustedRanges: ['10.0.0.0/8'],
    });
    assert.throws(() => compilePermissions(toml.replace('"deny"', '"maybe"'), undefined), /allow" or "deny/);
    const base: NetworkFlags = {};
    assert.equal(await operatorNetworkFromFlags(base, undefined), undefined);
    const p = await operatorNetworkFromFlags({ ...base, networkAllow: ['c.test'], networkMode: 'full' }, compiled.network);
    assert.deepEqual(p?.domains, { 'a.test': 'allow', 'b.test': 'deny', 'c.test': 'allow' });
    assert.equal(p?.mode, 'full');
    await assert.rejects(operatorNetworkFromFlags({ ...base, networkAllow: ['https://x'] }, undefined), /no scheme/);
    await assert.rejects(operatorNetworkFromFlags({ ...base, networkTrustedRange: ['nope'] }, undefined), /invalid CIDR/);
  });
});
