import { Worker } from 'node:worker_threads';
import { type ChildHandle, type ChildListener, type ChildSpec, killGroup, signalProcess } from './child.js';
import { keeperAvailable } from './keeper.js';
import type { FromPtyThread, ToPtyThread } from './pty-host-messages.js';

/** How long dispose() waits for killed terminal children to be reported. */
const DISPOSE_WAIT_MS = 3000;

interface HostedChild {
  listener: ChildListener;
  pid: number;
  exited: boolean;
  closed: boolean;
  /** Runs under the keeper, which kills all the child started on SIGTERM. */
  keeper: boolean;
  terminated?: boolean;
  gone: Promise<void>;
  markGone(): void;
  spawning?: { resolve(handle: ChildHandle): void; reject(err: Error): void };
}

/**
 * Runs the server's pseudo-terminals on one worker thread (the terminal thread).
 *
 * A terminal hands over its output 4 KiB at a time and the writer stalls once about 64 KiB wait in
 * the kernel. Read on the main thread, every moment spent framing and sending output (of this or
 * any other process) is a moment the terminal is not read and its writer waits: measured, a
 * terminal streamed 25-40% slower than the reference server, which reads on its own thread, while
 * the machine sat partly idle. On the terminal thread the reads go on while the main thread
 * sends; chunks cross as transferred memory, not copies.
 *
 * The thread starts with the first terminal and does not keep the server alive while no terminal
 * is open. Should it die (a bug), its children are killed and reported exited (-1) and closed.
 */
export class PtyHost {
  private worker: Worker | undefined;
  private readonly children = new Map<number, HostedChild>();
  private nextId = 1;
  private disposed = false;
  private whenIdle: (() => void)[] = [];

  /** `onCrash` hears why the terminal thread died, should it. */
  constructor(private readonly onCrash: (err: Error) => void = () => undefined) {}

  spawn(spec: ChildSpec, listener: ChildListener): Promise<ChildHandle> {
    if (this.disposed) return Promise.reject(new Error('the terminal thread has been shut down'));
    const worker = this.ensureWorker();
    const id = this.nextId++;
    return new Promise<ChildHandle>((resolve, reject) => {
      let markGone = (): void => undefined;
      const gone = new Promise<void>((done) => (markGone = done));
      this.children.set(id, {
        listener,
        pid: 0,
        exited: false,
        closed: false,
        keeper: !!spec.keeper && keeperAvailable(),
        gone,
        markGone,
        spawning: { resolve, reject },
      });
      if (this.children.size === 1) worker.ref();
      this.send({ type: 'spawn', id, spec });
    });
  }

  /**
   * Kills what still runs on a terminal, waits (bounded) for the kills to be reported, and stops the
   * thread. A thread stopped while node-pty still waits on a child aborts the whole process when that
   * child exits (node-pty throws from its native wait thread), so with a child left the thread is
   * only let go of, never stopped.
   */
  async dispose(): Promise<void> {
    this.disposed = true;
    const worker = this.worker;
    if (!worker) return;
    for (const child of this.children.values()) if (child.pid > 0 && !child.exited) killGroup(child.pid, 'SIGKILL');
    if (this.children.size > 0) {
      await new Promise<void>((resolve) => {
        this.whenIdle.push(resolve);
        setTimeout(resolve, DISPOSE_WAIT_MS).unref();
      });
    }
    if (this.children.size > 0) {
      worker.unref();
      return;
    }
    this.worker = undefined;
    await worker.terminate();
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const isSource = import.meta.url.endsWith('.ts');
    const entry = new URL(`./pty-host-worker.${isSource ? 'ts' : 'js'}`, import.meta.url);
    // From the TypeScript source (tests, development) the thread registers tsx before loading it.
    const worker = isSource
      ? new Worker(
          `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); })`,
          { eval: true },
        )
      : new Worker(entry);
    worker.on('message', (message: FromPtyThread) => this.receive(message));
    worker.on('error', (err) => this.onCrash(err)); // 'exit' follows and ends its children
    worker.on('exit', () => {
      if (this.worker === worker) this.worker = undefined;
      this.orphanAll();
    });
    worker.unref();
    this.worker = worker;
    return worker;
  }

  private send(message: ToPtyThread, transfer?: ArrayBuffer[]): void {
    this.worker?.postMessage(message, transfer);
  }

  private receive(message: FromPtyThread): void {
    const child = this.children.get(message.id);
    if (!child) return;
    switch (message.type) {
      case 'spawned':
        child.pid = message.pid;
        child.spawning?.resolve(this.handle(message.id, child));
        child.spawning = undefined;
        break;
      case 'spawnFailed': {
        const err = Object.assign(new Error(message.message), {
          code: message.code,
          errno: message.errno,
          syscall: message.syscall,
          path: message.path,
        });
        this.forget(message.id);
        child.spawning?.reject(err);
        break;
      }
      case 'output': {
        const data = message.data;
        child.listener.output(message.stream, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
        break;
      }
      case 'exited':
        child.exited = true;
        // A keeper told to terminate before its handler was in place died of the SIGTERM itself:
        // still a terminate, reported as the SIGKILL it stands for.
        child.listener.exited(child.terminated && child.keeper && message.exitCode === 143 ? 137 : message.exitCode);
        break;
      case 'closed':
        this.forget(message.id);
        child.closed = true;
        child.markGone();
        child.listener.closed();
        break;
    }
  }

  private forget(id: number): void {
    this.children.delete(id);
    if (this.children.size > 0) return;
    this.worker?.unref();
    const waiting = this.whenIdle;
    this.whenIdle = [];
    for (const resolve of waiting) resolve();
  }

  /** The terminal thread is gone, and with it the terminals: end what it ran. */
  private orphanAll(): void {
    const children = [...this.children.values()];
    this.children.clear();
    for (const child of children) {
      if (child.spawning) {
        child.spawning.reject(new Error('the terminal thread stopped'));
        continue;
      }
      if (child.pid > 0) killGroup(child.pid, 'SIGKILL');
      if (!child.exited) child.listener.exited(-1);
      child.closed = true;
      child.markGone();
      child.listener.closed();
    }
  }

  private handle(id: number, child: HostedChild): ChildHandle {
    return {
      pid: child.pid,
      tty: true,
      hasStdin: true,
      write: async (data) => {
        if (child.exited) throw new Error('terminal closed');
        const copy = new Uint8Array(data); // the caller keeps its buffer; this copy moves to the thread
        this.send({ type: 'write', id, data: copy }, [copy.buffer]);
      },
      endStdin: () => this.send({ type: 'endStdin', id }),
      resize: (rows, cols) => this.send({ type: 'resize', id, rows, cols }),
      interrupt: () => {
        if (child.exited) killGroup(child.pid, 'SIGINT');
        else this.send({ type: 'interrupt', id });
      },
      terminate: () => {
        if (child.closed) return;
        child.terminated = true;
        if (child.keeper) signalProcess(child.pid, 'SIGTERM');
        else killGroup(child.pid, 'SIGKILL');
      },
      gone: child.gone,
      pause: () => this.send({ type: 'pause', id }),
      resume: () => this.send({ type: 'resume', id }),
    };
  }
}
