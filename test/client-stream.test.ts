import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import { DisconnectedError } from '../src/client/errors.js';
import { type ClientProcessEvent, ExecServerClient } from '../src/client/exec-server-client.js';
import { CLI } from './cli-helpers.js';
import { eventually, SH_ENV, startServer, tempDir } from './helpers.js';

/**
 * A TCP proxy in front of a server, so a test can cut the client's connections and refuse or
 * sabotage its reconnects, as a flaky network would.
 */
async function proxyTo(url: string): Promise<{
  url: string;
  /** refuse: new connections are reset. pass: forwarded. dropNext: the next one is cut after its first bytes (the client's resume attempt), then pass. */
  mode: 'refuse' | 'pass' | 'dropNext';
  dropAll(): void;
  readonly open: number;
  accepted: number;
  close(): Promise<void>;
}> {
  const target = new URL(url);
  const pairs = new Set<[net.Socket, net.Socket]>();
  const proxy = {
    url: '',
    mode: 'pass' as 'refuse' | 'pass' | 'dropNext',
    accepted: 0,
    dropAll: () => {
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
    },
    get open() {
      return pairs.size;
    },
    close: async () => {
      proxy.dropAll();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server = net.createServer((client) => {
    client.on('error', () => undefined);
    if (proxy.mode === 'refuse') return void client.resetAndDestroy();
    proxy.accepted++;
    const sabotage = proxy.mode === 'dropNext';
    if (sabotage) proxy.mode = 'pass';
    const upstream = net.connect(Number(target.port), target.hostname);
    upstream.on('error', () => undefined);
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    const forget = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', forget);
    upstream.on('close', forget);
    upstream.pipe(client);
    if (!sabotage) client.pipe(upstream);
    else {
      // Let the upgrade through, then cut the connection when the client sends `initialize`.
      let frames = 0;
      client.on('data', (d) => {
        upstream.write(d);
        if (++frames === 2) setImmediate(forget);
      });
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  proxy.url = `ws://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return proxy;
}

describe('client: the stream across disconnects', () => {
  it('reports output lost beyond the server retention as a gap, in process/read and as an event', async () => {
    const tmp = await tempDir();
    const { server, url } = await startServer({ environment: { retainBytesPerProcess: 64 * 1024 } });
    const proxy = await proxyTo(url);
    try {
      const client = await ExecServerClient.connect({ url: proxy.url, reconnectDelayMs: 20 });
      const go = path.join(tmp.dir, 'go');
      const done = path.join(tmp.dir, 'done');
      const { events } = await client.spawn({
        processId: 'p',
        argv: ['sh', '-c', `echo start; while [ ! -e ${go} ]; do sleep 0.01; done; seq 1 100000; : > ${done}`],
        cwd: tmp.dir,
        env: SH_ENV,
      });
      const seen: ClientProcessEvent[] = [];
      for await (const e of events) {
        seen.push(e);
        if (seen.length === 1) {
          // A long absence: the connection is cut and cannot come back while the process talks.
          proxy.mode = 'refuse';
          proxy.dropAll();
          writeFileSync(go, '');
          await eventually(() => existsSync(done), 30_000, 'the process wrote everything');
          proxy.mode = 'pass';
        }
      }
      const gaps = seen.filter((e) => e.type === 'gap');
      assert.equal(gaps.length, 1, 'one gap reported');
      const gap = gaps[0] as Extract<ClientProcessEvent, { type: 'gap' }>;
      assert.equal(gap.fromSeq, 2, 'the gap starts right after what was delivered');
      // Delivered output and the gap together account for every output seq, in order.
      const outputSeqs = seen.flatMap((e) => (e.type === 'output' ? [e.seq] : []));
      assert.deepEqual(outputSeqs.slice(0, 1), [1]);
      assert.equal(outputSeqs[1], gap.toSeq + 1);
      for (let i = 2; i < outputSeqs.length; i++) assert.equal(outputSeqs[i], (outputSeqs[i - 1] as number) + 1);
      const text = Buffer.concat(seen.flatMap((e) => (e.type === 'output' ? [e.data] : []))).toString();
      assert.ok(text.startsWith('start\n'));
      assert.ok(text.endsWith('\n99999\n100000\n'));
      assert.ok(text.length < 588_895, 'not everything was retained');
      assert.equal(seen.at(-1)?.type, 'closed');
      // The server says so in process/read too; a read from where the client is has no gap.
      const r = await client.read('p', { afterSeq: 1 });
      assert.deepEqual(r.droppedOutput, { fromSeq: 2, toSeq: gap.toSeq });
      assert.equal((await client.read('p', { afterSeq: gap.toSeq })).droppedOutput, undefined);
      await client.close();
    } finally {
      await proxy.close();
      await server.close();
      await tmp.cleanup();
    }
  });

  it('survives a drop during its resume: one connection, still attached, requests work', async () => {
    const { server, url } = await startServer();
    const proxy = await proxyTo(url);
    try {
      const client = await ExecServerClient.connect({ url: proxy.url, reconnectDelayMs: 20 });
      let disconnected = 0;
      let reconnected = 0;
      client.on('disconnected', () => disconnected++);
      client.on('reconnected', () => reconnected++);
      const { events } = await client.spawn({ processId: 'cat', argv: ['cat'], cwd: '/tmp', env: SH_ENV, pipeStdin: true });
      await client.write('cat', 'one\n');
      const iterator = events[Symbol.asyncIterator]();
      assert.equal(((await iterator.next()).value as { data: Buffer }).data.toString(), 'one\n');
      proxy.mode = 'dropNext';
      const accepted = proxy.accepted;
      proxy.dropAll();
      await eventually(() => reconnected === 1, 30_000, 'resumed after the sabotaged attempt');
      assert.ok(proxy.accepted >= accepted + 2, 'the first resume attempt was cut');
      assert.equal(disconnected, 0);
      assert.equal(client.connected, true);
      await eventually(() => proxy.open === 1, 5000, 'exactly one connection left open');
      await client.write('cat', 'two\n');
      assert.equal(((await iterator.next()).value as { data: Buffer }).data.toString(), 'two\n');
      assert.ok((await client.environmentInfo()).shell.path);
      await client.write('cat', '', { closeStdin: true });
      const rest: string[] = [];
      for (let r = await iterator.next(); !r.done; r = await iterator.next()) rest.push(r.value.type);
      assert.deepEqual(rest, ['exited', 'closed']);
      assert.equal(reconnected, 1);
      assert.equal(proxy.open, 1);
      await client.close();
    } finally {
      await proxy.close();
      await server.close();
    }
  });

  it('ends events iterators with an error when the server is gone for good, within the reconnect window', async () => {
    const serve = spawn(
      process.execPath,
      [CLI, 'serve', '--listen', 'ws://127.0.0.1:0', '--log-level', 'silent', '--permissions', ':danger-full-access'],
      {
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    );
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        serve.stdout.on('data', (d) => {
          out += d;
          const m = /ws:\/\/\S+/.exec(out);
          if (m) resolve(m[0]);
        });
        serve.once('exit', (code) => reject(new Error(`serve exited with ${code}`)));
      });
      const client = await ExecServerClient.connect({ url, reconnectDelayMs: 50, reconnectWindowMs: 2000 });
      let reconnecting: unknown;
      client.on('reconnecting', (info) => (reconnecting = info));
      const lost = new Promise<DisconnectedError>((resolve) => client.on('disconnected', resolve));
      // cat ends by itself when the dead server's end of its stdin closes.
      const { events } = await client.spawn({ processId: 'c', argv: ['cat'], cwd: '/tmp', env: SH_ENV, pipeStdin: true });
      await client.write('c', 'x\n');
      const iterator = events[Symbol.asyncIterator]();
      assert.equal((await iterator.next()).value?.type, 'output');
      const pending = iterator.next();
      serve.kill('SIGKILL');
      await assert.rejects(
        pending,
        (err: Error) => err instanceof DisconnectedError && /not recovered: \d+ attempt\(s\) in [\d.]+ s failed/.test(err.message),
      );
      assert.deepEqual(reconnecting, { attempts: 10, windowMs: 2000 });
      assert.match((await lost).message, /not recovered/);
      await assert.rejects(client.environmentInfo(), DisconnectedError);
      await assert.rejects(client.events('other')[Symbol.asyncIterator]().next(), DisconnectedError);
    } finally {
      serve.kill('SIGKILL');
    }
  });
});
