import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  assertScratchCeiling,
  BYSTANDER_BOUND_MS,
  Bystander,
  figure,
  type Json,
  LEAKED_EXCEPTION,
  makeScratch,
  Peer,
  relTest,
  type Scratch,
  type ServerProcess,
  spawnServer,
} from './harness.js';

/**
 * Each limit of #15 §3, one session abusing a fresh server while another (the bystander) keeps
 * asking: the abuse is bounded or refused with a worded error, and the bystander keeps getting
 * answers (its latency is reported; only a generous bound is asserted).
 */

const MAX_OPEN_FILES = 64;
const MAX_WATCHES = 64;

async function withServer(
  name: string,
  body: (ctx: { server: ServerProcess; scratch: Scratch; peer: Peer }) => Promise<void>,
): Promise<void> {
  const scratch = await makeScratch();
  const server = await spawnServer(scratch);
  let bystander: Bystander | undefined;
  let peer: Peer | undefined;
  try {
    await assertScratchCeiling(server, scratch);
    peer = await Peer.ready(server.url);
    bystander = await Bystander.start(server.url, scratch.dir);
    await body({ server, scratch, peer });
    const by = await bystander.stop();
    bystander = undefined;
    figure(`${name}: other session latency p50/p99/max`, `${by.p50}/${by.p99}/${by.max}`, 'ms');
    assert.deepEqual(by.failures, [], 'another session got no answer');
    assert.ok(by.max < BYSTANDER_BOUND_MS, `another session waited ${by.max} ms (bound ${BYSTANDER_BOUND_MS} ms)`);
    assert.ok(server.alive(), 'the server died');
    assert.deepEqual(server.unexpectedErrors(), []);
  } finally {
    await bystander?.stop().catch(() => undefined);
    await peer?.close();
    const stopMs = await server.stop();
    figure(`${name}: server stop after SIGTERM`, server.neededSigkill ? 'did not stop within 15 s (SIGKILL)' : Math.round(stopMs), 'ms');
    await scratch.cleanup();
    assert.ok(!server.neededSigkill, 'SIGTERM did not stop the server within 15 s');
  }
}

const worded = (res: Json, what: string): void => {
  assert.ok(res.error, `${what}: expected an error, got ${JSON.stringify(res).slice(0, 300)}`);
  assert.doesNotMatch(res.error.message, LEAKED_EXCEPTION, what);
};

relTest('open file handles: the per-session limit holds under concurrent fs/open', async () => {
  await withServer('open handles', async ({ scratch, peer }) => {
    const file = path.join(scratch.dir, 'f');
    writeFileSync(file, 'x');
    const answers = await Promise.all(
      Array.from({ length: 4 * MAX_OPEN_FILES }, () => peer.call('fs/open', { path: file, mode: 'read' }, 60_000)),
    );
    const opened = answers.filter((a) => a.result).map((a) => a.result.handle as string);
    for (const a of answers.filter((x) => x.error)) worded(a, 'fs/open past the limit');
    figure('open handles: concurrent fs/open accepted of requested', `${opened.length} of ${answers.length} (limit ${MAX_OPEN_FILES})`);
    assert.ok(opened.length <= MAX_OPEN_FILES, `${opened.length} handles open at once, limit ${MAX_OPEN_FILES}`);
    assert.ok(opened.length > 0);
    await Promise.all(opened.map((handle) => peer.call('fs/close', { handle })));
    const again = await peer.call('fs/open', { path: file, mode: 'read' });
    assert.ok(again.result, 'a handle can be opened again once the others are closed');
  });
});

relTest('watches: the per-session limit holds under concurrent fs/watch', async () => {
  await withServer('watches', async ({ scratch, peer }) => {
    const answers = await Promise.all(
      Array.from({ length: 4 * MAX_WATCHES }, () => peer.call('fs/watch', { path: scratch.dir, recursive: false }, 60_000)),
    );
    const watching = answers.filter((a) => a.result);
    for (const a of answers.filter((x) => x.error)) worded(a, 'fs/watch past the limit');
    figure('watches: concurrent fs/watch accepted of requested', `${watching.length} of ${answers.length} (limit ${MAX_WATCHES})`);
    assert.ok(watching.length <= MAX_WATCHES, `${watching.length} watches at once, limit ${MAX_WATCHES}`);
    assert.ok(watching.length > 0);
  });
});

relTest('a process/start with a million env entries is answered, and does not stall other sessions', async () => {
  // Built before the other session starts asking, so the test's own work is not measured as the server's.
  const entries = Array.from({ length: 1_000_000 }, (_, i) => `"E${i}":"v"`).join(',');
  await withServer('huge env', async ({ scratch, peer, server }) => {
    const id = 'huge-env';
    const text = `{"id":"${id}","method":"process/start","params":{"processId":"huge","argv":["true"],"cwd":${JSON.stringify(scratch.dir)},"tty":false,"env":{"CORDON_REL_MARK":"${server.mark}",${entries}}}}`;
    const t0 = performance.now();
    const res = await peer.callRaw(id, Buffer.from(text), 120_000, 'huge process/start');
    figure(
      'huge env: answer to a process/start with 1,000,000 env entries',
      `${res.error ? `error ${res.error.code}: ${String(res.error.message).slice(0, 80)}` : 'started'} in ${Math.round(performance.now() - t0)} ms`,
    );
    if (res.error) worded(res, 'huge env');
  });
});

relTest('a malformed 40 MB fs/writeFile gets the worded base64 error and does not stall other sessions', async () => {
  const data = Buffer.alloc(40 * 1024 * 1024, 'A');
  data[20 * 1024 * 1024] = '!'.charCodeAt(0);
  await withServer('malformed 40 MB write', async ({ scratch, peer }) => {
    const target = path.join(scratch.dir, 'big');
    const id = 'malformed-write';
    const text = Buffer.concat([
      Buffer.from(`{"id":"${id}","method":"fs/writeFile","params":{"path":${JSON.stringify(target)},"dataBase64":"`),
      data,
      Buffer.from('"}}'),
    ]);
    const t0 = performance.now();
    const res = await peer.callRaw(id, text, 120_000, 'malformed fs/writeFile');
    figure('malformed 40 MB write: answer', `${res.error?.code} in ${Math.round(performance.now() - t0)} ms`);
    worded(res, 'malformed fs/writeFile');
    // The wire contract (docs/protocol.md §10): -32600 `fs/writeFile requires valid base64 dataBase64: Invalid symbol 33, offset N.`
    assert.equal(res.error.code, -32600);
    assert.match(res.error.message, /valid base64.*Invalid symbol 33, offset 20971520/);
  });
});

/** Opens (and closes) a FIFO's other end, so whatever waits on it is released. */
function releaseFifo(fifo: string): void {
  try {
    closeSync(openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK));
  } catch {
    // gone
  }
}

relTest('process/start of an executable FIFO is answered and does not stall other sessions', async () => {
  await withServer('FIFO program', async ({ scratch, peer, server }) => {
    const fifo = path.join(scratch.dir, 'prog');
    execFileSync('mkfifo', ['-m', '0755', fifo]);
    try {
      const res = await peer.call(
        'process/start',
        { processId: 'fifo', argv: [fifo], cwd: scratch.dir, env: { CORDON_REL_MARK: server.mark }, tty: false },
        20_000,
      );
      figure('FIFO program: answer', res.error ? `error ${res.error.code}: ${res.error.message}` : 'started');
      if (res.error) worded(res, 'FIFO program');
    } finally {
      releaseFifo(fifo);
    }
  });
});

relTest('fs/readFile of FIFOs and endless devices is bounded: other sessions answer, SIGTERM stops the server', async () => {
  await withServer('FIFO and device reads', async ({ scratch, peer }) => {
    const fifo = path.join(scratch.dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    // More FIFO reads than the thread pool has threads; none of them has a writer.
    const fifoReads = Array.from({ length: 8 }, () =>
      peer.call('fs/readFile', { path: fifo }, 120_000).catch((err: Error) => ({ pending: err.message })),
    );
    const devices = await Promise.all(
      ['/dev/zero', '/dev/urandom'].map((dev) =>
        peer.call('fs/readFile', { path: dev }, 20_000).catch((err: Error): Json => ({ error: { code: 0, message: err.message } })),
      ),
    );
    for (const [i, res] of devices.entries()) {
      figure(
        `FIFO and device reads: fs/readFile ${i ? '/dev/urandom' : '/dev/zero'}`,
        res.error
          ? `error ${res.error.code}: ${String(res.error.message).slice(0, 80)}`
          : `${String(res.result?.dataBase64 ?? '').length} base64 chars`,
      );
      assert.ok(
        res.error && res.error.code !== 0,
        `reading an endless device must be refused past a bound, got ${JSON.stringify(res).slice(0, 200)}`,
      );
    }
    // Let the bystander ask while the FIFO reads wait.
    await new Promise((r) => setTimeout(r, 3000));
    const answered = await Promise.race([Promise.all(fifoReads), new Promise((r) => setTimeout(() => r('pending'), 100))]);
    figure(
      'FIFO and device reads: fs/readFile of a FIFO without a writer',
      answered === 'pending' ? 'still waiting after 3 s' : JSON.stringify((answered as Json[])[0]).slice(0, 120),
    );
    // The FIFO reads are left waiting on purpose: the server must still stop on SIGTERM (withServer measures it).
  });
});
