// No session can stall or starve another (issue #15 §3): each case is bounded and refused with a
// clear error, while another session's requests keep being answered.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { eventually, type Json, RawClient, SH_ENV, startServer, startServerProcess, tempDir } from './helpers.js';

/** Generous: only a server that never answers exceeds it. */
const ANSWER_WITHIN_MS = 30_000;

const mkfifo = (p: string): void => void execFileSync('mkfifo', [p]);

/** A process holding `fifo` open read-write (so it has a writer) without ever writing, once it has it open. */
async function silentWriter(fifo: string): Promise<() => void> {
  const child = spawn('sh', ['-c', `exec 3<>"$0"; exec sleep 600`, fifo], { stdio: 'ignore' });
  await eventually(
    () => {
      try {
        return readlinkSync(`/proc/${child.pid}/fd/3`) === fifo;
      } catch {
        return false;
      }
    },
    ANSWER_WITHIN_MS,
    'the FIFO writer',
  );
  return () => void child.kill('SIGKILL');
}

let fragmentedId = 1;

/** A request sent as 1 MiB frames (one frame may not exceed the server's 16 MiB frame bound). */
function sendFragmented(client: RawClient, method: string, params: Json): Promise<Json> {
  const id = `big-${fragmentedId++}`;
  const text = Buffer.from(JSON.stringify({ id, method, params }));
  const step = 1024 * 1024;
  for (let off = 0; off < text.length; off += step)
    client.ws.send(text.subarray(off, off + step), { binary: false, fin: off + step >= text.length });
  return client.next((m) => m.id === id, ANSWER_WITHIN_MS);
}

describe('isolation: a stuck or huge request is bounded and does not stall other sessions', () => {
  let scratch: Awaited<ReturnType<typeof tempDir>>;
  let server: Awaited<ReturnType<typeof startServerProcess>>;
  let a: RawClient;
  let b: RawClient;
  const writers: (() => void)[] = [];

  before(async () => {
    scratch = await tempDir('cordon-isolation-');
    // No ceiling (these requests only read, or run what the test put in its scratch dir); small
    // bounds on unsized reads so that the refusals come quickly.
    server = await startServerProcess({ environment: { maxUnsizedReadBytes: 1024 * 1024, unsizedReadTimeoutMs: 500 } });
    a = (await RawClient.ready(server.url)).client;
    b = (await RawClient.ready(server.url)).client;
  });

  after(async () => {
    for (const w of writers) w();
    a?.close();
    b?.close();
    const code = await Promise.race([server?.stop(), new Promise((r) => setTimeout(() => r('hung'), ANSWER_WITHIN_MS))]);
    if (code === 'hung') server.child.kill('SIGKILL');
    await scratch?.cleanup();
    assert.notEqual(code, 'hung', 'SIGTERM stopped the server');
  });

  it('refuses to run an executable FIFO (EACCES, as execve) without blocking the server', async () => {
    const fifo = path.join(scratch.dir, 'prog');
    mkfifo(fifo);
    chmodSync(fifo, 0o755);
    const started = a.request('process/start', { processId: 'fifo', argv: [fifo], cwd: scratch.dir, env: SH_ENV, tty: false });
    const other = await b.request('fs/getMetadata', { path: scratch.dir });
    assert.equal(other.result?.isDirectory, true, 'the other session is answered');
    const res = await started;
    assert.ok(res.error, 'refused');
    assert.match(res.error.message, /Permission denied/);
    // The allowed twin: an executable regular file runs.
    const script = path.join(scratch.dir, 'ok.sh');
    writeFileSync(script, '#!/bin/sh\necho ran\n', { mode: 0o755 });
    const ok = await a.request('process/start', { processId: 'ok', argv: [script], cwd: scratch.dir, env: SH_ENV, tty: false });
    assert.equal(ok.error, undefined);
  });

  it("reads of FIFOs and devices are bounded and never starve other sessions' file calls", async () => {
    const big = path.join(scratch.dir, 'big.bin');
    writeFileSync(big, Buffer.alloc(200 * 1024, 7)); // above the synchronous size: goes through the thread pool
    const fifos = Array.from({ length: 8 }, (_, i) => path.join(scratch.dir, `fifo${i}`));
    for (const f of fifos) {
      mkfifo(f);
      writers.push(await silentWriter(f));
    }
    const stuck = fifos.map((f) => a.request('fs/readFile', { path: f }));
    const other = await b.request('fs/readFile', { path: big });
    assert.equal(Buffer.from(other.result?.dataBase64 ?? '', 'base64').length, 200 * 1024, 'the other session reads its file');
    for (const r of await Promise.all(stuck)) {
      assert.ok(r.error, 'a FIFO that never ends is refused');
      assert.match(r.error.message, /not a regular file and no end of data within 500 ms/);
    }
    const zero = await a.request('fs/readFile', { path: '/dev/zero' });
    assert.match(zero.error?.message ?? '', /gave more than 1048576 bytes/);
    const urandom = await a.request('fs/readFile', { path: '/dev/urandom' });
    assert.match(urandom.error?.message ?? '', /gave more than 1048576 bytes/);
    // A FIFO nobody ever writes to is refused the same way.
    const lonely = path.join(scratch.dir, 'lonely');
    mkfifo(lonely);
    assert.match((await a.request('fs/readFile', { path: lonely })).error?.message ?? '', /no end of data within 500 ms/);
    // Allowed twins: a FIFO whose writer comes and writes is read, /dev/null is empty, a /proc file whole.
    const later = path.join(scratch.dir, 'later');
    mkfifo(later);
    const reading = a.request('fs/readFile', { path: later });
    spawn('sh', ['-c', `sleep 0.1; printf 'late data' > "$0"`, later], { stdio: 'ignore' });
    assert.equal(Buffer.from((await reading).result?.dataBase64 ?? '', 'base64').toString(), 'late data');
    assert.equal((await a.request('fs/readFile', { path: '/dev/null' })).result?.dataBase64, '');
    const status = await a.request('fs/readFile', { path: '/proc/self/status' });
    assert.match(Buffer.from(status.result?.dataBase64 ?? '', 'base64').toString(), /^Name:/);
    // Nor does fs/writeFile to a FIFO nobody reads: refused after the same bound.
    const sinks = Array.from({ length: 8 }, (_, i) => path.join(scratch.dir, `sink${i}`));
    for (const f of sinks) mkfifo(f);
    const writes = sinks.map((f) => a.request('fs/writeFile', { path: f, dataBase64: Buffer.from('data').toString('base64') }));
    assert.ok((await b.request('fs/readFile', { path: big })).result, 'the other session reads meanwhile');
    for (const w of await Promise.all(writes)) assert.match(w.error?.message ?? '', /nothing took the data within 500 ms/);
    // fs/open of a FIFO does not park a thread either: for writing without a reader it fails at once.
    const noReader = path.join(scratch.dir, 'noreader');
    mkfifo(noReader);
    const opens = await Promise.all(Array.from({ length: 6 }, () => a.request('fs/open', { path: noReader, mode: 'write' })));
    for (const o of opens) assert.ok(o.error, 'open for writing of a FIFO without a reader fails');
    assert.ok((await b.request('fs/readFile', { path: big })).result, 'and the pool is free');
  });

  it("refuses a malformed 40 MB fs/writeFile with the decoder's words", async () => {
    const payload = Buffer.alloc(30 * 1024 * 1024, 1).toString('base64');
    const bad = `${payload.slice(0, -8)}AAA AAA=`;
    const target = path.join(scratch.dir, 'never-written');
    const res = await sendFragmented(a, 'fs/writeFile', { path: target, dataBase64: bad });
    assert.equal(res.error?.message, `fs/writeFile requires valid base64 dataBase64: Invalid symbol 32, offset ${bad.length - 5}.`);
    assert.ok((await b.request('fs/getMetadata', { path: scratch.dir })).result);
  });

  it('refuses a process/start with a million env entries before doing anything with them', async () => {
    const env: Record<string, string> = {};
    for (let i = 0; i < 1_000_000; i++) env[`V${i}`] = 'x';
    const res = await sendFragmented(a, 'process/start', { processId: 'huge', argv: ['true'], cwd: scratch.dir, env, tty: false });
    assert.equal(res.error?.code, -32602);
    // Refused before it is parsed (docs/protocol.md §11): a million values is over any method's bound.
    assert.match(res.error?.message, /process\/start is too large: more than 131072 values in one message/);
    const longArg = await a.request(
      'process/start',
      { processId: 'huge2', argv: ['echo', 'x'.repeat(5 * 1024 * 1024)], cwd: scratch.dir, env: SH_ENV, tty: false },
      ANSWER_WITHIN_MS,
    );
    assert.match(longArg.error?.message ?? '', /argv and env take more than 4194304 bytes/);
    const patterns = await a.request('process/start', {
      processId: 'huge3',
      argv: ['true'],
      cwd: scratch.dir,
      env: SH_ENV,
      tty: false,
      envPolicy: {
        inherit: 'all',
        ignoreDefaultExcludes: false,
        exclude: Array.from({ length: 5000 }, (_, i) => `X${i}*`),
        set: {},
        includeOnly: [],
      },
    });
    assert.match(patterns.error?.message ?? '', /more than 1024 envPolicy exclude and includeOnly patterns/);
    // The allowed twin: a thousand variables are fine.
    const some: Record<string, string> = { ...SH_ENV };
    for (let i = 0; i < 1000; i++) some[`V${i}`] = 'x';
    const ok = await a.request('process/start', {
      processId: 'some',
      argv: ['sh', '-c', 'echo $V999'],
      cwd: scratch.dir,
      env: some,
      tty: false,
    });
    assert.equal(ok.error, undefined);
    const out = (await a.untilClosed('some'))
      .filter((m) => m.method === 'process/output')
      .map((m) => Buffer.from(m.params.chunk, 'base64').toString())
      .join('');
    assert.equal(out, 'x\n');
  });
});

describe('isolation: per-session limits hold under concurrent requests', () => {
  it('fs/open and fs/watch never exceed their limits, however many arrive at once', async () => {
    const scratch = await tempDir('cordon-limits-');
    const { server, url } = await startServer({ environment: { maxOpenFiles: 3, maxWatches: 3 } });
    const { client } = await RawClient.ready(url);
    try {
      writeFileSync(path.join(scratch.dir, 'f'), 'x');
      const opens = await Promise.all(
        Array.from({ length: 30 }, () => client.request('fs/open', { path: path.join(scratch.dir, 'f'), mode: 'read' })),
      );
      const watches = await Promise.all(Array.from({ length: 30 }, () => client.request('fs/watch', { path: scratch.dir })));
      const ok = (rs: Json[]) => rs.filter((r) => r.result).length;
      assert.equal(ok(opens), 3, 'three handles');
      assert.equal(ok(watches), 3, 'three watches');
      for (const r of opens.filter((r) => r.error)) assert.match(r.error.message, /too many open file handles in this session \(limit 3\)/);
      for (const r of watches.filter((r) => r.error)) assert.match(r.error.message, /too many watches in this session \(limit 3\)/);
      // Closing one frees its slot.
      const handle = opens.find((r) => r.result)?.result.handle as string;
      assert.equal((await client.request('fs/close', { handle })).error, undefined);
      assert.ok((await client.request('fs/open', { path: path.join(scratch.dir, 'f'), mode: 'read' })).result);
    } finally {
      client.close();
      await server.close();
      await scratch.cleanup();
    }
  });
});

describe('isolation: WebSocket pings', () => {
  it('a flood of pings from a peer that does not read gets a close frame (1008, with the reason), not a dropped connection', async () => {
    const { server, url } = await startServer({ maxPendingPongs: 64 });
    const ws = new WebSocket(url);
    await new Promise((r) => ws.once('open', r));
    ws.on('error', () => undefined);
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })),
    );
    try {
      const raw = (ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
      raw.pause();
      for (let i = 0; i < 20_000; i++) ws.ping(Buffer.alloc(125));
      await new Promise((r) => setTimeout(r, 500));
      raw.resume();
      const { code, reason } = await closed;
      assert.equal(code, 1008);
      assert.match(reason, /too many pings/);
    } finally {
      ws.terminate();
      await server.close();
    }
  });

  it('pings from a peer that reads its pongs are all answered', async () => {
    const { server, url } = await startServer({ maxPendingPongs: 64 });
    const ws = new WebSocket(url);
    await new Promise((r) => ws.once('open', r));
    try {
      let pongs = 0;
      const all = new Promise<void>((resolve) =>
        ws.on('pong', () => {
          if (++pongs === 500) resolve();
        }),
      );
      for (let i = 0; i < 500; i++) {
        ws.ping();
        if (i % 20 === 19) await new Promise((r) => setTimeout(r, 5));
      }
      await all;
      assert.equal(ws.readyState, WebSocket.OPEN);
    } finally {
      ws.close();
      await server.close();
    }
  });
});
