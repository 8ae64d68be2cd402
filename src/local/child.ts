import type { Stream } from '../environment/types.js';

/** What a spawned child tells its owner. */
export interface ChildListener {
  output(stream: Stream, data: Buffer): void;
  /** The child exited and everything it wrote before exiting has been passed to `output`. */
  exited(exitCode: number): void;
  /** Every output stream reached end of file (after `exited`). */
  closed(): void;
}

/** A running child, piped or on a pty, seen the same way by the process table. */
export interface ChildHandle {
  readonly pid: number;
  readonly tty: boolean;
  /** Whether the child was given a writable stdin at all. */
  readonly hasStdin: boolean;
  write(data: Uint8Array): Promise<void>;
  endStdin(): void;
  resize(rows: number, cols: number): void;
  interrupt(): void;
  /** Kills the child and everything it started (also after it exited, while descendants live on). */
  terminate(): void;
  /** Settles once nothing of the child is left to terminate. */
  readonly gone: Promise<void>;
  pause(): void;
  resume(): void;
}

export interface ChildSpec {
  file: string;
  args: string[];
  argv0: string;
  cwd: string;
  env: Record<string, string>;
  pipeStdin: boolean;
  rows: number;
  cols: number;
  maxChunkBytes: number;
  /** Run it under the keeper (keeper.ts); not needed in a sandbox, whose PID namespace dies with the server. */
  keeper?: boolean;
  /**
   * The command contains its descendants itself (bubblewrap run directly, whose PID namespace dies
   * with it): the spawn helper may start it without a keeper.
   */
  containsDescendants?: boolean;
  /** Files opened read-only as the child's fds 3, 4, ... (pipes only: a sandbox's seccomp program and /dev/null for bwrap). */
  descriptors?: string[];
  /** The process group an interrupt goes to, given the child's pid, when it is not the child's own (bwrap run directly). */
  interruptGroup?: (pid: number) => number | undefined;
}

/** Sends `signal` to one process; false when it is gone. */
export function signalProcess(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Sends `signal` to the child's whole process group (the child leads it). */
export function killGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  }
}

export function signalExitCode(signal: NodeJS.Signals | number | null, signals: Record<string, number>): number {
  if (typeof signal === 'number') return 128 + signal;
  if (signal && signals[signal] !== undefined) return 128 + (signals[signal] as number);
  return -1;
}

/** Splits `data` into pieces of at most `max` bytes without copying. */
export function* slices(data: Buffer, max: number): Generator<Buffer> {
  if (data.length <= max) {
    yield data;
    return;
  }
  for (let off = 0; off < data.length; off += max) yield data.subarray(off, Math.min(off + max, data.length));
}
