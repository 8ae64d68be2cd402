import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { constants } from 'node:os';
import type { Readable } from 'node:stream';
import { type ChildHandle, type ChildListener, type ChildSpec, killGroup, signalExitCode, signalProcess, slices } from './child.js';
import { keeperCommand, keeperEnv, waitStatusExitCode } from './keeper.js';

/** Event-loop turns to wait after exit for output still in the pipes, while it keeps coming. */
const MAX_DRAIN_TURNS = 64;
/** After the keeper reports the command's exit, how long output pipes get to reach end of file. */
const KEEPER_EXIT_GRACE_MS = 15;

/**
 * Spawns a child on pipes, leading its own session and process group. Resolves once the child is
 * running; rejects with the OS error when it cannot start.
 *
 * Ordering: `exited` is reported only after the output already written by the child has been read
 * (the pipes go quiet for an event-loop turn or reach EOF), so no chunk follows `exited` unless a
 * grandchild writes it; `closed` follows EOF on both pipes.
 */
export function spawnPipeChild(spec: ChildSpec, listener: ChildListener): Promise<ChildHandle> {
  const keeper = spec.keeper ? keeperCommand(spec.file, [spec.argv0, ...spec.args]) : undefined;
  // Opened for each start: bwrap reads the seccomp program through the description's offset.
  const descriptors = keeper ? [] : (spec.descriptors ?? []).map((f) => openSync(f, 'r'));
  let child: ChildProcess;
  try {
    child = spawnChild(spec, keeper, descriptors);
  } finally {
    for (const fd of descriptors) closeSync(fd);
  }
  /** The command's pid under the keeper (its process group); the spawned pid otherwise. */
  let commandPid: number | undefined;
  let keeperAlive = true;
  let terminated = false;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void gone.then(() => (keeperAlive = false));

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
    const onCommandExit = (code: number): void => {
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
      // the quiet-turn rule applies.
      if (keeper) setTimeout(check, KEEPER_EXIT_GRACE_MS);
      else setImmediate(check);
    };
    const statusPipe = keeper ? (child.stdio[3] as Readable) : undefined;
    if (statusPipe) {
      let lines = '';
      statusPipe.setEncoding('latin1');
      statusPipe.on('data', (text: string) => {
        lines += text;
        for (let nl = lines.indexOf('\n'); nl !== -1; nl = lines.indexOf('\n')) {
          const [word, value] = lines.slice(0, nl).split(' ');
          lines = lines.slice(nl + 1);
          if (word === 'pid') commandPid = Number(value);
          else if (word === 'exit') onCommandExit(waitStatusExitCode(Number(value)));
        }
      });
      statusPipe.on('error', () => undefined);
    }
    child.once('exit', (code, signal) => {
      let own = code ?? signalExitCode(signal, constants.signals as unknown as Record<string, number>);
      // A keeper told to terminate before its handler was in place died of the SIGTERM itself.
      if (terminated && signal === 'SIGTERM') own = 128 + constants.signals.SIGKILL;
      // The keeper reports the command's status before it exits; its own status counts only if it
      // died first (killed from outside).
      if (statusPipe && !statusPipe.readableEnded) statusPipe.once('end', () => onCommandExit(own)).resume();
      else onCommandExit(own);
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
        interrupt: () => {
          // The keeper forwards SIGINT to the command's process group.
          if (keeper && keeperAlive) signalProcess(pid, 'SIGINT');
          else if (spec.interruptGroup) {
            const group = spec.interruptGroup(pid);
            if (group !== undefined) killGroup(group, 'SIGINT');
          } else if (!keeper) killGroup(pid, 'SIGINT');
        },
        terminate: () => {
          terminated = true;
          if (commandPid !== undefined) killGroup(commandPid, 'SIGKILL');
          // The keeper then kills every descendant left, wherever it moved to.
          if (keeper && keeperAlive) signalProcess(pid, 'SIGTERM');
          else if (!keeper) killGroup(pid, 'SIGKILL');
        },
        gone,
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

function spawnChild(spec: ChildSpec, keeper: { file: string; args: string[] } | undefined, descriptors: number[]): ChildProcess {
  if (keeper)
    return spawn(keeper.file, keeper.args, {
      cwd: spec.cwd,
      env: keeperEnv(spec.env),
      detached: true,
      stdio: [spec.pipeStdin ? 'pipe' : 'ignore', 'pipe', 'pipe', 'pipe'],
      windowsHide: true,
    });
  return spawn(spec.file, spec.args, {
    argv0: spec.argv0,
    cwd: spec.cwd,
    env: spec.env,
    detached: true,
    stdio: [spec.pipeStdin ? 'pipe' : 'ignore', 'pipe', 'pipe', ...descriptors],
    windowsHide: true,
  });
}
