import { closeSync, constants as fsConstants, openSync, readSync } from 'node:fs';
import { constants } from 'node:os';
import pty from '@lydell/node-pty';
import { type ChildHandle, type ChildListener, type ChildSpec, killGroup, signalExitCode, signalProcess, slices } from './child.js';
import { keeperCommand, keeperEnv } from './keeper.js';

/** The parts of node-pty's UnixTerminal this module relies on beyond its typed interface. */
interface UnixTerminalInternals {
  ptsName: string;
  /** The master descriptor (non-blocking: libuv reads it through a tty stream). */
  _fd?: number;
  on(event: 'newListener', listener: (event: string | symbol) => void): void;
  on(event: 'error', listener: (err: Error) => void): void;
}

/**
 * Spawns a child on a new pseudo-terminal (it leads a new session and process group).
 *
 * Linux answers EIO on the master as soon as the last slave descriptor closes, discarding output
 * the child wrote just before exiting (kilobytes of a fast writer's tail). So the parent holds its
 * own slave descriptor: when the child exits (node-pty then starts waiting for the terminal to
 * close), the remaining output is read until the terminal goes quiet for an event-loop turn, and
 * only then is that descriptor closed, the master reaches EIO, and node-pty reports the exit. So
 * `exited` and `closed` come together, after the last byte.
 */
export async function spawnPtyChild(spec: ChildSpec, listener: ChildListener): Promise<ChildHandle> {
  const keeper = spec.keeper ? keeperCommand(spec.file, [spec.file, ...spec.args]) : undefined;
  const term = pty.spawn(keeper?.file ?? spec.file, keeper?.args ?? spec.args, {
    name: spec.env.TERM ?? 'xterm-256color',
    cols: spec.cols,
    rows: spec.rows,
    cwd: spec.cwd,
    env: keeper ? keeperEnv(spec.env) : spec.env,
    encoding: null,
  });
  const internals = term as unknown as UnixTerminalInternals;
  let heldSlave: number | undefined;
  try {
    heldSlave = openSync(internals.ptsName, fsConstants.O_RDWR | fsConstants.O_NOCTTY);
  } catch {
    heldSlave = undefined; // without it the tail may be lost, but the process still runs
  }
  const releaseSlave = (): void => {
    if (heldSlave === undefined) return;
    closeSync(heldSlave);
    heldSlave = undefined;
  };
  let exited = false;
  let received = 0;
  internals.on('error', () => undefined);
  // node-pty subscribes to 'close' from its native exit callback: that is the child's exit.
  internals.on('newListener', (event) => {
    if (event !== 'close' || heldSlave === undefined) return;
    paused = false;
    term.resume(); // the tail is bounded by the kernel's terminal buffer; read it even under backpressure
    let seen = -1;
    const drain = (): void => {
      if (received === seen) return releaseSlave();
      seen = received;
      setImmediate(drain);
    };
    setImmediate(drain);
  });
  // A terminal delivers output in reads of at most 4 KiB. Each one through the stream costs a libuv
  // callback, a buffer and an event; so on each, whatever else the terminal holds is read at once
  // with plain read(2) calls (bounded by one chunk, so a fast writer cannot hold the event loop),
  // and the reads of one event-loop turn go out as one chunk.
  const masterFd = typeof internals._fd === 'number' ? internals._fd : undefined;
  let scratch: Buffer | undefined;
  let scratchUsed = 0;
  let paused = false;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let flushScheduled = false;
  let turnsWaited = 0;
  const flush = (): void => {
    flushScheduled = false;
    turnsWaited = 0;
    if (pendingBytes === 0) return;
    // Pieces read into the scratch buffer are copied out here, before it is reused.
    const data = pending.length === 1 && scratchUsed === 0 ? (pending[0] as Buffer) : Buffer.concat(pending, pendingBytes);
    // A terminal that went quiet (less than a chunk) keeps no read buffer of its own.
    if (pendingBytes < spec.maxChunkBytes) scratch = undefined;
    pending = [];
    pendingBytes = 0;
    scratchUsed = 0;
    for (const piece of slices(data, spec.maxChunkBytes)) listener.output('pty', piece);
  };
  const take = (buf: Buffer): void => {
    received += buf.length;
    pending.push(buf);
    pendingBytes += buf.length;
  };
  const readMore = (): void => {
    if (masterFd === undefined) return;
    scratch ??= Buffer.allocUnsafe(spec.maxChunkBytes);
    while (!paused && pendingBytes < spec.maxChunkBytes) {
      const room = Math.min(scratch.length - scratchUsed, spec.maxChunkBytes - pendingBytes);
      if (room <= 0) return;
      let n: number;
      try {
        n = readSync(masterFd, scratch, scratchUsed, room, null);
      } catch {
        return; // EAGAIN: nothing more now; EIO and the like: the stream sees them on its next read
      }
      if (n <= 0) return;
      take(scratch.subarray(scratchUsed, scratchUsed + n));
      scratchUsed += n;
    }
  };
  term.onData((data: string | Buffer) => {
    take(typeof data === 'string' ? Buffer.from(data) : data);
    readMore();
    if (pendingBytes >= spec.maxChunkBytes) flush();
    else if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(maybeFlush);
    }
  });
  // While reads keep arriving every turn (a fast writer), wait a few turns more before sending.
  let seenBytes = 0;
  const maybeFlush = (): void => {
    if (!flushScheduled) return;
    if (pendingBytes > seenBytes && turnsWaited < 8) {
      seenBytes = pendingBytes;
      turnsWaited++;
      setImmediate(maybeFlush);
      return;
    }
    seenBytes = 0;
    flush();
  };
  let markGone = (): void => undefined;
  const gone = new Promise<void>((resolve) => (markGone = resolve));
  term.onExit(({ exitCode, signal }) => {
    flush();
    exited = true;
    markGone();
    releaseSlave();
    // A keeper told to terminate before its handler was in place died of the SIGTERM itself: that
    // is still a terminate, reported as the SIGKILL it stands for.
    const code = signal ? signalExitCode(signal, constants.signals as unknown as Record<string, number>) : exitCode;
    listener.exited(terminated && code === 128 + constants.signals.SIGTERM ? 128 + constants.signals.SIGKILL : code);
    listener.closed();
  });
  let terminated = false;
  const pid = term.pid;
  return {
    pid,
    tty: true,
    hasStdin: true,
    write: async (data) => {
      if (exited) throw new Error('terminal closed');
      term.write(Buffer.from(data.buffer, data.byteOffset, data.byteLength) as unknown as string);
    },
    endStdin: () => {
      if (!exited) term.write('\x04');
    },
    resize: (rows, cols) => {
      if (!exited) term.resize(cols, rows);
    },
    interrupt: () => {
      if (!exited) term.write('\x03');
      else killGroup(pid, 'SIGINT');
    },
    terminate: () => {
      if (exited) return;
      terminated = true;
      // The keeper kills the command and all it started, wherever it moved to.
      if (keeper) signalProcess(pid, 'SIGTERM');
      else killGroup(pid, 'SIGKILL');
    },
    gone,
    pause: () => {
      paused = true;
      if (!exited) term.pause();
    },
    resume: () => {
      paused = false;
      term.resume();
    },
  };
}
