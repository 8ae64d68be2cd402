import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { builtinProfile } from '../src/sandbox/builtin-profiles.js';
import type { CordonServer } from '../src/server/index.js';
import { findCodexBinary } from './e2e/codex-install.js';
import { type ExecServer, startReference } from './e2e/exec-servers.js';
import { type Json, RawClient, startServer } from './helpers.js';

/**
 * `managedNetwork` routing: the client runs its own proxy on this host's loopback, and the server
 * bridges exactly the ports in `loopbackPorts` into the sandbox's network namespace, rewriting the
 * proxy variables to the bridge's ports. Everything here is on 127.0.0.1: the client's proxy, a
 * bystander server on host loopback, and the sandboxes' own loopback.
 */

const PATH = '/usr/local/bin:/usr/bin:/bin';
const HAVE = (bin: string): boolean => existsSync(`/usr/bin/${bin}`) || existsSync(`/bin/${bin}`);
const skip = !existsSync('/usr/bin/bwrap') ? 'needs bubblewrap' : !HAVE('curl') ? 'needs curl' : false;
const REFERENCE = '0.171.0';

/** A scratch tree outside /tmp (the reference's sandbox treats /tmp specially). */
function scratch(prefix: string): { dir: string; cleanup: () => void } {
  const base = path.join(process.env.HOME && existsSync(process.env.HOME) ? process.env.HOME : '/var/tmp', '.cache');
  mkdirSync(base, { recursive: true });
  const dir = mkdtempSync(path.join(base, prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

async function listen(handler: http.RequestListener): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as net.AddressInfo).port };
}

interface Outcome {
  start: Json;
  code: number;
  out: string;
}

/** The command's `KEY=value` lines as a map (values of the keys asked for only). */
function envLines(out: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const m = /^ENV (\w+)=(.*)$/.exec(line);
    if (m) env[m[1] as string] = m[2] as string;
  }
  return env;
}

describe('managedNetwork: routing to the client’s own proxy on host loopback', { skip }, () => {
  let server: CordonServer;
  let client: RawClient;
  let tmp: { dir: string; cleanup: () => void };
  let proxy: { server: http.Server; port: number };
  let other: { server: http.Server; port: number };
  let bystander: { server: http.Server; port: number };
  let n = 0;

  before(async () => {
    tmp = scratch('cordon-mnet-');
    // The client's proxy: answers absolute-form requests itself, naming the URL it was asked for.
    proxy = await listen((req, res) => res.end(`client proxy: ${req.method} ${req.url}\n`));
    other = await listen((req, res) => res.end(`other proxy: ${req.method} ${req.url}\n`));
    bystander = await listen((_req, res) => res.end('BYSTANDER\n'));
    const started = await startServer();
    server = started.server;
    ({ client } = await RawClient.ready(started.url));
  });

  after(async () => {
    client?.close();
    await server?.close();
    for (const s of [proxy, other, bystander]) s?.server.close();
    tmp?.cleanup();
  });

  const sandbox = (network: 'enabled' | 'restricted' = 'enabled'): Json => ({
    permissions: {
      type: 'managed',
      network,
      file_system: {
        type: 'restricted',
        entries: [
          { path: { type: 'special', value: { kind: 'root' } }, access: 'read' },
          { path: { type: 'path', path: pathToFileURL(tmp.dir).href }, access: 'write' },
        ],
      },
    },
    cwd: pathToFileURL(tmp.dir).href,
    windowsSandboxLevel: 'disabled',
  });

  async function run(c: RawClient, script: string, env: Json, extra: Json = {}): Promise<Outcome> {
    const processId = `mn-${++n}`;
    const start = await c.request('process/start', {
      processId,
      argv: ['/bin/sh', '-c', script],
      cwd: pathToFileURL(tmp.dir).href,
      env: { PATH, HOME: tmp.dir, ...env },
      tty: false,
      sandbox: sandbox(),
      enforceManagedNetwork: true,
      managedNetwork: { loopbackPorts: [proxy.port], allowLocalBinding: false },
      ...extra,
    });
    if (start.error) return { start, code: -1, out: '' };
    const events = await c.untilClosed(processId, 90_000);
    const out = events
      .filter((m) => m.method === 'process/output')
      .map((m) => Buffer.from(m.params.chunk, 'base64').toString())
      .join('');
    const exited = events.find((m) => m.method === 'process/exited');
    return { start, code: exited?.params.exitCode ?? -1, out };
  }

  const printEnv = (...keys: string[]): string => keys.map((k) => `echo "ENV ${k}=\${${k}-<unset>}"`).join('; ');

  it('rewrites the proxy variables to a bridge port that reaches the client’s proxy (curl), and direct connections fail', async () => {
    const p = proxy.port;
    const r = await run(
      client,
      [
        printEnv('HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'ALL_PROXY', 'npm_config_proxy', 'GRPC_PROXY', 'NO_PROXY', 'MY_URL'),
        'curl -sS --max-time 10 http://example.test/through',
        // escape twins: the client's proxy port and a bystander, both on host loopback, dialled directly
        `curl -sS --noproxy '*' --max-time 5 http://127.0.0.1:${p}/direct; echo " proxy-direct=$?"`,
        `curl -sS --noproxy '*' --max-time 5 http://127.0.0.1:${bystander.port}/; echo " bystander=$?"`,
      ].join('; '),
      {
        HTTP_PROXY: `http://127.0.0.1:${p}`,
        http_proxy: `http://user:secret@localhost:${p}/`,
        HTTPS_PROXY: `HTTP://127.0.0.1:${p}/some/path`,
        npm_config_proxy: `127.0.0.1:${p}`,
        GRPC_PROXY: `http://127.0.0.1:${p}`,
        NO_PROXY: 'left.alone',
        MY_URL: `http://127.0.0.1:${p}`,
      },
    );
    assert.equal(r.start.error, undefined, JSON.stringify(r.start));
    assert.equal(r.code, 0, r.out);
    const env = envLines(r.out);
    const port = /^http:\/\/127\.0\.0\.1:(\d+)$/.exec(env.HTTP_PROXY ?? '')?.[1];
    assert.ok(port && Number(port) !== p, `HTTP_PROXY rewritten to a namespace port: ${env.HTTP_PROXY}`);
    // Every variable naming that proxy shares the one bridge port; scheme, credentials and path stay.
    assert.equal(env.http_proxy, `http://user:secret@127.0.0.1:${port}/`);
    assert.equal(env.HTTPS_PROXY, `http://127.0.0.1:${port}/some/path`); // the scheme lowercased, as the reference
    assert.equal(env.npm_config_proxy, `127.0.0.1:${port}`);
    assert.equal(env.GRPC_PROXY, `http://127.0.0.1:${port}`);
    // Unset ones stay unset, and nothing outside the proxy family is touched.
    assert.equal(env.ALL_PROXY, '<unset>');
    assert.equal(env.NO_PROXY, 'left.alone');
    assert.equal(env.MY_URL, `http://127.0.0.1:${p}`);
    assert.match(r.out, /^client proxy: GET http:\/\/example\.test\/through$/m);
    assert.match(r.out, / proxy-direct=7/);
    assert.match(r.out, / bystander=7/);
    assert.doesNotMatch(r.out, /BYSTANDER|\/direct$/m);
  });

  it('reaches the proxy from Node through the rewritten variable, and a direct socket is refused', async () => {
    writeFileSync(
      path.join(tmp.dir, 'probe.cjs'),
      String.raw`
const http = require('http'), net = require('net');
const u = new URL(process.env.HTTP_PROXY);
http.get({ host: u.hostname, port: u.port, path: 'http://node.test/via-node', headers: { host: 'node.test' } }, (res) => {
  let body = ''; res.on('data', (d) => (body += d)); res.on('end', () => {
    process.stdout.write('node: ' + body);
    const s = net.connect(Number(process.argv[2]), '127.0.0.1');
    s.on('connect', () => { process.stdout.write('direct: connected\n'); s.destroy(); });
    s.on('error', (e) => process.stdout.write('direct: ' + e.code + '\n'));
  });
}).on('error', (e) => process.stdout.write('node error: ' + e.message + '\n'));
`,
    );
    const r = await run(client, `exec "${process.execPath}" probe.cjs ${proxy.port}`, { HTTP_PROXY: `http://127.0.0.1:${proxy.port}` });
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /^node: client proxy: GET http:\/\/node\.test\/via-node$/m);
    assert.match(r.out, /^direct: ECONNREFUSED$/m);
  });

  it('bridges every listed port, one endpoint each', async () => {
    const r = await run(
      client,
      `curl -sS --max-time 10 http://a.test/one; curl -sS --max-time 10 -x "$ALL_PROXY" http://b.test/two`,
      { http_proxy: `http://127.0.0.1:${proxy.port}`, ALL_PROXY: `http://127.0.0.1:${other.port}` },
      { managedNetwork: { loopbackPorts: [proxy.port, other.port], allowLocalBinding: true } },
    );
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /^client proxy: GET http:\/\/a\.test\/one$/m);
    assert.match(r.out, /^other proxy: GET http:\/\/b\.test\/two$/m);
  });

  it('refuses, before anything runs, what it cannot route: a port not listed, a proxy off loopback, no proxy at all', async () => {
    const marker = path.join(tmp.dir, 'ran');
    const touch = `touch ${marker}`;
    const refused = async (env: Json, extra: Json = {}): Promise<Json> => {
      const r = await run(client, touch, env, extra);
      assert.equal(existsSync(marker), false, 'nothing ran');
      assert.equal(r.start.error?.code, -32602, JSON.stringify(r.start));
      return r.start.error;
    };
    // a loopback port the client did not list (its twin, the listed port, works above)
    const notListed = await refused({ HTTP_PROXY: `http://127.0.0.1:${proxy.port}`, https_proxy: `http://127.0.0.1:${bystander.port}` });
    assert.equal(
      notListed.message,
      `managedNetwork: https_proxy="http://127.0.0.1:${bystander.port}" names port ${bystander.port}, which is not in loopbackPorts [${proxy.port}]`,
    );
    assert.deepEqual(notListed.data, { kind: 'sandboxUnavailable' });
    assert.match((await refused({ HTTP_PROXY: 'http://127.0.0.1' })).message, /names no port/);
    assert.match((await refused({ HTTP_PROXY: `http://10.1.2.3:${proxy.port}` })).message, /is not a proxy on this host's loopback/);
    assert.match((await refused({ HTTP_PROXY: 'not a url' })).message, /is not a proxy on this host's loopback/);
    // fail closed: enforcement asked for, nothing to route to
    assert.match((await refused({ NO_PROXY: 'x' })).message, /needs the proxy's address in the command's environment/);
    assert.match(
      (await refused({ HTTP_PROXY: `http://127.0.0.1:${proxy.port}` }, { managedNetwork: { loopbackPorts: [] } })).message,
      /loopbackPorts is empty/,
    );
    assert.match(
      (await refused({ HTTP_PROXY: `http://127.0.0.1:${proxy.port}` }, { sandbox: sandbox('restricted') })).message,
      /needs a sandbox whose network is `enabled`/,
    );
    const both = await refused(
      { HTTP_PROXY: `http://127.0.0.1:${proxy.port}` },
      { networkProxy: { proxy: { enabled: true, mode: 'full', domains: {} } } },
    );
    assert.equal(both.message, '`managedNetwork` sandbox facts and `networkProxy` launch config are mutually exclusive');
  });

  it('without enforcement leaves the environment alone and routes nothing (as the reference)', async () => {
    const r = await run(
      client,
      `${printEnv('HTTP_PROXY')}; curl -sS --noproxy '*' --max-time 5 http://127.0.0.1:${bystander.port}/`,
      { HTTP_PROXY: `http://127.0.0.1:${proxy.port}` },
      { enforceManagedNetwork: false },
    );
    assert.equal(r.code, 0, r.out);
    assert.equal(envLines(r.out).HTTP_PROXY, `http://127.0.0.1:${proxy.port}`);
    assert.match(r.out, /^BYSTANDER$/m);
  });

  it('enforced without a sandbox still gets its own network namespace', async () => {
    const r = await run(
      client,
      `curl -sS --max-time 10 http://nosb.test/; curl -sS --noproxy '*' --max-time 5 http://127.0.0.1:${bystander.port}/; echo " direct=$?"`,
      { http_proxy: `http://127.0.0.1:${proxy.port}` },
      { sandbox: null },
    );
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /^client proxy: GET http:\/\/nosb\.test\/$/m);
    assert.match(r.out, / direct=7/);
  });

  it('refuses routing when the operator routes the network through its own proxy', async () => {
    const op = await startServer({
      network: { mode: 'full', domains: { 'a.test': 'allow' }, allowLocalBinding: false, trustedRanges: [] },
    });
    const { client: oc } = await RawClient.ready(op.url);
    try {
      const r = await run(oc, 'true', { HTTP_PROXY: `http://127.0.0.1:${proxy.port}` });
      assert.equal(r.start.error?.code, -32602);
      assert.match(r.start.error?.message, /operator routes every process's network through Cordon's proxy/);
    } finally {
      oc.close();
      await op.server.close();
    }
  });

  it('under an operator ceiling without network, neither route nor proxy: the process runs with no network', async () => {
    const ceiling = { profile: builtinProfile(':workspace'), cwd: tmp.dir, workspaceRoots: [tmp.dir], name: ':workspace' };
    const ws = await startServer({ environment: { ceiling } });
    const { client: wc } = await RawClient.ready(ws.url);
    const hits: string[] = [];
    proxy.server.on('request', (req) => hits.push(req.url ?? ''));
    try {
      const script = `${printEnv('HTTP_PROXY')}; curl -sS --max-time 5 -x "$HTTP_PROXY" http://ceiling.test/; echo " via=$?"`;
      const routed = await run(wc, script, { HTTP_PROXY: `http://127.0.0.1:${proxy.port}` });
      assert.equal(routed.start.error, undefined, JSON.stringify(routed.start));
      assert.equal(envLines(routed.out).HTTP_PROXY, `http://127.0.0.1:${proxy.port}`, 'not rewritten');
      assert.match(routed.out, / via=[1-9]/);
      const launched = await run(
        wc,
        script,
        {},
        { managedNetwork: null, networkProxy: { proxy: { enabled: true, mode: 'full', domains: { '*': 'allow' } } } },
      );
      assert.equal(launched.start.error, undefined, JSON.stringify(launched.start));
      assert.equal(envLines(launched.out).HTTP_PROXY, '<unset>');
      assert.match(launched.out, / via=[1-9]/);
      assert.deepEqual(hits, [], 'the client proxy was never reached');
      assert.equal(wc.received.filter((m) => m.method === 'network/policyDecision').length, 0, 'no proxy judged anything');
    } finally {
      wc.close();
      await ws.server.close();
    }
  });

  const referenceSkip = findCodexBinary(REFERENCE)
    ? false
    : `reference ${REFERENCE} not installed (test/e2e/install-codex.sh ${REFERENCE})`;
  it('matches the 0.171 reference on the same request: which variables are rewritten, and what gets through', {
    skip: referenceSkip,
  }, async () => {
    const home = scratch('cordon-mnet-ref-');
    let ref: ExecServer | undefined;
    let rc: RawClient | undefined;
    try {
      ref = await startReference(REFERENCE, { codexHome: home.dir, workspaces: [], scratch: home.dir });
      ({ client: rc } = await RawClient.ready(ref.url));
      const p = proxy.port;
      const keys = [
        'HTTP_PROXY',
        'http_proxy',
        'HTTPS_PROXY',
        'ALL_PROXY',
        'npm_config_proxy',
        'NO_PROXY',
        'MY_URL',
        'CODEX_NETWORK_PROXY_ACTIVE',
      ];
      const script = [
        printEnv(...keys),
        'curl -sS --max-time 10 http://example.test/diff; echo " via=$?"',
        `curl -sS --noproxy '*' --max-time 5 http://127.0.0.1:${bystander.port}/; echo " direct=$?"`,
      ].join('; ');
      const env = {
        HTTP_PROXY: `http://127.0.0.1:${p}`,
        http_proxy: `http://user:secret@localhost:${p}/`,
        HTTPS_PROXY: `HTTP://127.0.0.1:${p}/some/path`,
        ALL_PROXY: `socks5h://127.0.0.1:${p}`,
        npm_config_proxy: `127.0.0.1:${p}`,
        NO_PROXY: 'left.alone',
        MY_URL: `http://127.0.0.1:${p}`,
      };
      /** Each variable with the bridge port replaced by BRIDGE (and checked to be one port, not the host's). */
      const normalise = (o: Outcome): Json => {
        const got = envLines(o.out);
        const port = /^http:\/\/127\.0\.0\.1:(\d+)$/.exec(got.HTTP_PROXY ?? '')?.[1] ?? '?';
        assert.notEqual(port, String(p));
        return {
          code: o.code,
          env: Object.fromEntries(keys.map((k) => [k, (got[k] ?? '').replaceAll(`:${port}`, ':BRIDGE')])),
          via: /client proxy: GET http:\/\/example\.test\/diff\n via=0/.test(o.out),
          direct: / direct=(\d+)/.exec(o.out)?.[1],
        };
      };
      const theirs = normalise(await run(rc, script, env));
      const ours = normalise(await run(client, script, env));
      assert.deepEqual(ours, theirs);
      assert.equal(theirs.env.HTTP_PROXY, 'http://127.0.0.1:BRIDGE');
      assert.equal(theirs.direct, '7');
    } finally {
      rc?.close();
      await ref?.stop();
      home.cleanup();
    }
  });
});
