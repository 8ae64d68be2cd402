import { ms, Peer, percentile, sleep } from './harness.js';

/**
 * Another session, in a process of its own so the abusing test's work is not counted as the
 * server's: asks a cheap question every 20 ms (alternately an fs call and a process-table call)
 * until its stdin ends, then prints its latencies as JSON.
 */
const [url, probePath] = process.argv.slice(2) as [string, string];
const latencies: number[] = [];
const failures: string[] = [];
let running = true;
process.stdin.on('end', () => (running = false)).resume();
const peer = await Peer.ready(url);
process.stdout.write('ready\n');
for (let i = 0; running; i++) {
  const t0 = performance.now();
  try {
    if (i % 2 === 0) {
      const res = await peer.call('fs/getMetadata', { path: probePath }, 60_000);
      if (res.error) failures.push(`fs/getMetadata: ${JSON.stringify(res.error)}`);
    } else {
      await peer.call('process/read', { processId: 'no-such-process', afterSeq: null, maxBytes: null, waitMs: null }, 60_000);
    }
  } catch (err) {
    failures.push(String(err));
    if (!peer.isOpen) break;
  }
  latencies.push(performance.now() - t0);
  await sleep(20);
}
await peer.close();
process.stdout.write(
  `${JSON.stringify({ max: ms(Math.max(0, ...latencies)), p50: ms(percentile(latencies, 50)), p99: ms(percentile(latencies, 99)), count: latencies.length, failures })}\n`,
);
process.exit(0);
