import { constants } from 'node:os';
import pty from '@lydell/node-pty';
import { killGroup, signalExitCode, slices, type ChildHandle, type ChildListener, type ChildSpec } from './child.js';

/**
 * Spawns a child on a new pseudo-terminal (it leads a new session and process group). node-pty
 * reports exit only once the terminal has been read to the end, so `exited` and `closed` are
 * reported together, after the last output.
 */
export async function spawnPtyChild(spec: ChildSpec, listener: ChildListener): Promise<ChildHandle> {
  const term = pty.spawn(spec.file, spec.args, {
    name: spec.env.TERM ?? 'xterm-256color',
    cols: spec.cols,
    rows: spec.rows,
    cwd: spec.cwd,
    env: spec.env,
    encoding: null,
  });
  let exited = false;
  (term as unknown as NodeJS.EventEmitter).on('error', () => undefined);
  term.onData((data: string | Buffer) => {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    for (const piece of slices(buf, spec.maxChunkBytes)) listener.output('pty', piece);
  });
  term.onExit(({ exitCode, signal }) => {
    exited = true;
    listener.exited(signal ? signalExitCode(signal, constants.signals as unknown as Record<string, number>) : exitCode);
    listener.closed();
  });
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
    pause: () => term.pause(),
    resume: () => term.resume(),
  };
}
