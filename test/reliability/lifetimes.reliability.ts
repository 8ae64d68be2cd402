import assert from 'node:assert/strict';
import {
  assertScratchCeiling,
  DescendantWatch,
  describeProcesses,
  eventually,
  figure,
  type Json,
  makeScratch,
  markedProcesses,
  ms,
  openFdCount,
  Peer,
  percentile,
  relTest,
  rng,
  SEED,
  type ServerSpawnOptions,
  scaled,
  sleep,
  spawnServer,
} from './harness.js';

/**
 * No process outlives its session or its server: a soak of many sessions and processes, session
 * ends, and `kill -9` of the server, counting what survives through /proc (the server's
 * descendants, sampled while they run, and every process carrying the test's marker in its
 * environment).
 */

const SH = { PATH: '/usr/local/bin:/usr/bin:/bin' };

async function run(
  peer: Peer,
  processId: string,
  argv: string[],
  cwd: string,
  mark: string,
  extra: Json = {},
): Promise<{ stdout: string; exitCode: number }> {
  let stdout = '';
  const out = (m: Json): boolean => {
    if (m.params?.processId !== processId) return false;
    if (m.method === 'process/output') stdout += Buffer.from(m.params.chunk, 'base64').toString();
    return m.method === 'process/closed';
  };
  const closed = peer.notification(out, 60_000);
  const res = await peer.call(
    'process/start',
    { processId, argv, cwd, env: { ...SH, CORDON_REL_MARK: mark }, tty: false, ...extra },
    60_000,
  );
  if (res.error) throw new Error(`process/start ${processId}: ${JSON.stringify(res.error)}`);
  await closed;
  const read = await peer.call('process/read', { processId, afterSeq: 0, maxBytes: null, waitMs: 0 });
  const chunks = (read.result?.chunks ?? []) as { chunk: string }[];
  return {
    stdout: chunks.map((c) => Buffer.from(c.chunk, 'base64').toString()).join('') || stdout,
    exitCode: read.result?.exitCode as number,
  };
}

relTest('soak: many sessions and processes, each output exact; nothing left after the sessions end', async () => {
  const scratch = await makeScratch();
  const server = await spawnServer(scratch, { sessionGraceMs: 300 });
  const watch = new DescendantWatch(server.pid);
  try {
    await assertScratchCeiling(server, scratch);
    const fdsBefore = openFdCount(server.pid);
    const sessions = scaled(6, 2);
    const perSession = scaled(40, 2);
    const concurrency = 4;
    const latencies: number[] = [];
    let started = 0;
    await Promise.all(
      Array.from({ length: sessions }, async (_, s) => {
        for (let batch = 0; batch < perSession; batch += concurrency) {
          // A fresh session every few batches: sessions come and go during the soak.
          const peer = await Peer.ready(server.url);
          try {
            await Promise.all(
              Array.from({ length: Math.min(concurrency, perSession - batch) }, async (_, k) => {
                const i = batch + k;
                const t0 = performance.now();
                const r = await run(
                  peer,
                  `s${s}-p${i}`,
                  ['/bin/sh', '-c', 'echo "$0 $1"; exit 7', `s${s}`, String(i)],
                  scratch.dir,
                  server.mark,
                );
                latencies.push(performance.now() - t0);
                started++;
                assert.equal(r.stdout, `s${s} ${i}\n`);
                assert.equal(r.exitCode, 7);
              }),
            );
          } finally {
            await peer.close();
          }
        }
      }),
    );
    // Many short sessions, no process.
    const shortSessions = scaled(100);
    for (let i = 0; i < shortSessions; i++) {
      const peer = await Peer.ready(server.url);
      await peer.close();
    }
    watch.sample();
    await eventually(
      () => watch.survivors().length === 0 && markedProcesses(server.mark, [server.pid]).length === 0,
      20_000,
      'processes of ended sessions to go',
    ).catch((err: Error) => {
      throw new Error(`${err.message}: ${describeProcesses([...watch.survivors(), ...markedProcesses(server.mark, [server.pid])])}`);
    });
    await sleep(1000);
    const fdsAfter = openFdCount(server.pid);
    figure(
      'soak: processes run (sandboxed), sessions',
      `${started} processes in ${sessions * Math.ceil(perSession / concurrency) + shortSessions} sessions`,
    );
    figure('soak: process start-to-closed p50/p99', `${ms(percentile(latencies, 50))}/${ms(percentile(latencies, 99))}`, 'ms');
    figure('soak: server open descriptors before/after', `${fdsBefore}/${fdsAfter}`);
    figure('soak: survivors after the sessions ended', 0);
    assert.equal(started, sessions * perSession);
    assert.ok(fdsAfter <= fdsBefore + 16, `the server holds ${fdsAfter} descriptors, ${fdsBefore} before the soak`);
    assert.deepEqual(server.unexpectedErrors(), []);
  } finally {
    watch.stop();
    await server.stop();
    await scratch.cleanup();
  }
});

/** Processes that try to outlive their session: grandchildren, new sessions, ignored signals, terminals. */
const STUBBORN: { name: string; argv: string[]; tty?: boolean }[] = [
  { name: 'sleep', argv: ['sleep', '600'] },
  { name: 'grandchild', argv: ['/bin/sh', '-c', 'sleep 600 & sleep 600'] },
  { name: 'setsid grandchild', argv: ['/bin/sh', '-c', 'setsid sleep 600 & sleep 600'] },
  { name: 'setsid -f', argv: ['/bin/sh', '-c', 'setsid -f sleep 600; sleep 600'] },
  { name: 'ignores TERM and HUP', argv: ['/bin/sh', '-c', 'trap "" TERM HUP INT; sleep 600 & wait'] },
  { name: 'tty', argv: ['/bin/sh', '-c', 'sleep 600 & sleep 600'], tty: true },
];

async function startStubborn(peer: Peer, cwd: string, mark: string, round: number): Promise<number> {
  let n = 0;
  for (const [i, p] of STUBBORN.entries()) {
    const res = await peer.call(
      'process/start',
      { processId: `r${round}-${i}`, argv: p.argv, cwd, env: { ...SH, CORDON_REL_MARK: mark }, tty: p.tty ?? false },
      60_000,
    );
    assert.ok(res.result, `${p.name}: ${JSON.stringify(res.error)}`);
    n++;
  }
  return n;
}

/** Kills (by pid) what the test left behind, so a failing round does not leak sleepers onto the machine. */
function reap(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

for (const ceiling of ['none', 'scratch'] as const) {
  const label = ceiling === 'none' ? 'unsandboxed (no ceiling; the commands write nothing)' : 'sandboxed (scratch-only ceiling)';
  relTest(`kill -9 of the server: no process it started survives, ${label}`, async () => {
    const rounds = scaled(2);
    const random = rng(SEED);
    let startedTotal = 0;
    let survivorsTotal = 0;
    const details: string[] = [];
    for (let round = 0; round < rounds; round++) {
      const scratch = await makeScratch();
      const options: ServerSpawnOptions = { ceiling };
      const server = await spawnServer(scratch, options);
      const watch = new DescendantWatch(server.pid, 50);
      try {
        if (ceiling === 'scratch') await assertScratchCeiling(server, scratch);
        const peers = await Promise.all([Peer.ready(server.url), Peer.ready(server.url)]);
        for (const [k, peer] of peers.entries()) startedTotal += await startStubborn(peer, scratch.dir, server.mark, round * 10 + k);
        // Let the grandchildren start (and setsid) before the crash, at a random moment.
        await eventually(
          () => markedProcesses(server.mark, [server.pid]).length >= STUBBORN.length * 2 * 2,
          20_000,
          'the processes to start',
        );
        await sleep(200 + random() * 800);
        watch.sample();
        await server.kill9();
        watch.stop();
        let left: number[] = [];
        try {
          await eventually(
            () => (left = [...new Set([...watch.survivors(), ...markedProcesses(server.mark)])]).length === 0,
            10_000,
            'no survivor',
          );
        } catch {
          survivorsTotal += left.length;
          details.push(`round ${round}: ${describeProcesses(left)}`);
        }
        reap(left);
        for (const p of peers) await p.close();
      } finally {
        watch.stop();
        await server.stop();
        reap(markedProcesses(server.mark));
        await scratch.cleanup();
      }
    }
    figure(
      `kill -9, ${ceiling === 'none' ? 'unsandboxed' : 'sandboxed'}: processes started / survivors after 10 s`,
      `${startedTotal} (plus their children) / ${survivorsTotal}`,
    );
    assert.equal(survivorsTotal, 0, `processes survived the server's kill -9 (seed ${SEED}): ${details.join(' | ')}`);
  });
}

for (const ceiling of ['none', 'scratch'] as const) {
  relTest(
    `session end: stubborn processes die with their session (grace 300 ms), ${ceiling === 'none' ? 'unsandboxed' : 'sandboxed'}`,
    async () => {
      const scratch = await makeScratch();
      const server = await spawnServer(scratch, { sessionGraceMs: 300, ceiling });
      const watch = new DescendantWatch(server.pid, 50);
      try {
        if (ceiling === 'scratch') await assertScratchCeiling(server, scratch);
        const peer = await Peer.ready(server.url);
        const started = await startStubborn(peer, scratch.dir, server.mark, 0);
        await eventually(() => markedProcesses(server.mark, [server.pid]).length >= started * 2, 20_000, 'the processes to start');
        await sleep(300);
        watch.sample();
        await peer.close();
        let left: number[] = [];
        await eventually(
          () => (left = [...new Set([...watch.survivors(), ...markedProcesses(server.mark, [server.pid])])]).length === 0,
          15_000,
          'no survivor',
        ).catch(() => undefined);
        figure(
          `session end, ${ceiling === 'none' ? 'unsandboxed' : 'sandboxed'}: processes started / survivors`,
          `${started} / ${left.length}`,
        );
        reap(left);
        assert.deepEqual(left, [], `survivors of the session: ${describeProcesses(left)}`);
      } finally {
        watch.stop();
        await server.stop();
        await scratch.cleanup();
      }
    },
  );
}
