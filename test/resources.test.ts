import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ExecServerClient } from '../src/client/exec-server-client.js';
import { RemoteEnvironment } from '../src/client/remote-environment.js';
import type { ProcessEvent } from '../src/environment/types.js';
import { SH_ENV, sleep, startServer } from './helpers.js';

const openFds = (): number => readdirSync('/proc/self/fd').length;

/** Children of this process that are zombies (exited, never reaped). */
function zombieChildren(): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] === 'Z' && Number(fields[1]) === process.pid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

describe('resources', () => {
  it('leaves no zombie and leaks no file descriptor over 500 start/exit cycles (pipes and ptys)', async () => {
    const { server, url } = await startServer({ environment: { retainExitedMs: 50 } });
    const env = await RemoteEnvironment.connect({ url });
    try {
      const cycle = async (i: number): Promise<void> => {
        const processId = `c${i}`;
        const closed = new Promise<void>((resolve) => {
          const off = env.exec.subscribe((e: ProcessEvent) => {
            if (e.processId === processId && e.type === 'closed') {
              off();
              resolve();
            }
          });
        });
        await env.exec.start({ processId, argv: ['true'], cwd: '/tmp', env: SH_ENV, tty: i % 10 === 0, pipeStdin: i % 3 === 0 });
        await closed;
      };
      for (let i = 0; i < 20; i++) await cycle(i);
      // The warm-up's descriptors close once its processes are forgotten (retainExitedMs): a
      // baseline taken earlier would be too high and hide a leak.
      await sleep(300);
      const fdsBefore = openFds();
      // Four cycles at a time: the same 500 starts, and concurrent starts must not leak either.
      let next = 20;
      const lane = async (): Promise<void> => {
        for (let i = next++; i < 520; i = next++) await cycle(i);
      };
      await Promise.all([lane(), lane(), lane(), lane()]);
      // Likewise for the last cycles: wait for that (a leak never settles), within a generous bound.
      const deadline = Date.now() + 10_000;
      let fdsAfter = openFds();
      while (fdsAfter > fdsBefore + 3 && Date.now() < deadline) {
        await sleep(20);
        fdsAfter = openFds();
      }
      assert.ok(fdsAfter <= fdsBefore + 3, `fds grew from ${fdsBefore} to ${fdsAfter}`);
      while (zombieChildren().length > 0 && Date.now() < deadline) await sleep(20);
      assert.deepEqual(zombieChildren(), []);
    } finally {
      await env.close();
      await server.close();
    }
  });

  for (const tty of [false, true]) {
    it(`backpressure: a client that stops reading pauses the child instead of buffering without bound (${tty ? 'pty' : 'pipes'})`, async () => {
      const { server, url } = await startServer({ sendHighWaterBytes: 1024 * 1024, sendLowWaterBytes: 256 * 1024 });
      const client = await ExecServerClient.connect({ url });
      try {
        const total = 64 * 1024 * 1024;
        let received = 0;
        let exited = false;
        const done = new Promise<void>((resolve) =>
          client.onEvent((e) => {
            if (e.type === 'output') received += e.data.length;
            if (e.type === 'exited') exited = true;
            if (e.type === 'closed') resolve();
          }),
        );
        // Stop reading the socket: the server's sends back up.
        const socket = (client as unknown as { ws: { rawSocket: { pause(): void; resume(): void } } }).ws.rawSocket;
        const rssBefore = process.memoryUsage().rss;
        await client.startProcess({
          processId: 'flood',
          argv: ['sh', '-c', `sleep 0.2; exec head -c ${total} /dev/zero`],
          cwd: '/tmp',
          env: SH_ENV,
          tty,
        });
        socket.pause();
        await sleep(1700);
        assert.equal(exited, false, 'the child is held back while the client does not read');
        const growth = process.memoryUsage().rss - rssBefore;
        assert.ok(growth < 48 * 1024 * 1024, `memory grew by ${growth} bytes while the client was not reading`);
        socket.resume();
        await done;
        assert.equal(received, total, 'every byte arrives once the client reads again');
      } finally {
        await client.close();
        await server.close();
      }
    });
  }
});
