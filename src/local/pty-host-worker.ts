import { type MessagePort, parentPort } from 'node:worker_threads';
import type { ChildHandle } from './child.js';
import { spawnPtyChild } from './pty-child.js';
import type { FromPtyThread, ToPtyThread } from './pty-host-messages.js';

/**
 * The terminal thread: owns every pseudo-terminal of the server, reads them and passes their
 * output to the main thread in chunks. See pty-host.ts for why.
 */
function serveTerminals(port: MessagePort): void {
  const post = (message: FromPtyThread, transfer?: ArrayBuffer[]): void => port.postMessage(message, transfer);

  // A chunk's memory moves to the main thread when the chunk owns all of it; otherwise it is copied.
  const ownsBuffer = (data: Buffer): boolean =>
    data.byteOffset === 0 && data.buffer instanceof ArrayBuffer && data.byteLength === data.buffer.byteLength;

  const children = new Map<number, ChildHandle>();

  async function spawn(id: number, message: Extract<ToPtyThread, { type: 'spawn' }>): Promise<void> {
    try {
      const child = await spawnPtyChild(message.spec, {
        output: (stream, data) => post({ type: 'output', id, stream, data }, ownsBuffer(data) ? [data.buffer as ArrayBuffer] : undefined),
        exited: (exitCode) => post({ type: 'exited', id, exitCode }),
        closed: () => {
          children.delete(id);
          post({ type: 'closed', id });
        },
      });
      children.set(id, child);
      post({ type: 'spawned', id, pid: child.pid });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      post({
        type: 'spawnFailed',
        id,
        message: e instanceof Error ? e.message : String(err),
        code: e.code,
        errno: e.errno,
        syscall: e.syscall,
        path: e.path,
      });
    }
  }

  port.on('message', (message: ToPtyThread) => {
    if (message.type === 'spawn') return void spawn(message.id, message);
    const child = children.get(message.id);
    if (!child) return; // it has closed: the main thread learns that from our `closed`
    // A failing call must not take the thread, and with it every terminal, down.
    try {
      switch (message.type) {
        case 'write':
          child.write(message.data).catch(() => undefined);
          break;
        case 'endStdin':
          child.endStdin();
          break;
        case 'interrupt':
          child.interrupt();
          break;
        case 'pause':
          child.pause();
          break;
        case 'resume':
          child.resume();
          break;
        case 'resize':
          child.resize(message.rows, message.cols);
          break;
      }
    } catch {
      // the terminal is closing; its exit is reported as usual
    }
  });
}

if (!parentPort) throw new Error('pty-host-worker must run as a worker thread');
serveTerminals(parentPort);
