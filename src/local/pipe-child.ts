import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { constants } from 'node:os';
import type { Readable } from 'node:stream';
import { killGroup, signalExitCode, slices, type ChildHandle, type ChildListener, type ChildSpec } from './child.js';

/** Event-loop turns to wait after exit for output still in the pipes, while it keeps coming. */
const MAX_DRAIN_TURNS = 64;

/**
 * Spawns a child on pipes, leading its own session and process group. Resolves once the child is
 * running; rejects with the OS error when it cannot start.
 *
 * Ordering: `exited` is reported only after the output already written by the child has been read
 * (the pipes go quiet for an event-loop turn or reach EOF), so no chunk follows `exited` unless a
 * grandchild writes it; `closed` follows EOF on both pipes.
 */
export function spawnPipeChild(spec: ChildSpec, listener: ChildListener): Promise<ChildHandle> {
  // Opened for each start: the reader consumes the description's offset.
  const fd3 = spec.fd3 === undefined ? undefined : openSync(spec.fd3, 'r');
  let child;
  try {
    child = spawn(spec.file, spec.args, {
      argv0: spec.argv0,
      cwd: spec.cwd,
      env: spec.env,
      detached: true,
      stdio: [spec.pipeStdin ? 'pipe' : 'ignore', 'pipe', 'pipe', ...(fd3 === undefined ? [] : [fd3])],
      windowsHide: true,
    });
  } finally {
    if (fd3 !== undefined) closeSync(fd3);
  }

  return new Promise<ChildHandle>((resolve, reject) => {
    let started = false;
    let exitCode: number | null = null;
    let exitedReported = false;
    let closedReported = false;
    let openStreams = 2;
    let dataCounter = 0;
    let paused = false;

    // Reads handled in one callback are passed on as one chunk (up to maxChunkBytes), as soon as that
    // callback returns: not at the end of the loop turn, which comes after whatever else the turn
    // holds (a child's exit, other sessions' I/O) and was measured 0.3-0.7 ms after the read.
    // Only consecutive reads of one stream merge.
    let pending: { stream: 'stdout' | 'stderr'; parts: Buffer[]; bytes: number }[] = [];
    let flushScheduled = false;
    const flush = (): void => {
      flushScheduled = false;
      const batch = pending;
      pending = [];
      for (const run of batch) {
        const data = run.parts.length === 1 ? (run.parts[0] as Buffer) : Buffer.concat(run.parts, run.bytes);
        for (const piece of slices(data, spec.maxChunkBytes)) listener.output(run.stream, piece);
      }
    };
    const queue = (stream: 'stdout' | 'stderr', data: Buffer): void => {
      const last = pending[pending.length - 1];
      if (last && last.stream === stream && last.bytes + data.length <= spec.maxChunkBytes) {
        last.parts.push(data);
        last.bytes += data.length;
      } else pending.push({ stream, parts: [data], bytes: data.length });
      if (!flushScheduled) {
        flushScheduled = true;
        process.nextTick(flush);
      }
    };

    const reportExited = (): void => {
      if (exitedReported || exitCode === null) return;
      flush();
      exitedReported = true;
      listener.exited(exitCode);
      if (openStreams === 0) reportClosed();
    };
    const reportClosed = (): void => {
      if (closedReported || !exitedReported) return;
      closedReported = true;
      listener.closed();
    };

    const wire = (stream: Readable, name: 'stdout' | 'stderr'): void => {
      stream.on('data', (data: Buffer) => {
        dataCounter++;
        queue(name, data);
      });
      stream.once('close', () => {
        openStreams--;
        if (openStreams === 0) {
          reportExited();
          reportClosed();
        }
      });
      stream.on('error', () => undefined);
    };
    wire(child.stdout as Readable, 'stdout');
    wire(child.stderr as Readable, 'stderr');
    child.stdin?.on('error', () => undefined);

    child.once('error', (err) => {
      if (!started) reject(err);
    });
    child.once('exit', (code, signal) => {
      exitCode = code ?? signalExitCode(signal, constants.signals as unknown as Record<string, number>);
      if (openStreams === 0) return reportExited();
      let turns = 0;
      let seen = dataCounter;
      const check = (): void => {
        if (exitedReported) return;
        // While output is paused (a slow client), look again later rather than every turn.
        if (paused) return void setTimeout(check, 20);
        if (dataCounter === seen || ++turns >= MAX_DRAIN_TURNS) return reportExited();
        seen = dataCounter;
        setImmediate(check);
      };
      setImmediate(check);
    });
    child.once('spawn', () => {
      started = true;
      const pid = child.pid as number;
      resolve({
        pid,
        tty: false,
        hasStdin: spec.pipeStdin,
        write: (data) =>
          new Promise<void>((ok, fail) => {
            const stdin = child.stdin;
            if (!stdin || stdin.destroyed || stdin.writableEnded) return fail(new Error('stdin closed'));
            stdin.write(data, (err) => (err ? fail(err) : ok()));
          }),
        endStdin: () => child.stdin?.end(),
        resize: () => undefined,
        interrupt: () => void killGroup(pid, 'SIGINT'),
        pause: () => {
          paused = true;
          child.stdout?.pause();
          child.stderr?.pause();
        },
        resume: () => {
          paused = false;
          child.stdout?.resume();
          child.stderr?.resume();
        },
      });
    });
  });
}
