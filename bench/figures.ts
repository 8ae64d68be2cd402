import { randomBytes, randomUUID } from 'node:crypto';
import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ExecServerClient } from '../src/client/exec-server-client.js';
import { rssBytes, type RunningServer } from './servers.js';

export interface Figure {
  name: string;
  /** Only Cordon can be measured (the reference has no such feature). */
  cordonOnly?: boolean;
  /**
   * Rounds of this figure per requested round. A figure that takes a fraction of a second per
   * sample is far shorter than this machine's slow spells, so a few samples say more about the
   * spells than about the servers; more rounds (each still on a freshly started server) do not.
   */
  roundsFactor?: number;
  unit: string;
  /** Whether a larger value is better (throughput) or a smaller one (latency, memory). */
  higherIsBetter: boolean;
  measure(server: RunningServer): Promise<number>;
}

const ENV = { PATH: '/usr/local/bin:/usr/bin:/bin' };
const pid = (label: string): string => `${label}-${randomUUID()}`;

async function withClient<T>(server: RunningServer, fn: (c: ExecServerClient) => Promise<T>): Promise<T> {
  const client = await ExecServerClient.connect({ url: server.url, reconnect: false });
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

/** Runs argv and resolves when `closed` arrives, with the decoded output byte count. */
async function runToClose(client: ExecServerClient, argv: string[], tty = false, sandbox?: Record<string, unknown>): Promise<number> {
  const { events } = await client.spawn({ processId: pid('p'), argv, cwd: '/tmp', env: ENV, tty, ...(sandbox ? { sandbox } : {}) });
  let bytes = 0;
  for await (const e of events) if (e.type === 'output') bytes += e.data.length;
  return bytes;
}

const STREAM_BYTES = 200 * 1000 * 1000;

/** The median duration of `n` sequential runs of `fn`, in ms. */
async function medianMs(n: number, fn: () => Promise<unknown>): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    samples.push(performance.now() - t0);
  }
  return samples.sort((a, b) => a - b)[Math.floor(n / 2)] as number;
}

/** A stream that lost bytes is a bug in Cordon; in the reference it is noted, and the rate still counts what arrived. */
function incomplete(server: RunningServer, kind: string, bytes: number): void {
  const message = `${server.name}: ${kind} stream delivered ${bytes} of ${STREAM_BYTES} bytes`;
  if (server.name === 'cordon') throw new Error(message);
  console.warn(`  note: ${message}`);
}

/** The :workspace profile as Codex sends it (PROTOCOL.md §10.1), rooted at `dir`. */
const workspaceSandbox = (dir: string): Record<string, unknown> => ({
  permissions: {
    type: 'managed',
    network: 'restricted',
    file_system: {
      type: 'restricted',
      entries: [
        { path: { type: 'special', value: { kind: 'root' } }, access: 'read' },
        { path: { type: 'path', path: dir }, access: 'write' },
        { path: { type: 'special', value: { kind: 'slash_tmp' } }, access: 'write' },
        { path: { type: 'path', path: `${dir}/.git` }, access: 'read' },
        { path: { type: 'path', path: `${dir}/.agents` }, access: 'read' },
        { path: { type: 'path', path: `${dir}/.codex` }, access: 'read' },
      ],
    },
  },
  cwd: dir,
  windowsSandboxLevel: 'disabled',
});

export function figures(options: { fsDir: string }): Figure[] {
  const bigFile = path.join(options.fsDir, 'fifty-mb.bin');
  const sandbox = workspaceSandbox(options.fsDir);
  return [
    {
      name: 'start->closed of `true`, sequential',
      unit: 'processes/s',
      higherIsBetter: true,
      measure: (s) =>
        withClient(s, async (c) => {
          for (let i = 0; i < 5; i++) await runToClose(c, ['true']);
          const n = 100;
          const t0 = performance.now();
          for (let i = 0; i < n; i++) await runToClose(c, ['true']);
          return n / ((performance.now() - t0) / 1000);
        }),
    },
    {
      name: '8 concurrent starts of `true` (all closed)',
      unit: 'ms',
      higherIsBetter: false,
      measure: (s) =>
        withClient(s, async (c) => {
          await Promise.all(Array.from({ length: 8 }, () => runToClose(c, ['true'])));
          const t0 = performance.now();
          await Promise.all(Array.from({ length: 8 }, () => runToClose(c, ['true'])));
          return performance.now() - t0;
        }),
    },
    {
      name: 'stdout stream of 200 MB through pipes',
      unit: 'MB/s',
      higherIsBetter: true,
      measure: (s) =>
        withClient(s, async (c) => {
          const t0 = performance.now();
          const bytes = await runToClose(c, ['head', '-c', String(STREAM_BYTES), '/dev/zero']);
          if (bytes !== STREAM_BYTES) incomplete(s, 'pipe', bytes);
          return bytes / 1e6 / ((performance.now() - t0) / 1000);
        }),
    },
    {
      name: 'stdout stream of 200 MB through a PTY',
      unit: 'MB/s',
      higherIsBetter: true,
      measure: (s) =>
        withClient(s, async (c) => {
          const t0 = performance.now();
          const bytes = await runToClose(c, ['head', '-c', String(STREAM_BYTES), '/dev/zero'], true);
          if (bytes !== STREAM_BYTES) incomplete(s, 'pty', bytes);
          return bytes / 1e6 / ((performance.now() - t0) / 1000);
        }),
    },
    {
      name: 'long-poll wake-up (child writes a line -> process/read returns)',
      unit: 'ms',
      higherIsBetter: false,
      measure: (s) =>
        withClient(s, async (c) => {
          const samples: number[] = [];
          for (let i = 0; i < 10; i++) {
            const processId = pid('poll');
            await c.startProcess({ processId, argv: ['sh', '-c', 'sleep 0.05; exec date +%s%N'], cwd: '/tmp', env: ENV });
            const r = await c.read(processId, { afterSeq: 0, waitMs: 5000 });
            const received = performance.timeOrigin + performance.now();
            const written = Number(Buffer.concat(r.chunks.map((ch) => ch.data)).toString().trim()) / 1e6;
            samples.push(received - written);
          }
          samples.sort((a, b) => a - b);
          return samples[Math.floor(samples.length / 2)] as number;
        }),
    },
    {
      name: '200 sequential fs/getMetadata round trips',
      unit: 'ms',
      roundsFactor: 5,
      higherIsBetter: false,
      measure: (s) =>
        withClient(s, async (c) => {
          for (let i = 0; i < 20; i++) await c.fs.getMetadata('/tmp');
          const t0 = performance.now();
          for (let i = 0; i < 200; i++) await c.fs.getMetadata(bigFile);
          return performance.now() - t0;
        }),
    },
    {
      name: 'fs/readFile of a 50 MB file',
      unit: 'ms',
      higherIsBetter: false,
      measure: (s) =>
        withClient(s, async (c) => {
          const t0 = performance.now();
          const data = await c.fs.readFile(bigFile);
          if (data.length !== 50 * 1024 * 1024) throw new Error(`read ${data.length} bytes`);
          return performance.now() - t0;
        }),
    },
    {
      name: 'start->closed of `true` under a :workspace sandbox',
      unit: 'ms',
      higherIsBetter: false,
      cordonOnly: true,
      measure: (s) =>
        withClient(s, async (c) => {
          for (let i = 0; i < 3; i++) await runToClose(c, ['true'], false, sandbox);
          return medianMs(30, () => runToClose(c, ['true'], false, sandbox));
        }),
    },
    {
      name: 'start->closed of `true`, unsandboxed, per start (same run, for the ratio)',
      unit: 'ms',
      higherIsBetter: false,
      cordonOnly: true,
      measure: (s) =>
        withClient(s, async (c) => {
          for (let i = 0; i < 3; i++) await runToClose(c, ['true']);
          return medianMs(30, () => runToClose(c, ['true']));
        }),
    },
    {
      name: '200 sequential fs/getMetadata under a :workspace sandbox (warm)',
      unit: 'ms',
      higherIsBetter: false,
      measure: (s) =>
        withClient(s, async (c) => {
          for (let i = 0; i < 20; i++) await c.fs.getMetadata(bigFile, { sandbox });
          const t0 = performance.now();
          for (let i = 0; i < 200; i++) await c.fs.getMetadata(bigFile, { sandbox });
          return performance.now() - t0;
        }),
    },
    {
      name: 'server RSS growth with 200 idle `sleep` processes, per process',
      unit: 'KB',
      higherIsBetter: false,
      measure: (s) =>
        withClient(s, async (c) => {
          const before = rssBytes(s.pid);
          const ids: string[] = [];
          for (let i = 0; i < 200; i++) {
            const processId = pid('idle');
            ids.push(processId);
            await c.startProcess({ processId, argv: ['sleep', '600'], cwd: '/tmp', env: ENV });
          }
          await new Promise((r) => setTimeout(r, 500));
          const after = rssBytes(s.pid);
          await Promise.all(ids.map((id) => c.terminate(id)));
          await new Promise((r) => setTimeout(r, 300));
          return (after - before) / 1024 / 200;
        }),
    },
  ];
}

export function prepareFsFixtures(): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'cordon-bench-'));
  const file = path.join(dir, 'fifty-mb.bin');
  writeFileSync(file, randomBytes(50 * 1024 * 1024));
  // Written back now rather than by the kernel in the middle of a later figure.
  const fd = openSync(file, 'r+');
  fsyncSync(fd);
  closeSync(fd);
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
