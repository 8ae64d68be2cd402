import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { PermissionProfile, SandboxRequest } from '../environment/permissions.js';
import type { FsChange, FsChangeKind } from '../environment/types.js';
import { internalError, RpcError } from '../protocol/errors.js';
import { fsErrorFromOs } from '../protocol/os-error.js';
import { fsHelperEnv, wrapFsHelper } from './fs-helper-sandbox.js';
import { type OneShotOutcome, oneShotCandidate, runOneShot } from './fs-one-shot.js';
import type { FsWorkerMessage, FsWorkerOp } from './fs-worker-protocol.js';
import { type LinuxSandbox, type SandboxedCommand, SandboxUnavailableError } from './linux-sandbox.js';

export interface FsWorkerPoolOptions {
  sandbox: LinuxSandbox;
  /** Live workers at most; the least recently used idle one makes room. */
  maxWorkers: number;
  /** A worker unused this long (and holding no open file or watch) is stopped. */
  idleMs: number;
  serverEnv: Readonly<Record<string, string | undefined>>;
}

type Pending = { resolve(v: unknown): void; reject(e: Error): void };

/** One sandboxed fs worker process, for one (profile, cwd). */
export class FsWorker {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private stderr = '';
  private exited = false;
  /** Resolves once the worker exited and its sandbox's mount targets are gone. */
  readonly gone: Promise<void>;
  private markGone!: () => void;
  pins = 0;
  /** Calls handed this worker and not finished (they may still wait for it to be ready). */
  leases = 0;
  lastUsed = Date.now();
  idleTimer: NodeJS.Timeout | undefined;
  readonly ready: Promise<void>;

  get leavesTrace(): boolean {
    return this.command.leavesTrace;
  }

  constructor(
    readonly key: string,
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly command: SandboxedCommand,
    onChange: (change: FsChange) => void,
    onExit: (worker: FsWorker) => void,
  ) {
    let markReady!: () => void;
    let failReady!: (e: Error) => void;
    this.ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      failReady = reject;
    });
    this.ready.catch(() => undefined);
    this.gone = new Promise<void>((resolve) => (this.markGone = resolve));
    child.stderr.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', (line) => {
      let m: FsWorkerMessage;
      try {
        m = JSON.parse(line) as FsWorkerMessage;
      } catch {
        return;
      }
      if ('event' in m) {
        if (m.event === 'ready') markReady();
        else onChange({ watchId: m.watchId, path: m.path, kind: m.kind as FsChangeKind });
        return;
      }
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(new RpcError(m.code, m.message));
    });
    child.stdin.on('error', () => undefined);
    child.once('exit', (code, signal) => {
      this.exited = true;
      const err = internalError(`fs sandbox helper failed with status ${signal ?? `exit status: ${code}`}: ${this.stderr.trim()}`);
      failReady(err);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
      void this.command.cleanup().finally(() => this.markGone());
      onExit(this);
    });
  }

  get busy(): boolean {
    return this.pending.size > 0 || this.pins > 0 || this.leases > 0;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  async call(op: FsWorkerOp): Promise<unknown> {
    await this.ready;
    if (this.exited) throw internalError(`fs sandbox helper is gone: ${this.stderr.trim()}`);
    this.lastUsed = Date.now();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.stdin.write(`${JSON.stringify({ id, ...op })}\n`);
    });
  }

  stop(): Promise<void> {
    clearTimeout(this.idleTimer);
    if (!this.exited) this.child.kill('SIGKILL');
    return this.gone;
  }
}

/** The command that runs the worker: the built JS, or the TypeScript source through tsx in development. */
function workerCommand(): { argv: string[]; readRoots: string[] } {
  const isSource = import.meta.url.endsWith('.ts');
  const entry = fileURLToPath(new URL(`../local/fs-worker-main.${isSource ? 'ts' : 'js'}`, import.meta.url));
  const packageRoot = path.resolve(path.dirname(entry), '..', '..');
  const node = realpathSync(process.execPath);
  const argv = isSource ? [node, '--import', import.meta.resolve('tsx'), entry] : [node, entry];
  const readRoots = [node, path.dirname(node), packageRoot, '/lib', '/lib64', '/usr/lib', '/usr/lib64'];
  return { argv, readRoots };
}

/** One-shot sandboxes running at once in a server, at most; more calls go to workers. */
const MAX_ONE_SHOTS = 4;

const needsCwd = (p: PermissionProfile): boolean =>
  p.fileSystem.kind === 'restricted' && p.fileSystem.entries.some((e) => e.path.type === 'special' && e.path.kind === 'project_roots');

/**
 * Long-lived sandboxed fs workers, one per distinct (effective profile, cwd), shared by every
 * session of a server: starting a sandbox per call would cost tens of milliseconds, a warm worker a
 * round trip over a pipe. Workers stop when idle, are bounded in number, and are replaced when they
 * die; requests in flight on a dying worker fail with its status and stderr.
 */
export class FsWorkerPool {
  private readonly workers = new Map<string, FsWorker>();
  private readonly starting = new Map<string, Promise<FsWorker>>();
  /** Workers that left the pool and are stopping, by key: until gone their mount targets are on disk. */
  private readonly stopping = new Map<string, Promise<void>>();
  private readonly listeners = new Set<(change: FsChange) => void>();
  /** The one-shot sandbox running for a key (fs-one-shot.ts), settled when it is done. */
  private readonly oneShots = new Map<string, Promise<void>>();
  private closed = false;

  constructor(private readonly options: FsWorkerPoolOptions) {}

  get size(): number {
    return this.workers.size;
  }

  /** Live workers (for tests and diagnostics). */
  list(): FsWorker[] {
    return [...this.workers.values()];
  }

  /** Host paths every sandbox hides (the sandbox runtime's private directory). */
  hiddenPaths(): readonly string[] {
    return this.options.sandbox.hiddenPaths();
  }

  onChange(listener: (change: FsChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private keyOf(request: SandboxRequest): string {
    return JSON.stringify([request.profile, request.cwd, request.workspaceRoots ?? null]);
  }

  /** The worker for this sandbox, started if needed. */
  async worker(request: SandboxRequest): Promise<FsWorker> {
    if (this.closed) throw internalError('fs sandbox worker pool is closed');
    const key = this.keyOf(request);
    const live = this.workers.get(key);
    if (live) return live;
    let starting = this.starting.get(key);
    if (!starting) {
      starting = this.start(key, request).finally(() => this.starting.delete(key));
      this.starting.set(key, starting);
    }
    return starting;
  }

  /** Stops a worker that left the pool, remembering it until it is gone (see start). */
  private retire(worker: FsWorker): void {
    const gone = worker.stop().finally(() => {
      if (this.stopping.get(worker.key) === gone) this.stopping.delete(worker.key);
    });
    this.stopping.set(worker.key, gone);
  }

  private makeRoom(): void {
    if (this.workers.size < this.options.maxWorkers) return;
    const idle = [...this.workers.values()].filter((w) => !w.busy).sort((a, b) => a.lastUsed - b.lastUsed)[0];
    if (!idle) throw internalError(`too many sandboxed file-system profiles in use at once (limit ${this.options.maxWorkers})`);
    this.workers.delete(idle.key);
    this.retire(idle);
  }

  private async start(key: string, request: SandboxRequest): Promise<FsWorker> {
    // A worker of the same profile still stopping removes its mount targets when it is gone; the
    // new one's view of the disk must not be taken while they are still there.
    await this.stopping.get(key);
    if (needsCwd(request.profile) && !request.cwd) throw internalError('file system sandbox context with dynamic permissions requires cwd');
    const { argv, readRoots } = workerCommand();
    let command: SandboxedCommand;
    try {
      command = await wrapFsHelper(this.options.sandbox, request, argv, { programReads: readRoots });
    } catch (err) {
      if (err instanceof SandboxUnavailableError) throw internalError(err.message);
      throw err;
    }
    this.makeRoom();
    const child = spawn(command.file, command.args, {
      cwd: '/',
      env: fsHelperEnv(this.options.serverEnv, command),
      stdio: ['pipe', 'pipe', 'pipe'],
    }) as ChildProcessWithoutNullStreams;
    const worker = new FsWorker(
      key,
      child,
      command,
      (c) => {
        for (const l of this.listeners) l(c);
      },
      (w) => {
        if (this.workers.get(w.key) === w) this.workers.delete(w.key);
      },
    );
    this.workers.set(key, worker);
    await worker.ready;
    return worker;
  }

  /**
   * Runs one operation in the sandbox of `request` and returns its result (for operations whose
   * caller needs no hold on the worker). A write or mkdir for a profile with no live worker may run
   * in a one-shot sandbox instead (fs-one-shot.ts), when that sandbox leaves mount targets on the
   * host and so would not keep a worker warm anyway.
   */
  async perform(request: SandboxRequest, op: FsWorkerOp): Promise<unknown> {
    if (this.closed) throw internalError('fs sandbox worker pool is closed');
    // Reads and the like, with no one-shot running: straight to the worker (the key is built once, there).
    if (this.oneShots.size === 0 && !oneShotCandidate(op)) return (await this.call(request, op)).result;
    const key = this.keyOf(request);
    const running = this.oneShots.get(key);
    if (running) {
      // A profile's calls keep their order: this one runs after the one-shot before it, on a
      // worker, so that a burst of calls shares one worker start instead of a sandbox each.
      await running;
      return (await this.call(request, op)).result;
    }
    if (
      oneShotCandidate(op) &&
      !(needsCwd(request.profile) && !request.cwd) &&
      !this.workers.has(key) &&
      !this.starting.has(key) &&
      this.oneShots.size < MAX_ONE_SHOTS
    ) {
      const run = (async (): Promise<OneShotOutcome> => {
        await this.stopping.get(key);
        if (this.closed) throw internalError('fs sandbox worker pool is closed');
        try {
          return await runOneShot(this.options.sandbox, request, op, {
            serverEnv: this.options.serverEnv,
            workerReads: workerCommand().readRoots,
          });
        } catch (err) {
          if (err instanceof SandboxUnavailableError) throw internalError(err.message);
          throw err;
        }
      })();
      const settled = run.then(
        () => undefined,
        () => undefined,
      );
      this.oneShots.set(key, settled);
      void settled.finally(() => {
        if (this.oneShots.get(key) === settled) this.oneShots.delete(key);
      });
      const outcome = await run;
      if (outcome && 'done' in outcome) return undefined;
      if (outcome) throw fsErrorFromOs(outcome.error);
    }
    return (await this.call(request, op)).result;
  }

  /** Runs one operation in the sandbox of `request`, on a worker (returned for calls that keep a hold on it). */
  async call(request: SandboxRequest, op: FsWorkerOp): Promise<{ result: unknown; worker: FsWorker }> {
    // After a one-shot of the same profile that came first (an open of the file it is writing).
    const running = this.oneShots.size > 0 ? this.oneShots.get(this.keyOf(request)) : undefined;
    if (running) await running;
    const worker = await this.worker(request);
    worker.leases++;
    this.touch(worker);
    try {
      return { result: await worker.call(op), worker };
    } finally {
      worker.leases--;
      this.touch(worker);
    }
  }

  /** Keeps a worker alive while it holds a session's open file or watch. */
  pin(worker: FsWorker): void {
    worker.pins++;
  }

  unpin(worker: FsWorker): void {
    worker.pins = Math.max(0, worker.pins - 1);
    this.touch(worker);
  }

  private touch(worker: FsWorker): void {
    clearTimeout(worker.idleTimer);
    worker.idleTimer = setTimeout(
      () => {
        if (worker.busy) return this.touch(worker);
        if (this.workers.get(worker.key) === worker) this.workers.delete(worker.key);
        this.retire(worker);
        // A worker whose sandbox put mount targets in the user's directories stops as soon as it is
        // idle, so they are gone with it; the others wait for more calls of their profile.
      },
      worker.leavesTrace ? 0 : this.options.idleMs,
    );
    worker.idleTimer.unref();
  }

  /** Stops every worker; resolves once they are gone and their mount targets removed. */
  async dispose(): Promise<void> {
    this.closed = true;
    // One-shots end on their own, and their mount targets go with them.
    await Promise.all(this.oneShots.values());
    const all = [...this.workers.values()];
    this.workers.clear();
    await Promise.all(all.map((w) => w.stop()));
  }
}
