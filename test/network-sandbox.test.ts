import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { CordonServer } from '../src/server/index.js';
import { type Json, RawClient, startServer, tempDir } from './helpers.js';
import { canUseNetns, startUpstream, type Upstream } from './network-fixture.js';

const PATH = '/usr/local/bin:/usr/bin:/bin';
const HAVE = (bin: string): boolean => existsSync(`/usr/bin/${bin}`) || existsSync(`/bin/${bin}`);
const skip = !canUseNetns()
  ? 'needs root and iproute2 (ip netns)'
  : !existsSync('/usr/bin/bwrap')
    ? 'needs bubblewrap'
    : !HAVE('curl') || !HAVE('git')
      ? 'needs curl and git'
      : false;

interface Run {
  code: number;
  out: string;
  decisions: Json[];
  start: Json;
}

/**
 * A sandboxed process whose only way out is its managed proxy, against upstream servers in a
 * network namespace this test creates. Every refusal is paired with an allowed twin that works.
 */
describe('managed network: sandboxed processes through the proxy', { skip }, () => {
  let up: Upstream;
  let server: CordonServer;
  let url: string;
  let client: RawClient;
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let hostLoop: http.Server;
  let hostLoopPort = 0;
  let unixPath = '';
  let unixServer: net.Server;
  let n = 0;
  let rebindCalls = 0;

  before(async () => {
    tmp = await tempDir('cordon-net-');
    const files = path.join(tmp.dir, 'files');
    mkdirSync(files);
    // A dumb-HTTP git repository the upstream serves as static files.
    const work = path.join(tmp.dir, 'work');
    const git = (cwd: string, ...args: string[]): string =>
      execFileSync('git', args, { cwd, env: { PATH, HOME: tmp.dir, GIT_CONFIG_NOSYSTEM: '1' } }).toString();
    mkdirSync(work);
    git(work, 'init', '-q', '-b', 'main');
    writeFileSync(path.join(work, 'README'), 'through the proxy\n');
    git(work, 'add', 'README');
    git(work, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', 'one');
    git(tmp.dir, 'clone', '-q', '--bare', work, path.join(files, 'repo.git'));
    git(path.join(files, 'repo.git'), 'update-server-info');
    up = await startUpstream(files);
    hostLoop = http.createServer((_req, res) => res.end('HOST LOOPBACK\n'));
    await new Promise<void>((r) => hostLoop.listen(0, '127.0.0.1', r));
    hostLoopPort = (hostLoop.address() as net.AddressInfo).port;
    unixPath = path.join(tmp.dir, 'host.sock');
    unixServer = net.createServer((s) => s.end('HOST UNIX\n'));
    await new Promise<void>((r) => unixServer.listen(unixPath, r));
    const resolve = async (host: string): Promise<string[]> => {
      // A rebinding name: public-looking (trusted) at the first lookup, host loopback after.
      if (host === 'rebind.test') return rebindCalls++ === 0 ? [up.v4] : ['127.0.0.1'];
      return up.resolve(host);
    };
    ({ server, url } = await startServer({ networkResolve: resolve, networkTrustedRanges: up.ranges }));
    ({ client } = await RawClient.ready(url));
  });

  after(async () => {
    client?.close();
    await server?.close();
    hostLoop?.close();
    unixServer?.close();
    await up?.stop();
    await tmp?.cleanup();
  });

  const sandbox = (network: 'enabled' | 'restricted' = 'enabled'): Json => ({
    permissions: {
      type: 'managed',
      network,
      file_system: {
        type: 'restricted',
        entries: [
          { path: { type: 'special', value: { kind: 'root' } }, access: 'read' },
          { path: { type: 'path', path: tmp.dir }, access: 'write' },
        ],
      },
    },
    cwd: tmp.dir,
    windowsSandboxLevel: 'disabled',
  });

  const proxyParams = (domains: Record<string, 'allow' | 'deny'>, extra: Json = {}): Json => ({
    proxy: {
      enabled: true,
      enableSocks5: true,
      enableSocks5Udp: false,
      allowUpstreamProxy: false,
      dangerouslyAllowAllUnixSockets: false,
      mode: 'full',
      domains,
      unixSockets: null,
      allowLocalBinding: false,
      ...extra,
    },
    environmentId: 'test',
    executionId: `exec-${n}`,
  });

  async function run(
    script: string,
    domains: Record<string, 'allow' | 'deny'> = { '*.test': 'allow' },
    opts: { proxy?: Json; launch?: Json; onRequest?: (m: Json) => void } = {},
  ): Promise<Run> {
    const processId = `net-${++n}`;
    const start = await client.request('process/start', {
      processId,
      argv: ['/bin/sh', '-c', script],
      cwd: tmp.dir,
      env: { PATH, HOME: tmp.dir },
      tty: false,
      sandbox: sandbox(),
      enforceManagedNetwork: true,
      managedNetwork: null,
      networkProxy: { ...proxyParams(domains, opts.proxy), ...opts.launch },
    });
    if (start.error) return { code: -1, out: start.error.message, decisions: [], start };
    const events = await client.untilClosed(processId, 90_000);
    const out = events
      .filter((m) => m.method === 'process/output')
      .map((m) => Buffer.from(m.params.chunk, 'base64').toString())
      .join('');
    const exited = events.find((m) => m.method === 'process/exited');
    const decisions = client.received
      .filter((m) => m.method === 'network/policyDecision' && m.params.processId === processId)
      .map((m) => m.params);
    return { code: exited?.params.exitCode ?? -1, out, decisions, start };
  }

  it('sets the proxy variables of every family, pointing into the namespace, and nothing routes around them', async () => {
    const r = await run('env | sort');
    assert.equal(r.code, 0, r.out);
    const env = Object.fromEntries(
      r.out
        .trim()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    const httpUrl = env.HTTP_PROXY as string;
    assert.match(httpUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    for (const k of [
      'HTTPS_PROXY',
      'http_proxy',
      'https_proxy',
      'YARN_HTTP_PROXY',
      'YARN_HTTPS_PROXY',
      'npm_config_http_proxy',
      'npm_config_https_proxy',
      'npm_config_proxy',
      'NPM_CONFIG_HTTP_PROXY',
      'NPM_CONFIG_HTTPS_PROXY',
      'NPM_CONFIG_PROXY',
      'BUNDLE_HTTP_PROXY',
      'BUNDLE_HTTPS_PROXY',
      'PIP_PROXY',
      'DOCKER_HTTP_PROXY',
      'DOCKER_HTTPS_PROXY',
      'WS_PROXY',
      'WSS_PROXY',
      'ws_proxy',
      'wss_proxy',
    ]) {
      assert.equal(env[k], httpUrl, k);
    }
    for (const k of ['ALL_PROXY', 'all_proxy', 'FTP_PROXY', 'ftp_proxy'])
      assert.match(env[k] as string, /^socks5h:\/\/127\.0\.0\.1:\d+$/, k);
    for (const k of ['NO_PROXY', 'no_proxy', 'npm_config_noproxy', 'NPM_CONFIG_NOPROXY', 'BUNDLE_NO_PROXY']) assert.equal(env[k], '', k);
    assert.equal(env.CODEX_NETWORK_PROXY_ACTIVE, '1');
    assert.equal(env.CODEX_NETWORK_ALLOW_LOCAL_BINDING, '0');
    assert.equal(env.ELECTRON_GET_USE_PROXY, 'true');
    assert.equal(env.NODE_USE_ENV_PROXY, '1');
    assert.equal(env.CORDON_NET_TOKEN, undefined, 'the bridge token never reaches the command');
  });

  it('curl through the HTTP proxy reaches an allowed host; a denied and an unlisted host get 403 with the reference bodies', async () => {
    const r = await run(
      `curl -sS http://allowed.test:8080/a; echo; curl -sS -D - http://bad.test:8080/b; echo; curl -sS http://other.example:8080/c`,
      { 'allowed.test': 'allow', 'bad.test': 'deny' },
    );
    assert.match(r.out, /upstream GET \/a host=allowed\.test:8080/);
    assert.match(r.out, /x-proxy-error: blocked-by-denylist/);
    assert.match(
      r.out,
      /\{"status":"blocked","host":"bad\.test","reason":"denied","decision":"deny","source":"baseline_policy","protocol":"http","port":8080,"message":"Domain denied by the sandbox policy\."\}/,
    );
    assert.match(r.out, /"reason":"not_allowed".*"message":"Domain not in allowlist\."/);
    const allow = r.decisions.find((d) => d.host === 'allowed.test');
    assert.deepEqual(Object.keys(allow ?? {}).sort(), [
      'client',
      'decision',
      'host',
      'method',
      'policyOverride',
      'port',
      'processId',
      'protocol',
      'reason',
      'scope',
      'source',
      'timestamp',
    ]);
    assert.equal(allow?.decision, 'allow');
    assert.equal(r.decisions.find((d) => d.host === 'bad.test')?.reason, 'denied');
  });

  it('SOCKS5 (ALL_PROXY) and CONNECT tunnels carry allowed traffic and refuse the rest', async () => {
    const r = await run(
      `curl -sS -x "$ALL_PROXY" http://allowed.test:8080/socks; echo " socks=$?"; curl -sS -x "$ALL_PROXY" http://other.example:8080/ ; echo " socksblocked=$?"; ` +
        `curl -sS -p http://allowed.test:8080/tunnel; echo " tunnel=$?"; curl -sS -p http://other.example:8080/; echo " tunnelblocked=$?"`,
      { 'allowed.test': 'allow' },
    );
    assert.match(r.out, /upstream GET \/socks[\s\S]*socks=0/);
    assert.match(r.out, /socksblocked=97/);
    assert.match(r.out, /upstream GET \/tunnel[\s\S]*tunnel=0/);
    assert.match(r.out, /tunnelblocked=56/);
    assert.ok(r.decisions.some((d) => d.protocol === 'socks5_tcp' && d.decision === 'allow' && d.method === undefined));
    assert.ok(r.decisions.some((d) => d.protocol === 'https_connect' && d.decision === 'deny'));
  });

  it("Node's http goes through the proxy; Node 20's fetch, which ignores the proxy variables, has no network at all", async () => {
    const script = `
const http = require('http');
const p = new URL(process.env.HTTP_PROXY);
http.get({ host: p.hostname, port: p.port, path: 'http://allowed.test:8080/node', headers: { host: 'allowed.test:8080' } }, (res) => {
  let b = ''; res.on('data', (d) => (b += d)); res.on('end', () => {
    console.log('http: ' + b.trim());
    fetch('http://allowed.test:8080/fetch').then(() => console.log('fetch: reached'), (e) => console.log('fetch: failed ' + (e.cause && e.cause.code)));
  });
});`;
    writeFileSync(path.join(tmp.dir, 'node-client.cjs'), script);
    const r = await run(`${process.execPath} ${path.join(tmp.dir, 'node-client.cjs')}`, { 'allowed.test': 'allow' });
    assert.match(r.out, /http: upstream GET \/node/);
    assert.match(r.out, /fetch: failed/);
  });

  it('git clones over HTTP through the proxy; without the proxy it cannot', async () => {
    const r = await run(
      `git clone -q http://git.test:8080/repo.git clone1 && cat clone1/README; echo "clone=$?"; ` +
        `env -u http_proxy -u HTTP_PROXY -u all_proxy -u ALL_PROXY git clone -q http://git.test:8080/repo.git clone2 2>&1 | tail -1; echo "direct=$(test -d clone2/.git && echo yes || echo no)"`,
      { 'git.test': 'allow' },
    );
    assert.match(r.out, /through the proxy\nclone=0/);
    assert.match(r.out, /direct=no/);
  });

  it('escape pairs: direct TCP, UDP, DNS and IPv6 fail; the same destinations through the proxy work', async () => {
    const r = await run(
      `curl -sS --noproxy '*' --max-time 5 http://${up.v4}:8080/direct; echo " direct=$?"; ` +
        `NO_PROXY='*' no_proxy='*' curl -sS --max-time 5 http://allowed.test:8080/noproxy; echo " noproxy=$?"; ` +
        `curl -sS -g --noproxy '*' --max-time 5 'http://[${up.v6}]:8080/v6'; echo " v6direct=$?"; ` +
        `curl -sS http://v6.test:8080/v6proxied; echo " v6proxied=$?"; ` +
        `curl -sS http://${up.v4}:8080/literal; echo " literal=$?"; ` +
        `${process.execPath} -e "const s=require('dgram').createSocket('udp4'); s.send('x', ${up.udpPort}, '${up.v4}', (e) => { console.log('udp: ' + (e ? e.code : 'sent')); s.close(); })"; ` +
        `getent hosts allowed.test; echo " dns=$?"`,
      { '*.test': 'allow', [up.v4]: 'allow' },
    );
    assert.match(r.out, / direct=7/);
    assert.match(r.out, / noproxy=6/); // no resolver in the namespace: the name does not even resolve
    assert.match(r.out, / v6direct=7/);
    assert.match(r.out, /upstream GET \/v6proxied[\s\S]*v6proxied=0/);
    assert.match(r.out, /upstream GET \/literal[\s\S]*literal=0/);
    assert.match(r.out, /udp: ENETUNREACH/);
    assert.match(r.out, / dns=2/);
    // the UDP server itself answers from outside the sandbox
    const sock = dgram.createSocket('udp4');
    const pong = await new Promise<string>((resolve) => {
      sock.on('message', (m) => resolve(String(m)));
      sock.send('ping', up.udpPort, up.v4);
    });
    sock.close();
    assert.equal(pong, 'pong:ping');
  });

  it('escape pairs: raw, netlink and Unix sockets are refused by seccomp; an inet socket is allowed', async () => {
    const perl = (family: string, type: string, extra = ''): string =>
      `perl -MSocket -e 'socket(my $s, ${family}, ${type}, 0) or die "$!\\n"; ${extra} print "ok\\n"' 2>&1`;
    const r = await run(
      `echo "raw: $(${perl('PF_INET', 'SOCK_RAW')})"; echo "netlink: $(${perl('PF_NETLINK', 'SOCK_RAW')})"; echo "unix: $(${perl('PF_UNIX', 'SOCK_STREAM')})"; ` +
        `echo "inet: $(${perl('PF_INET', 'SOCK_STREAM')})"; ` +
        `${process.execPath} -e "require('net').connect('${unixPath}').on('data', (d) => console.log('unixconnect: ' + d)).on('error', (e) => console.log('unixconnect: ' + e.code))"`,
    );
    assert.match(r.out, /raw: Operation not permitted/);
    assert.match(r.out, /netlink: Operation not permitted/);
    assert.match(r.out, /unix: Operation not permitted/);
    assert.match(r.out, /inet: ok/);
    assert.match(r.out, /unixconnect: EPERM/);
    // the twin: the same socket from outside the sandbox answers
    const outside = await new Promise<string>((resolve) => net.connect(unixPath).on('data', (d) => resolve(String(d))));
    assert.equal(outside, 'HOST UNIX\n');
  });

  it('host loopback, metadata and every alternate spelling of them are refused as local; a trusted literal is not', async () => {
    const raw = (line: string): string =>
      `printf '${line}\\r\\nHost: x\\r\\n\\r\\n' | curl -sS --noproxy '*' --max-time 5 telnet://127.0.0.1:\${HTTP_PROXY##*:} 2>&1 | head -1; echo`;
    const spellings = [
      '127.0.0.1',
      '127.1',
      '2130706433',
      '0x7f.1',
      '0177.0.0.1',
      '[::ffff:127.0.0.1]',
      '[::ffff:7f00:1]',
      '[64:ff9b::7f00:1]',
      '[2002:7f00:1::]',
      '169.254.169.254',
      '2852039166',
      '[::ffff:a9fe:a9fe]',
      '168.63.129.16',
      '100.100.100.200',
      '[::1]',
      'localhost',
      '0.0.0.0',
    ];
    const lines = spellings.map((s) => raw(`CONNECT ${s}:${hostLoopPort} HTTP/1.1`)).join('; ');
    const r = await run(
      `${lines}; curl -sS -p http://${up.v4}:8080/trusted; echo " trusted=$?"; curl -sS http://loop.test:${hostLoopPort}/ ; echo; curl -sS http://meta.test/; echo`,
      { '*': 'allow' },
    );
    const refusals = r.out.split('\n').filter((l) => l.startsWith('HTTP/1.1 403 Sandbox policy blocks local/private network addresses.'));
    assert.equal(refusals.length, spellings.length, r.out);
    assert.doesNotMatch(r.out, /HOST LOOPBACK/);
    assert.match(r.out, /upstream GET \/trusted[\s\S]*trusted=0/);
    assert.equal((r.out.match(/"reason":"not_allowed_local"/g) ?? []).length, 2, r.out); // loop.test and meta.test resolve to local addresses
  });

  it('DNS rebinding: the address checked is the address dialled (one lookup per request)', async () => {
    rebindCalls = 0;
    const r = await run(`curl -sS http://rebind.test:8080/rebind`, { 'rebind.test': 'allow' });
    assert.match(r.out, /upstream GET \/rebind host=rebind\.test:8080/);
    assert.equal(rebindCalls, 1);
    // the next lookup answers loopback, and is refused
    const again = await run(`curl -sS http://rebind.test:8080/again`, { 'rebind.test': 'allow' });
    assert.match(again.out, /"reason":"not_allowed_local"/);
  });

  it('limited mode: GET passes, POST and CONNECT are refused before anyone is asked', async () => {
    const r = await run(
      `curl -sS http://allowed.test:8080/get; curl -sS -d x http://allowed.test:8080/post; echo; curl -sS -p http://allowed.test:8080/; echo " connect=$?"`,
      { 'allowed.test': 'allow' },
      { proxy: { mode: 'limited' } },
    );
    assert.match(r.out, /upstream GET \/get/);
    assert.match(
      r.out,
      /"reason":"method_not_allowed","decision":"deny","source":"mode_guard".*"message":"Method not allowed in limited mode\."/,
    );
    assert.match(r.out, / connect=56/);
    assert.ok(r.decisions.some((d) => d.reason === 'mitm_required' && d.scope === 'non_domain'));
  });

  it('asks the client about allow-list misses over network/policyRequest and follows its answer', async () => {
    const answers: Record<string, Json> = {
      'ask-allow.example': { decision: { type: 'allow' } },
      'ask-deny.example': { decision: { type: 'deny', reason: 'user_denied' } },
    };
    const seen: Json[] = [];
    const onMessage = (data: unknown): void => {
      const m = JSON.parse(String(data)) as Json;
      if (m.method !== 'network/policyRequest') return;
      seen.push(m);
      client.send({ id: m.id, result: answers[m.params.request.host] ?? { decision: 'allow' } });
    };
    client.ws.on('message', onMessage);
    try {
      const r = await run(
        `curl -sS http://ask-allow.example:8080/x; echo; curl -sS http://ask-deny.example:8080/; echo; curl -sS http://ask-bad.example:8080/`,
        { 'allowed.test': 'allow' },
        { launch: { policyDecisionTimeoutMs: 10_000 } },
      );
      assert.equal(seen.length, 3);
      assert.deepEqual(seen[0]?.params, { processId: `net-${n}`, request: { protocol: 'http', host: 'ask-allow.example', port: 8080 } });
      assert.ok(Number.isInteger(seen[0]?.id));
      // allowed by the client, then resolved: not a trusted address here, so still refused as unresolvable
      assert.ok(r.decisions.some((d) => d.host === 'ask-allow.example' && d.source === 'decider' && d.reason === 'not_allowed_local'));
      assert.match(
        r.out,
        /"host":"ask-deny\.example","reason":"user_denied","decision":"deny","source":"decider".*"message":"Request blocked by network policy\."/,
      );
      assert.match(r.out, /"host":"ask-bad\.example","reason":"not_allowed","decision":"deny","source":"decider"/);
    } finally {
      client.ws.off('message', onMessage);
    }
  });

  it('a client allow reaches an upstream; a client that never answers is denied after the deadline', async () => {
    const onMessage = (data: unknown): void => {
      const m = JSON.parse(String(data)) as Json;
      if (m.method === 'network/policyRequest' && m.params.request.host === 'ok.test')
        client.send({ id: m.id, result: { decision: { type: 'allow' } } });
    };
    client.ws.on('message', onMessage);
    try {
      const r = await run(
        `curl -sS http://ok.test:8080/approved; echo; curl -sS http://silent.test:8080/`,
        { 'allowed.test': 'allow' },
        { launch: { policyDecisionTimeoutMs: 1 } },
      );
      assert.match(r.out, /upstream GET \/approved/);
      assert.ok(
        r.decisions.some(
          (d) =>
            d.host === 'ok.test' &&
            d.decision === 'allow' &&
            d.source === 'decider' &&
            d.policyOverride === true &&
            d.reason === 'not_allowed',
        ),
      );
      assert.match(r.out, /"host":"silent\.test","reason":"not_allowed","decision":"deny","source":"decider"/);
    } finally {
      client.ws.off('message', onMessage);
    }
  });

  it('fails closed on launch requests it cannot honour', async () => {
    const start = (extra: Json, sb: Json | null = sandbox()): Promise<Json> =>
      client.request('process/start', {
        processId: `bad-${++n}`,
        argv: ['/bin/true'],
        cwd: tmp.dir,
        env: { PATH },
        tty: false,
        sandbox: sb,
        ...extra,
      });
    assert.match((await start({ enforceManagedNetwork: true })).error?.message ?? '', /enforceManagedNetwork/);
    assert.match((await start({ networkProxy: proxyParams({}) }, sandbox('restricted'))).error?.message ?? '', /network is `enabled`/);
    assert.match(
      (await start({ networkProxy: { ...proxyParams({}), policyDecisionTimeoutMs: 0 } })).error?.message ?? '',
      /timeout must be nonzero/,
    );
    assert.match(
      (await start({ networkProxy: proxyParams({}), managedNetwork: { loopbackPorts: [1] } })).error?.message ?? '',
      /mutually exclusive/,
    );
    // enforced without a sandbox: still its own network namespace
    const processId = `nosb-${++n}`;
    const ok = await client.request('process/start', {
      processId,
      argv: [
        '/bin/sh',
        '-c',
        `curl -sS --noproxy '*' --max-time 5 http://${up.v4}:8080/; echo " direct=$?"; curl -sS http://allowed.test:8080/sbless`,
      ],
      cwd: tmp.dir,
      env: { PATH },
      tty: false,
      sandbox: null,
      enforceManagedNetwork: true,
      networkProxy: proxyParams({ 'allowed.test': 'allow' }),
    });
    assert.equal(ok.error, undefined);
    const events = await client.untilClosed(processId, 60_000);
    const out = events
      .filter((m) => m.method === 'process/output')
      .map((m) => Buffer.from(m.params.chunk, 'base64').toString())
      .join('');
    assert.match(out, / direct=7/);
    assert.match(out, /upstream GET \/sbless/);
  });

  it("the operator's policy routes every networked process through the proxy, and a client cannot widen it", async () => {
    const op = await startServer({
      networkResolve: up.resolve,
      networkTrustedRanges: up.ranges,
      network: {
        mode: 'full',
        domains: { 'allowed.test': 'allow', 'other.test': 'allow', 'bad.test': 'deny' },
        allowLocalBinding: false,
        trustedRanges: [],
      },
    });
    const { client: c } = await RawClient.ready(op.url);
    try {
      const go = async (processId: string, extra: Json): Promise<string> => {
        const started = await c.request('process/start', {
          processId,
          argv: [
            '/bin/sh',
            '-c',
            `curl -sS http://allowed.test:8080/op; echo; curl -sS http://bad.test:8080/; echo; curl -sS http://wider.test:8080/; echo; curl -sS --noproxy '*' --max-time 5 http://${up.v4}:8080/; echo " direct=$?"`,
          ],
          cwd: tmp.dir,
          env: { PATH },
          tty: false,
          sandbox: sandbox(),
          ...extra,
        });
        assert.equal(started.error, undefined);
        const events = await c.untilClosed(processId, 60_000);
        return events
          .filter((m) => m.method === 'process/output')
          .map((m) => Buffer.from(m.params.chunk, 'base64').toString())
          .join('');
      };
      const implied = await go('op-1', {});
      assert.match(implied, /upstream GET \/op/);
      assert.match(implied, /"host":"bad\.test","reason":"denied"/);
      assert.match(implied, /"host":"wider\.test","reason":"not_allowed"/);
      assert.match(implied, / direct=7/);
      const widened = await go('op-2', { networkProxy: proxyParams({ '*': 'allow' }) });
      assert.match(widened, /upstream GET \/op/);
      assert.match(widened, /"host":"bad\.test","reason":"denied"/);
      assert.match(widened, /"host":"wider\.test","reason":"not_allowed"/);
    } finally {
      c.close();
      await op.server.close();
    }
  });
});
