import assert from 'node:assert/strict';
import net from 'node:net';
import { DisconnectedError } from '../../src/client/errors.js';
import { ExecServerClient } from '../../src/client/exec-server-client.js';
import type { ProcessEvent } from '../../src/environment/types.js';
import {
  assertScratchCeiling,
  eventually,
  figure,
  makeScratch,
  relTest,
  rng,
  SEED,
  scaled,
  sleep,
  spawnServer,
  withTimeout,
} from './harness.js';

/**
 * Forced disconnects: the client talks to the server through a TCP relay that the test cuts at
 * random moments, and again while the client is resuming. A process prints numbered lines (well
 * inside retention); every line must arrive exactly once and in order, `exited` and `closed` once,
 * and the client must be usable afterwards.
 */

class Relay {
  private readonly pairs = new Set<[net.Socket, net.Socket]>();
  private readonly server: net.Server;
  accepted = 0;
  private onAccept: (() => void)[] = [];

  constructor(private readonly target: { host: string; port: number }) {
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.target);
      const pair: [net.Socket, net.Socket] = [client, upstream];
      this.pairs.add(pair);
      const drop = (): void => {
        client.destroy();
        upstream.destroy();
        this.pairs.delete(pair);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream);
      upstream.pipe(client);
      this.accepted++;
      for (const f of this.onAccept.splice(0)) f();
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `ws://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  /** Relayed connections open now. */
  get live(): number {
    return this.pairs.size;
  }

  /** Drops every relayed connection abruptly (no close frame, as a network loss would). */
  cut(): number {
    const n = this.pairs.size;
    for (const [a, b] of [...this.pairs]) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
    return n;
  }

  nextAccept(timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.onAccept.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  close(): Promise<void> {
    this.cut();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

relTest('forced disconnects at random moments and during resumes lose no byte inside retention', async () => {
  const scratch = await makeScratch();
  const server = await spawnServer(scratch, { sessionGraceMs: 30_000 });
  const { hostname, port } = new URL(server.url);
  const relay = new Relay({ host: hostname, port: Number(port) });
  const random = rng(SEED);
  let client: ExecServerClient | undefined;
  let cuts = 0;
  let cutsDuringResume = 0;
  let lines = 0;
  const disconnectedEvents: string[] = [];
  const gaps: string[] = [];
  try {
    await assertScratchCeiling(server, scratch);
    client = await ExecServerClient.connect({ url: await relay.listen(), reconnectAttempts: 1000, reconnectDelayMs: 20 });
    client.on('disconnected', (err) => disconnectedEvents.push(err.message));
    // Clients that report gaps (output beyond retention) must report none here: all of it is retained.
    (client as unknown as { on(e: string, l: (g: unknown) => void): void }).on('gap', (g) => gaps.push(JSON.stringify(g)));
    const rounds = scaled(6);
    const perRound = 2000;
    for (let round = 0; round < rounds; round++) {
      const processId = `gen-${round}`;
      const events: ProcessEvent[] = [];
      const off = client.onEvent((e) => e.processId === processId && events.push(e));
      const script = `i=0; while [ $i -lt ${perRound} ]; do i=$((i+1)); echo "line $i"; [ $((i % 40)) -eq 0 ] && sleep 0.02; done; exit 5`;
      // A request in flight when the connection drops may fail with DisconnectedError (the
      // client's contract); the start is retried with the same id, and "already exists" means the
      // first one went through.
      await withTimeout(
        (async () => {
          for (let attempt = 0; ; attempt++) {
            try {
              await client!.startProcess({
                processId,
                argv: ['/bin/sh', '-c', script],
                cwd: scratch.dir,
                env: { PATH: '/usr/bin:/bin', CORDON_REL_MARK: server.mark },
              });
              return;
            } catch (err) {
              if (/already exists/.test(String(err))) return;
              if (!(err instanceof DisconnectedError) || attempt > 20) throw err;
              await sleep(100);
            }
          }
        })(),
        60_000,
        'process/start',
      );
      const isClosed = (): boolean => events.some((e) => e.type === 'closed');
      while (!isClosed()) {
        await sleep(20 + random() * 250);
        if (isClosed()) break;
        if (relay.cut() > 0) cuts++;
        if (random() < 0.4) {
          // Cut again while the client resumes: after its new connection is accepted, within 0-40 ms.
          if (await relay.nextAccept(10_000)) {
            await sleep(random() * 40);
            if (relay.cut() > 0) {
              cuts++;
              cutsDuringResume++;
            }
          }
        }
      }
      await eventually(isClosed, 60_000, `process ${processId} closed (seed ${SEED})`);
      off();
      const output = Buffer.concat(events.flatMap((e) => (e.type === 'output' ? [e.data] : []))).toString();
      const expected = Array.from({ length: perRound }, (_, i) => `line ${i + 1}\n`).join('');
      if (output !== expected) {
        const got = output.split('\n');
        const firstBad = got.findIndex((l, i) => i < perRound && l !== `line ${i + 1}`);
        assert.fail(
          `round ${round} (seed ${SEED}): output differs at line ${firstBad + 1}: got ${JSON.stringify(got.slice(Math.max(0, firstBad - 1), firstBad + 2))}; ${got.length - 1} lines`,
        );
      }
      lines += perRound;
      const seqs = events.map((e) => e.seq);
      assert.deepEqual(
        seqs,
        [...seqs].sort((a, b) => a - b),
        `events out of seq order (round ${round}, seed ${SEED})`,
      );
      assert.equal(new Set(seqs).size, seqs.length, `an event delivered twice (round ${round}, seed ${SEED})`);
      assert.equal(events.filter((e) => e.type === 'exited').length, 1);
      const exited = events.find((e) => e.type === 'exited');
      assert.equal(exited?.type === 'exited' ? exited.exitCode : undefined, 5);
    }
    // The client is attached and usable, and said nothing wrong about its state.
    const info = await withTimeout(
      (async () => {
        for (let attempt = 0; ; attempt++) {
          try {
            return await client!.environmentInfo();
          } catch (err) {
            if (!(err instanceof DisconnectedError) || attempt > 20) throw err;
            await sleep(100);
          }
        }
      })(),
      30_000,
      'environment/info after the disconnects',
    );
    assert.ok(info.shell);
    // One connection, not a second one leaked by a resume that was itself cut.
    await eventually(() => relay.live === 1, 10_000, `exactly one live connection (${relay.live}; seed ${SEED})`);
    assert.deepEqual(disconnectedEvents, []);
    assert.deepEqual(gaps, [], 'a gap was reported for output inside retention');
    figure('forced disconnects: connections cut / of them during a resume', `${cuts} / ${cutsDuringResume}`);
    figure('forced disconnects: numbered lines checked, none lost or repeated', lines);
    figure('forced disconnects: connections the relay accepted', relay.accepted);
  } finally {
    await client?.close().catch(() => undefined);
    await relay.close();
    await server.stop();
    await scratch.cleanup();
  }
});

relTest('when the server is killed for good, an events iterator ends with an error within a bounded time', async () => {
  const scratch = await makeScratch();
  const server = await spawnServer(scratch);
  let client: ExecServerClient | undefined;
  try {
    await assertScratchCeiling(server, scratch);
    client = await ExecServerClient.connect({ url: server.url });
    client.on('disconnected', () => undefined);
    const events = client.events('sleeper');
    await client.startProcess({
      processId: 'sleeper',
      argv: ['sleep', '600'],
      cwd: scratch.dir,
      env: { PATH: '/usr/bin:/bin', CORDON_REL_MARK: server.mark },
    });
    const iterated = (async () => {
      for await (const _ of events) {
        // a sleeper says nothing
      }
      return 'ended without an error';
    })().catch((err: Error) => `error: ${err.name}`);
    await server.kill9();
    const t0 = performance.now();
    const outcome = await withTimeout(iterated, 45_000, 'the events iterator after the server died');
    const took = Math.round(performance.now() - t0);
    figure('server gone for good: events iterator outcome, after', `${outcome}, ${took}`, 'ms');
    assert.match(outcome, /^error/);
  } finally {
    await client?.close().catch(() => undefined);
    await server.stop();
    await scratch.cleanup();
  }
});
