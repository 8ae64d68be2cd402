import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { CAPABILITY_NAMES, type CapabilityName } from '../src/protocol/capabilities.js';
import { CORDON_CAPABILITIES } from '../src/server/capabilities.js';
import type { CordonServer } from '../src/server/index.js';
import { type Json, RawClient, startServer, tempDir } from './helpers.js';

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

const uri = (p: string): string => pathToFileURL(p).href;
const readOnlyRoot = (cwd: string): Json => ({
  permissions: {
    type: 'managed',
    network: 'restricted',
    file_system: { type: 'restricted', entries: [{ path: { type: 'special', value: { kind: 'root' } }, access: 'read' }] },
  },
  cwd: uri(cwd),
  windowsSandboxLevel: 'disabled',
});

/** A local HTTP server that answers with the request's headers. */
async function echoServer(): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => res.end(JSON.stringify(req.rawHeaders)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

const CASES: Partial<Record<CapabilityName, CapabilityCase>> = {
  // One entry per flag advertised true, e.g.:
  // fsWatchMissing: async ({ client, dir }) => { ...fs/watchMissing, then create the path, expect fs/missingChanged... },
  networkProxyLaunch: async ({ client, dir }) => {
    // The proxy is launched, the child is pointed at it, its decisions are reported, and nothing
    // goes around it (no host outside this machine is contacted: the name is denied before any lookup).
    const started = await client.request('process/start', {
      processId: 'cap-net',
      argv: [
        '/bin/sh',
        '-c',
        `curl -sS -o /dev/null -w '%{http_code}' http://denied.example/; echo; curl -sS --noproxy '*' --max-time 5 http://127.0.0.1:1/ 2>/dev/null; echo "direct=$?"`,
      ],
      cwd: dir,
      env: { PATH: '/usr/local/bin:/usr/bin:/bin' },
      tty: false,
      sandbox: {
        permissions: {
          type: 'managed',
          network: 'enabled',
          file_system: { type: 'restricted', entries: [{ path: { type: 'special', value: { kind: 'root' } }, access: 'read' }] },
        },
        cwd: dir,
        windowsSandboxLevel: 'disabled',
      },
      enforceManagedNetwork: true,
      managedNetwork: null,
      networkProxy: {
        proxy: { enabled: true, enableSocks5: true, mode: 'full', domains: { 'denied.example': 'deny' }, allowLocalBinding: false },
      },
    });
    assert.equal(started.error, undefined, JSON.stringify(started.error));
    const events = await client.untilClosed('cap-net', 60_000);
    const out = events
      .filter((m) => m.method === 'process/output')
      .map((m) => Buffer.from(m.params.chunk, 'base64').toString())
      .join('');
    assert.match(out, /^403\n/);
    assert.match(out, /direct=7/);
    const decision = client.received.find((m) => m.method === 'network/policyDecision');
    assert.equal(decision?.params.reason, 'denied');
    assert.equal(decision?.params.processId, 'cap-net');
  },
  fsWatchMissing: async ({ client, dir }) => {
    const target = path.join(dir, 'watch-missing', '.git');
    mkdirSync(path.dirname(target));
    assert.deepEqual((await client.request('fs/watchMissing', { watchId: 1, missing: [uri(target)], present: null })).result, {
      watching: true,
    });
    mkdirSync(target);
    assert.deepEqual(await client.next((m) => m.method === 'fs/missingChanged'), { method: 'fs/missingChanged', params: { watchId: 1 } });
  },
  environmentConfigRead: async ({ client, dir }) => {
    // The server reads CODEX_HOME from its environment (this process's) when it is asked.
    const home = path.join(dir, 'codex-home');
    mkdirSync(home);
    writeFileSync(path.join(home, 'config.toml'), '[mcp_servers.caps]\nurl = "http://127.0.0.1:9/mcp"\n');
    const saved = process.env.CODEX_HOME;
    process.env.CODEX_HOME = home;
    try {
      const r = (await client.request('environmentConfig/read', { cwd: uri(dir), configPaths: [['mcp_servers']], requirementsPaths: [] }))
        .result;
      assert.equal(r.codexHomeDir, uri(home));
      assert.deepEqual(
        r.config.layers.map((l: Json) => l.toml),
        ['[mcp_servers.caps]\nurl = "http://127.0.0.1:9/mcp"\n'],
      );
    } finally {
      if (saved === undefined) delete process.env.CODEX_HOME;
      else process.env.CODEX_HOME = saved;
    }
  },
  httpHeaderEnvVars: async ({ client }) => {
    const upstream = await echoServer();
    process.env.CORDON_CAPS_TOKEN = 'tok';
    try {
      const r = (
        await client.request('http/request', {
          method: 'POST',
          url: upstream.url,
          requestId: 'http-1',
          headers: [{ name: 'authorization', value: 'Bearer ', valueEnvVar: 'CORDON_CAPS_TOKEN' }],
          bodyBase64: Buffer.from('{}').toString('base64'),
          redirectPolicy: 'stop',
          streamResponse: true,
        })
      ).result;
      assert.equal(r.status, 200);
      await client.next((m) => m.method === 'http/request/bodyDelta' && m.params.done === true);
      const body = client.received
        .filter((m) => m.method === 'http/request/bodyDelta')
        .map((m) => Buffer.from(m.params.deltaBase64, 'base64').toString())
        .join('');
      assert.ok((JSON.parse(body) as string[]).includes('Bearer tok'), body);
    } finally {
      delete process.env.CORDON_CAPS_TOKEN;
      await upstream.close();
    }
  },
  fileWriteStreaming: async ({ client, dir }) => {
    const file = path.join(dir, 'streamed.txt');
    writeFileSync(file, 'old content');
    assert.deepEqual((await client.request('fs/open', { handleId: 'w', path: uri(file), sandbox: null, mode: 'replace' })).result, {
      handleId: 'w',
    });
    assert.deepEqual(
      (await client.request('fs/writeBlock', { handleId: 'w', offset: 0, chunk: Buffer.from('new').toString('base64') })).result,
      {},
    );
    assert.deepEqual((await client.request('fs/close', { handleId: 'w' })).result, {});
    assert.equal(readFileSync(file, 'utf8'), 'new');
  },
  sandboxedFileStreaming: async ({ client, dir }) => {
    const file = path.join(dir, 'sandboxed.txt');
    writeFileSync(file, 'read in the sandbox');
    const sandbox = readOnlyRoot(dir);
    assert.deepEqual((await client.request('fs/open', { handleId: 'r', path: uri(file), sandbox })).result, { handleId: 'r' });
    assert.deepEqual((await client.request('fs/readBlock', { handleId: 'r', offset: 0, len: 100 })).result, {
      chunk: Buffer.from('read in the sandbox').toString('base64'),
      eof: true,
    });
    await client.request('fs/close', { handleId: 'r' });
    // The twin: the same sandbox refuses a write, so the open really went through it.
    assert.deepEqual((await client.request('fs/open', { handleId: 'w', path: uri(file), sandbox, mode: 'replace' })).error, {
      code: -32603,
      message: 'Read-only file system (os error 30)',
    });
    assert.equal(readFileSync(file, 'utf8'), 'read in the sandbox');
  },
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
