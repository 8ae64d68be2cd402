import { randomBytes, randomUUID } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ExecServerClient } from '../src/client/exec-server-client.js';
import { type RunningServer, rssBytes } from './servers.js';

/**
 * The servers a figure compares, first against each of the others: `cordon` (no ceiling),
 * `cordon-default` (`cordon serve` as users run it: its default `:workspace` ceiling), `reference`
 * (`--reference`, the 0.122–0.141 generation) and `reference-sandboxed` (`--sandboxed-reference`,
 * the 0.171 generation, which sandboxes on the server as Cordon does).
 */
export type Side = 'cordon' | 'cordon-default' | 'reference' | 'reference-sandboxed';

export interface Figure {
  name: string;
  /** Default: cordon against the reference. */
  sides?: Side[];
  /**
   * Rounds of this figure per requested round. A figure that takes a fraction of a second per
   * sample is far shorter than this machine's slow spells, so a few samples say more about the
   * spells than about the servers; more rounds (each still on a freshly started server) do not.
   */
  roundsFactor?: number;
  unit: string;
  /** Whether a larger value is better (throughput) or a smaller one (latency, memory). */
  higherIsBetter: boolean;
  /** The row of docs/performance.md's table: the configuration it measures, its bar and whether it is met. */
  row: { configuration: 'default' | 'sandboxed' | 'unsandboxed'; bar?: string; met?: (median: number, ratios: number[]) => boolean };
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
async function runToClose(
  client: ExecServerClient,
  argv: string[],
  tty = false,
  sandbox?: Record<string, unknown>,
  cwd = '/tmp',
): Promise<number> {
  const { events } = await client.spawn({ processId: pid('p'), argv, cwd, env: ENV, tty, ...(sandbox ? { sandbox } : {}) });
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

const uri = (p: string): string => `file://${p}`;

/**
 * The sandbox a 0.171 CLI sends with every command (docs/protocol.md §8): root read, the project
 * roots and both temporary directories writable, .git/.agents/.codex/.aws read-only (skipped when
 * missing), the workspace roots given. fs calls carry the same profile with a `policyContext`.
 */
const sandbox0171 = (dir: string, forFs: boolean): Record<string, unknown> => {
  const skip = (subpath: string): Record<string, unknown> => ({
    path: { type: 'special', value: { kind: 'project_roots', subpath } },
    access: 'read',
    missing_path_behavior: 'skip',
  });
  const permissions = {
    type: 'managed',
    file_system: {
      type: 'restricted',
      entries: [
        { path: { type: 'special', value: { kind: 'root' } }, access: 'read' },
        { path: { type: 'special', value: { kind: 'project_roots' } }, access: 'write' },
        { path: { type: 'special', value: { kind: 'slash_tmp' } }, access: 'write' },
        { path: { type: 'special', value: { kind: 'tmpdir' } }, access: 'write' },
        ...['.git', '.agents', '.codex', '.aws'].map(skip),
      ],
    },
    network: 'restricted',
  };
  return forFs
    ? {
        permissions,
        policyContext: { cwd: uri(dir), workspaceRoots: [uri(dir)] },
        windowsSandboxLevel: 'disabled',
        useLegacyLandlock: false,
      }
    : {
        permissions,
        cwd: uri(dir),
        workspaceRoots: [uri(dir)],
        windowsSandboxLevel: 'disabled',
        windowsSandboxProxySettingsMode: 'reconcile',
        useLegacyLandlock: false,
      };
};

export function figures(options: { fsDir: string }): Figure[] {
  const bigFile = path.join(options.fsDir, 'fifty-mb.bin');
  // Measured the same way in each configuration, so the rows compare.
  const getMetadataRoundTrips = (s: RunningServer): Promise<number> =>
    withClient(s, async (c) => {
      for (let i = 0; i < 20; i++) await c.fs.getMetadata('/tmp');
      const t0 = performance.now();
      for (let i = 0; i < 200; i++) await c.fs.getMetadata(bigFile);
      return performance.now() - t0;
    });
  const readFiftyMb = (s: RunningServer): Promise<number> =>
    withClient(s, async (c) => {
      const t0 = performance.now();
      const data = await c.fs.readFile(bigFile);
      if (data.length !== 50 * 1024 * 1024) throw new Error(`read ${data.length} bytes`);
      return performance.now() - t0;
    });
  // Writes of a small file to a new name each time, 0.2 s apart (a worker that stays up for a burst
  // of calls could hide the cost of a call that comes alone, as an agent's writes usually do).
  const writeSmallFiles =
    (sandbox?: Record<string, unknown>) =>
    (s: RunningServer): Promise<number> =>
      withClient(s, async (c) => {
        const data = randomBytes(4096);
        const dir = path.join(options.fsDir, `writes-${randomUUID()}`);
        mkdirSync(dir);
        const samples: number[] = [];
        for (let i = 0; i < 8; i++) {
          await new Promise((r) => setTimeout(r, 200));
          const target = sandbox ? uri(path.join(dir, `f${i}`)) : path.join(dir, `f${i}`);
          const t0 = performance.now();
          await c.fs.writeFile(target, data, sandbox ? { sandbox } : undefined);
          samples.push(performance.now() - t0);
        }
        return samples.sort((a, b) => a - b)[samples.length >> 1] as number;
      });
  const sandboxProcess = sandbox0171(options.fsDir, false);
  const sandboxFs = sandbox0171(options.fsDir, true);
  return [
    {
      name: 'start->closed of `true`, sequential',
      row: { configuration: 'unsandboxed', bar: '≥ 15x 0.141.0', met: (_, [r]) => (r as number) >= 15 },
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
      row: { configuration: 'unsandboxed' },
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
      row: { configuration: 'unsandboxed' },
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
      row: { configuration: 'unsandboxed' },
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
      row: { configuration: 'unsandboxed' },
      unit: 'ms',
      higherIsBetter: false,
      measure: (s) =>
        withClient(s, async (c) => {
          const samples: number[] = [];
          for (let i = 0; i < 10; i++) {
            const processId = pid('poll');
            await c.startProcess({ processId, argv: ['sh', '-c', 'sleep 0.05; exec date +%s%N'], cwd: '/tmp', env: ENV });
            const r = await c.read(processId, { afterSeq: 0, waitMs: 5000 });
            // The wall clock, as `date` reads it: performance.timeOrigin + now() drifts from it
            // when the system clock is adjusted during the run (seen: every sample 14 ms early).
            const received = Date.now();
            const written =
              Number(
                Buffer.concat(r.chunks.map((ch) => ch.data))
                  .toString()
                  .trim(),
              ) / 1e6;
            samples.push(received - written);
          }
          samples.sort((a, b) => a - b);
          return samples[Math.floor(samples.length / 2)] as number;
        }),
    },
    {
      name: '200 sequential fs/getMetadata round trips',
      row: { configuration: 'unsandboxed' },
      unit: 'ms',
      roundsFactor: 5,
      higherIsBetter: false,
      measure: getMetadataRoundTrips,
    },
    {
      name: 'fs/readFile of a 50 MB file',
      row: { configuration: 'unsandboxed' },
      unit: 'ms',
      higherIsBetter: false,
      measure: readFiftyMb,
    },
    {
      name: 'default config: 200 sequential fs/getMetadata round trips',
      row: {
        configuration: 'default',
        bar: 'within 1.1x of Cordon unsandboxed, ahead of 0.141.0',
        met: (_, [unsandboxed, reference]) => (unsandboxed as number) >= 1 / 1.1 && (reference as number) > 1,
      },
      sides: ['cordon-default', 'cordon', 'reference'],
      unit: 'ms',
      roundsFactor: 5,
      higherIsBetter: false,
      measure: getMetadataRoundTrips,
    },
    {
      name: 'default config: fs/readFile of a 50 MB file',
      row: {
        configuration: 'default',
        bar: 'within 1.1x of Cordon unsandboxed, ahead of 0.141.0',
        met: (_, [unsandboxed, reference]) => (unsandboxed as number) >= 1 / 1.1 && (reference as number) > 1,
      },
      sides: ['cordon-default', 'cordon', 'reference'],
      unit: 'ms',
      higherIsBetter: false,
      measure: readFiftyMb,
    },
    {
      name: 'default config: fs/writeFile of 4 KB, per call',
      row: { configuration: 'default' },
      sides: ['cordon-default', 'cordon', 'reference'],
      unit: 'ms',
      higherIsBetter: false,
      measure: writeSmallFiles(),
    },
    {
      name: 'sandboxed (0.171 object): fs/writeFile of 4 KB, per call',
      row: { configuration: 'sandboxed' },
      sides: ['cordon', 'reference-sandboxed'],
      unit: 'ms',
      higherIsBetter: false,
      measure: writeSmallFiles(sandboxFs),
    },
    {
      name: 'sandboxed (0.171 object): start->closed of `true`, per start',
      row: { configuration: 'sandboxed', bar: '≥ 5x faster than 0.171.0', met: (_, [r]) => (r as number) >= 5 },
      sides: ['cordon', 'reference-sandboxed'],
      unit: 'ms',
      higherIsBetter: false,
      measure: (s) =>
        withClient(s, async (c) => {
          const cwd = uri(options.fsDir);
          for (let i = 0; i < 3; i++) await runToClose(c, ['true'], false, sandboxProcess, cwd);
          return medianMs(20, () => runToClose(c, ['true'], false, sandboxProcess, cwd));
        }),
    },
    {
      name: 'unsandboxed start->closed of `true`, per start',
      row: { configuration: 'unsandboxed' },
      sides: ['cordon'],
      unit: 'ms',
      higherIsBetter: false,
      measure: (s) =>
        withClient(s, async (c) => {
          for (let i = 0; i < 3; i++) await runToClose(c, ['true']);
          return medianMs(30, () => runToClose(c, ['true']));
        }),
    },
    {
      name: 'sandboxed (0.171 object): warm fs/getMetadata, per call',
      row: { configuration: 'sandboxed' },
      sides: ['cordon', 'reference-sandboxed'],
      unit: 'ms',
      higherIsBetter: false,
      measure: (s) =>
        withClient(s, async (c) => {
          const file = uri(bigFile);
          for (let i = 0; i < 5; i++) await c.fs.getMetadata(file, { sandbox: sandboxFs });
          return medianMs(s.name === 'cordon' ? 200 : 20, () => c.fs.getMetadata(file, { sandbox: sandboxFs }));
        }),
    },
    {
      name: 'warm fs/getMetadata per call: sandboxed (0.171 object) minus unsandboxed',
      row: { configuration: 'sandboxed', bar: '≤ 0.3 ms', met: (m) => m <= 0.3 },
      sides: ['cordon'],
      unit: 'ms',
      higherIsBetter: false,
      measure: (s) =>
        withClient(s, async (c) => {
          const file = uri(bigFile);
          for (let i = 0; i < 20; i++) {
            await c.fs.getMetadata(file, { sandbox: sandboxFs });
            await c.fs.getMetadata(file);
          }
          const plain: number[] = [];
          const boxed: number[] = [];
          for (let i = 0; i < 200; i++) {
            let t0 = performance.now();
            await c.fs.getMetadata(file);
            plain.push(performance.now() - t0);
            t0 = performance.now();
            await c.fs.getMetadata(file, { sandbox: sandboxFs });
            boxed.push(performance.now() - t0);
          }
          const med = (xs: number[]): number => xs.sort((a, b) => a - b)[xs.length >> 1] as number;
          return med(boxed) - med(plain);
        }),
    },
    {
      name: 'sandboxed (0.171 object): fs/readFile of a 50 MB file',
      row: { configuration: 'sandboxed' },
      sides: ['cordon', 'reference-sandboxed'],
      unit: 'ms',
      higherIsBetter: false,
      measure: (s) =>
        withClient(s, async (c) => {
          const t0 = performance.now();
          const data = await c.fs.readFile(uri(bigFile), { sandbox: sandboxFs });
          if (data.length !== 50 * 1024 * 1024) throw new Error(`read ${data.length} bytes`);
          return performance.now() - t0;
        }),
    },
    {
      name: 'server RSS growth with 200 idle `sleep` processes, per process',
      row: { configuration: 'unsandboxed' },
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
