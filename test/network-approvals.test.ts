import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import pty from '@lydell/node-pty';
import { type ApprovalDecision, type ApprovalRequest, ExecServerClient } from '../src/client/index.js';
import type { ProcessEvent } from '../src/environment/types.js';
import type { CordonServer } from '../src/server/index.js';
import { CLI } from './cli-helpers.js';
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

/** Approvals through Cordon's client library, against a real server, sandbox, proxy and upstream. */
describe('managed network: approvals in the client library', { skip }, () => {
  let up: Upstream;
  let server: CordonServer;
  let url: string;
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let n = 0;

  before(async () => {
    tmp = await tempDir('cordon-approve-');
    up = await startUpstream(tmp.dir);
    ({ server, url } = await startServer({ networkResolve: up.resolve, networkTrustedRanges: up.ranges }));
  });
  after(async () => {
    await server?.close();
    await up?.stop();
    await tmp?.cleanup();
  });

  async function run(client: ExecServerClient, script: string): Promise<{ out: string; exitCode: number | null; ms: number }> {
    const t0 = Date.now();
    const { events } = await client.spawn({
      processId: `ap-${++n}`,
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
      enforceManagedNetwork: true,
      networkProxy: {
        proxy: { enabled: true, mode: 'full', domains: { 'listed.test': 'allow' }, allowLocalBinding: false },
        policyDecisionTimeoutMs: 30_000,
      },
    });
    let out = '';
    let exitCode: number | null = null;
    for await (const e of events as AsyncIterable<ProcessEvent>) {
      if (e.type === 'output') out += e.data.toString();
      if (e.type === 'exited') exitCode = e.exitCode;
    }
    return { out, exitCode, ms: Date.now() - t0 };
  }

  it('three concurrent requests to one destination give one prompt; allowForSession is cached; another port asks again', async () => {
    const client = await ExecServerClient.connect({ url });
    const asked: ApprovalRequest[] = [];
    let release: (d: ApprovalDecision) => void = () => undefined;
    client.useNetworkApprovals((r) => {
      asked.push(r);
      return new Promise<ApprovalDecision>((resolve) => (release = resolve));
    });
    let serverAsks = 0;
    client.on('serverRequest', (method) => method === 'network/policyRequest' && serverAsks++);
    try {
      const running = run(client, `for i in 1 2 3; do curl -sS http://ask.test:8080/c$i & done; wait`);
      await eventually(() => serverAsks === 3, 60_000, 'three policy requests from the server');
      assert.equal(asked.length, 1, 'one prompt for three identical requests');
      assert.deepEqual({ ...asked[0] }, { host: 'ask.test', protocol: 'http', port: 8080, processId: `ap-${n}` });
      release('allowForSession');
      const r = await running;
      assert.equal((r.out.match(/upstream GET \/c\d/g) ?? []).length, 3, r.out);

      const cached = await run(client, `curl -sS http://ask.test:8080/again`);
      assert.match(cached.out, /upstream GET \/again/);
      assert.equal(asked.length, 1, 'allowForSession: no second prompt');

      const otherPort = run(client, `curl -sS http://ask.test:9999/; echo " rc=$?"`);
      await eventually(() => asked.length === 2, 60_000, 'a prompt for another port');
      assert.equal(asked[1]?.port, 9999);
      release('allowOnce');
      assert.match((await otherPort).out, /rc=/);
    } finally {
      await client.close();
    }
  });

  it('a handler that does not answer in time denies', async () => {
    const client = await ExecServerClient.connect({ url });
    client.useNetworkApprovals(() => new Promise<ApprovalDecision>(() => undefined), { timeoutMs: 300, terminateOnDenial: false });
    try {
      const r = await run(client, `curl -sS http://slow.test:8080/; echo; curl -sS http://listed.test:8080/listed`);
      assert.match(r.out, /"host":"slow\.test","reason":"user_denied","decision":"deny","source":"decider"/);
      assert.match(r.out, /upstream GET \/listed/);
    } finally {
      await client.close();
    }
  });

  it('a denial that arrives while the command runs terminates it and says why (deferred denial)', async () => {
    const client = await ExecServerClient.connect({ url });
    client.useNetworkApprovals(() => 'deny');
    const denials: string[] = [];
    client.onNetworkDenial((d) => denials.push(d.message));
    try {
      const r = await run(client, `curl -sS http://nope.test:8080/ >/dev/null; echo still-running; sleep 60; echo finished`);
      assert.equal(denials.length, 1);
      assert.match(denials[0] ?? '', /Network access to "http:\/\/nope\.test:8080" was denied/);
      assert.doesNotMatch(r.out, /finished/);
      assert.notEqual(r.exitCode, 0);
      // the twin: an approved destination does not stop the process
      const client2 = await ExecServerClient.connect({ url });
      client2.useNetworkApprovals(() => 'allowOnce');
      const ok = await run(client2, `curl -sS http://fine.test:8080/fine; echo finished`);
      assert.match(ok.out, /upstream GET \/fine[\s\S]*finished/);
      await client2.close();
    } finally {
      await client.close();
    }
  });

  it('cordon sandbox asks on the terminal: "session" lets the request through', async () => {
    const term = pty.spawn(
      process.execPath,
      [
        CLI,
        'sandbox',
        '--permissions',
        ':read-only',
        '--network-allow',
        'listed.test',
        '--network-trusted-range',
        up.ranges[0] as string,
        '--',
        'sh',
        '-c',
        `curl -sS http://${up.v4}:8080/asked; echo " rc=$?"`,
      ],
      { cwd: process.cwd(), env: { ...process.env, PATH } as Record<string, string>, cols: 200, rows: 30 },
    );
    let out = '';
    let answered = false;
    const exit = new Promise<number>((resolve) => term.onExit(({ exitCode }) => resolve(exitCode)));
    term.onData((d) => {
      out += d;
      if (!answered && out.includes('Allow? [o]nce')) {
        answered = true;
        term.write('s');
      }
    });
    const code = await exit;
    assert.match(out, new RegExp(`wants http access to ${up.v4.replace(/\./g, '\\.')}:8080`));
    assert.match(out, /upstream GET \/asked[\s\S]* rc=0/);
    assert.equal(code, 0);
  });

  it('cordon sandbox without a terminal denies, and the running command is stopped with the reason', async () => {
    const child = spawn(
      process.execPath,
      [
        CLI,
        'sandbox',
        '--permissions',
        ':read-only',
        '--network-allow',
        'listed.test',
        '--network-trusted-range',
        up.ranges[0] as string,
        '--',
        'sh',
        '-c',
        `curl -sS http://${up.v4}:8080/; sleep 60; echo finished`,
      ],
      { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PATH } },
    );
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.match(out, /Network access to "http:\/\/10\.213\.[\d.]+:8080" was denied; the process was terminated/);
    assert.doesNotMatch(out, /finished/);
    assert.notEqual(code, 0);
  });
});
