import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { constants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { type ChildHandle, type ChildListener, type ChildSpec, killGroup, signalExitCode, slices } from './child.js';
import { waitStatusExitCode } from './keeper.js';
import type { Spawner } from './spawner.js';

/** Event-loop turns to wait after exit for output still in the pipes, while it keeps coming. */
const MAX_DRAIN_TURNS = 64;
/** After the keeper reports the command's exit, how long output pipes get to reach end of file. */
const KEEPER_EXIT_GRACE_MS = 15;

/** A started child as the output pump sees it, however it was started. */
interface Started {
  pid: number;
  stdin: Writable | null | undefined;
  stdout: Readable;
  stderr: Readable;
  /** Whether the exit is reported through a pipe of its own (the keeper's), apart from the output. */
  exitReportedApart: boolean;
  gone: Promise<void>;
  interrupt(): void;
  terminate(): void;
  /** Called once with the command's exit code. */
  onExit(report: (code: number) => void): void;
}

/**
 * Spawns a child on pipes, leading its own session and process group. Resolves once the child is
 * running; rejects with the OS error when it cannot start. With `spec.keeper` and a working spawn
 * helper, the child runs under a keeper forked by the helper (spawner.ts); otherwise Node spawns it.
 *
 * Ordering: `exited` is reported only after the output already written by the child has been read
 * (the pipes go quiet for an event-loop turn or reach EOF), so no chunk follows `exited` unless a
 * grandchild writes it; `closed` follows EOF on both pipes.
 */
export async function spawnPipeChild(spec: ChildSpec, listener: ChildListener, spawner?: Spawner): Promise<ChildHandle> {
  const started = spec.keeper && spawner && (await spawner.available()) ? await startKept(spec, spawner) : await startDirect(spec);
  return pump(spec, started, listener);
}

async function startKept(spec: ChildSpec, spawner: Spawner): Promise<Started> {
  let exitListener: ((code: number) => void) | undefined;
  let exitCode: number | undefined;
  let terminated = false;
  let markGone = (): void => undefined;
  const gone = new Promise<void>((done) => (markGone = done));
  let stdin: Writable | undefined;
  const exit = (code: number): void => {
    if (exitCode !== undefined) return;
    exitCode = code;
    // As Node does for a child it spawned: the stdin of a command that exited is closed.
    stdin?.destroy();
    exitListener?.(code);
  };
  let alive = true;
  const command = await spawner.spawn(
    {
      file: spec.file,
      argv: [spec.argv0, ...spec.args],
      cwd: spec.cwd,
      env: spec.env,
      pipeStdin: spec.pipeStdin,
      ...(spec.descriptors ? { descriptors: spec.descriptors } : {}),
      ...(spec.containsDescendants ? { keeper: false } : {}),
    },
    {
      exit: (status) => exit(waitStatusExitCode(status)),
      gone: (status) => {
        alive = false;
        // The keeper reports the command's status before it exits; its own status counts only if it
        // died first (killed from outside, or told to terminate before its handler was in place).
        let own = status === null ? 128 + constants.signals.SIGKILL : waitStatusExitCode(status);
        if (terminated && own === 128 + constants.signals.SIGTERM) own = 128 + constants.signals.SIGKILL;
        exit(own);
        markGone();
      },
    },
  );
  stdin = command.stdin;
  if (exitCode !== undefined) stdin?.destroy();
  return {
    pid: command.pid,
    stdin: command.stdin,
    stdout: command.stdout,
    stderr: command.stderr,
    exitReportedApart: true,
    gone,
    interrupt: () => {
      if (spec.interruptGroup) {
        const group = spec.interruptGroup(command.commandPid);
        if (group !== undefined) killGroup(group, 'SIGINT');
        // Otherwise the keeper forwards SIGINT to the command's process group.
      } else if (alive) command.signal('INT');
    },
    terminate: () => {
      terminated = true;
      killGroup(command.commandPid, 'SIGKILL');
      // The keeper then kills every descendant left, wherever it moved to.
      if (alive) command.signal('TERM');
    },
    onExit: (report) => {
      exitListener = report;
      if (exitCode !== undefined) report(exitCode);
    },
  };
}

function startDirect(spec: ChildSpec): Promise<Started> {
  // Opened for each start: bwrap reads the seccomp program through the description's offset.
  const descriptors = (spec.descriptors ?? []).map((f) => openSync(f, 'r'));
  let child: ChildProcess;
  try {
    child = spawn(spec.file, spec.args, {
      argv0: spec.argv0,
      cwd: spec.cwd,
      env: spec.env,
      detached: true,
      stdio: [spec.pipeStdin ? 'pipe' : 'ignore', 'pipe', 'pipe', ...descriptors],
      windowsHide: true,
    });
  } finally {
    for (const fd of descriptors) closeSync(fd);
  }
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise<Started>((resolve, reject) => {
    child.on('error', reject);
    child.once('spawn', () => {
      const pid = child.pid as number;
      resolve({
        pid,
        stdin: child.stdin,
        stdout: child.stdout as Readable,
        stderr: child.stderr as Readable,
        exitReportedApart: false,
        gone,
        interrupt: () => {
          if (spec.interruptGroup) {
            const group = spec.interruptGroup(pid);
            if (group !== undefined) killGroup(group, 'SIGINT');
          } else killGroup(pid, 'SIGINT');
        },
        terminate: () => killGroup(pid, 'SIGKILL'),
        onExit: (report) => {
          const exited = (code: number | null, signal: NodeJS.Signals | null): void =>
            report(code ?? signalExitCode(signal, constants.signals as unknown as Record<string, number>));
          if (child.exitCode !== null || child.signalCode !== null) exited(child.exitCode, child.signalCode);
          else child.once('exit', exited);
        },
      });
    });
  });
}

/** Passes a started child's output and exit to `listener`, in order. */
function pump(spec: ChildSpec, child: Started, listener: ChildListener): ChildHandle {
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
    const onClose = (): void => {
      openStreams--;
      if (openStreams === 0) {
        reportExited();
        reportClosed();
      }
    };
    // An empty stream may have ended before it reached here (nothing of it is lost then).
    if (stream.closed) queueMicrotask(onClose);
    else stream.once('close', onClose);
    stream.on('error', () => undefined);
  };
  wire(child.stdout, 'stdout');
  wire(child.stderr, 'stderr');
  child.stdin?.on('error', () => undefined);

  child.onExit((code) => {
    if (exitCode !== null) return;
    exitCode = code;
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
    // The keeper's report comes through a pipe of its own, which may be read before the last
    // output of the command is (seen under load: 1 run in 50): give the output pipes a few
    // milliseconds to reach end of file (they do at once when no descendant holds them) before
    // the quiet-turn rule applies. The rule then runs after a poll phase (setImmediate), never
    // straight from the timer: on a loop late by more than the grace the timer comes first in the
    // turn, before the output that was already waiting in the pipes is read.
    if (child.exitReportedApart) setTimeout(() => setImmediate(check), KEEPER_EXIT_GRACE_MS);
    else setImmediate(check);
  });

  return {
    pid: child.pid,
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
    interrupt: () => child.interrupt(),
    terminate: () => child.terminate(),
    gone: child.gone,
    pause: () => {
      paused = true;
      child.stdout.pause();
      child.stderr.pause();
    },
    resume: () => {
      paused = false;
      child.stdout.resume();
      child.stderr.resume();
    },
  };
}
