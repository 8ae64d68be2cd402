import { randomUUID } from 'node:crypto';
import {
  closeSync,
  constants as fsConstants,
  lstatSync,
  mkdirSync,
  realpathSync,
  renameSync,
  rmdirSync,
  type Stats,
  statSync,
  unlinkSync,
} from 'node:fs';
import { readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { SandboxRequest } from '../environment/permissions.js';
import type {
  DirectoryEntry,
  FileMetadata,
  FileSystem,
  FsCallOptions,
  FsChange,
  FsChangeListener,
  WalkOptions,
  WalkResult,
} from '../environment/types.js';
import { internalError, invalidRequest } from '../protocol/errors.js';
import type { OpenFileMode } from '../protocol/index.js';
import { fsMessages, methodMessages } from '../protocol/messages.js';
import { fsErrorFromOs } from '../protocol/os-error.js';
import { applyCeiling, type PermissionCeiling } from '../sandbox/ceiling.js';
import type { FsWorker, FsWorkerPool } from '../sandbox/fs-worker-pool.js';
import type { FsWorkerOp } from '../sandbox/fs-worker-protocol.js';
import { grantsFullFileAccess } from '../sandbox/profile.js';
import { permitsEveryRead } from '../sandbox/read-policy.js';
import { ClientFileHandles, checkBlockLength, MAX_CLIENT_FILE_HANDLES } from './client-file-handles.js';
import { DirectReads } from './direct-read.js';
import { FileHandles } from './file-handles.js';
import {
  openForReading,
  readOpened,
  readUnsized,
  SMALL_WRITE_BYTES,
  UnsizedReadError,
  type UnsizedReadLimits,
  writeSmallFile,
  writeUnsized,
} from './file-io.js';
import { copyPath } from './fs-copy.js';
import { walkTree } from './fs-walk.js';
import { FsWatches } from './fs-watches.js';
import { MissingWatch } from './missing-watch.js';

export interface LocalFileSystemLimits {
  maxOpenFiles: number;
  maxBlockBytes: number;
  maxWatches: number;
  watchCoalesceMs: number;
  maxPendingWatchPaths: number;
  /** fs/readFile of a file of unknown size (device, FIFO, /proc): most bytes read (default 48 MiB, 64 MiB as base64). */
  maxUnsizedReadBytes?: number;
  /** ...and how long it may wait for its end of data (default 10 s). */
  unsizedReadTimeoutMs?: number;
}

export const DEFAULT_MAX_UNSIZED_READ_BYTES = 48 * 1024 * 1024;
export const DEFAULT_UNSIZED_READ_TIMEOUT_MS = 10_000;

/**
 * mkdir -p with the real errno: Node's recursive mkdir reports ENOENT for EROFS/EACCES on a parent.
 * An existing directory is fine; an existing file is EEXIST. Synchronous: a few mkdir syscalls cost
 * less than as many thread-pool hand-offs (see getMetadataSync).
 */
function mkdirpSync(p: string): void {
  try {
    mkdirSync(p);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      if (statSync(p).isDirectory()) return;
      throw err;
    }
    const parent = path.dirname(p);
    if (code !== 'ENOENT' || parent === p) throw err;
    mkdirpSync(parent);
    try {
      mkdirSync(p);
    } catch (again) {
      if ((again as NodeJS.ErrnoException).code !== 'EEXIST' || !statSync(p).isDirectory()) throw again;
    }
  }
}

const { S_IFMT, S_IFDIR, S_IFREG, S_IFLNK } = fsConstants;

/** File types from the mode bits: Stats' isDirectory() and friends cost more than the stat call's own JS. */
function toMetadata(link: Stats, target: Stats): FileMetadata {
  const type = target.mode & S_IFMT;
  return {
    isDirectory: type === S_IFDIR,
    isFile: type === S_IFREG,
    isSymlink: (link.mode & S_IFMT) === S_IFLNK,
    size: target.size,
    createdAtMs: Math.max(0, Math.floor(target.birthtimeMs)),
    modifiedAtMs: Math.floor(target.mtimeMs),
  };
}

/**
 * fs/getMetadata without the thread pool: one or two syscalls instead of thread hand-offs and
 * wake-ups (against fs.promises.lstat, server CPU for a fresh server's first 220 calls 68.5 -> 60.0 ms).
 */
export function getMetadataSync(p: string): FileMetadata {
  try {
    const link = lstatSync(p);
    return toMetadata(link, (link.mode & S_IFMT) === S_IFLNK ? statSync(p) : link);
  } catch (err) {
    throw fsErrorFromOs(err);
  }
}

type EntryKind = { isDirectory: boolean; isFile: boolean } | 'missing' | undefined;

async function statKind(p: string): Promise<EntryKind> {
  try {
    const t = await stat(p);
    return { isDirectory: t.isDirectory(), isFile: t.isFile() };
  } catch {
    return 'missing';
  }
}

/**
 * The entries of a directory, symlinks described by their targets (`kindOf`; broken links are left
 * out). Undefined when `kindOf` cannot tell for some link (the caller then asks the worker).
 */
async function listDirectory(dir: string, kindOf: (p: string) => EntryKind | Promise<EntryKind>): Promise<DirectoryEntry[] | undefined> {
  const entries = await readdir(dir, { withFileTypes: true });
  let unknown = false;
  const out = await Promise.all(
    entries.map(async (e): Promise<DirectoryEntry | undefined> => {
      if (!e.isSymbolicLink()) return { fileName: e.name, isDirectory: e.isDirectory(), isFile: e.isFile() };
      const kind = await kindOf(path.join(dir, e.name));
      if (kind === undefined) unknown = true;
      return kind === undefined || kind === 'missing' ? undefined : { fileName: e.name, ...kind };
    }),
  );
  return unknown ? undefined : out.filter((e): e is DirectoryEntry => e !== undefined);
}

function fsCallSync<T>(op: () => T): T {
  try {
    return op();
  } catch (err) {
    throw fsErrorFromOs(err);
  }
}

/** Runs `op`, turning OS errors into the fs error codes of docs/protocol.md §10. */
async function fsCall<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    throw fsErrorFromOs(err);
  }
}

/**
 * Files on this machine, for one session (its open files and watches are its own). A call whose
 * sandbox restricts file access runs in a sandboxed worker (FsWorkerPool), so the kernel decides
 * what it may touch; without a pool such a call is refused, never run unsandboxed.
 */
export class LocalFileSystem implements FileSystem {
  private readonly handles: FileHandles;
  private readonly watches: FsWatches;
  private readonly listeners = new Set<FsChangeListener>();
  /** Open files and watches that live in a sandboxed worker. */
  private readonly remoteHandles = new Map<string, FsWorker>();
  private readonly remoteWatches = new Map<string, FsWorker>();
  private readonly offPool: (() => void) | undefined;
  private readonly maxOpenFiles: number;
  private readonly maxWatches: number;
  /** Reads answered here when the call's policy permits every read (see direct-read.ts). */
  private readonly direct: DirectReads;
  private readonly restrictions = new Map<string, SandboxRequest | null>();
  /** The same, by the identity of a frozen request (the cwd a request without one gets is fixed per file system). */
  private readonly restrictionOf = new WeakMap<SandboxRequest, SandboxRequest | null>();
  /** What a call without a sandbox gets: the ceiling alone, the same for every such call. */
  private unrequested: SandboxRequest | null | undefined;
  /** Whether a restriction (kept above, never changed) permits every read. */
  private readonly everyRead = new WeakMap<SandboxRequest, boolean>();
  private readonly unsized: UnsizedReadLimits;
  /** Remote opens and watches in flight, counted against the limits before their answer arrives. */
  private pendingRemoteHandles = 0;
  private pendingRemoteWatches = 0;
  /** Client-named handles (fs/open with handleId): here, or in a sandboxed worker under its own key. */
  private readonly clientHandles = new ClientFileHandles();
  private readonly workerFiles = new Map<string, { worker: FsWorker; key: string; mode: OpenFileMode }>();
  private readonly missingWatch = new MissingWatch();

  constructor(
    limits: LocalFileSystemLimits,
    private readonly pool?: FsWorkerPool,
    private readonly ceiling?: PermissionCeiling,
  ) {
    this.handles = new FileHandles(limits.maxOpenFiles, limits.maxBlockBytes);
    this.watches = new FsWatches({
      maxWatches: limits.maxWatches,
      coalesceMs: limits.watchCoalesceMs,
      maxPendingPaths: limits.maxPendingWatchPaths,
    });
    this.watches.subscribe((c) => this.emitChange(c));
    this.offPool = pool?.onChange((c) => {
      if (this.remoteWatches.has(c.watchId)) this.emitChange(c);
    });
    this.maxOpenFiles = limits.maxOpenFiles;
    this.maxWatches = limits.maxWatches;
    this.direct = new DirectReads(() => pool?.hiddenPaths() ?? []);
    this.unsized = {
      maxBytes: limits.maxUnsizedReadBytes ?? DEFAULT_MAX_UNSIZED_READ_BYTES,
      timeoutMs: limits.unsizedReadTimeoutMs ?? DEFAULT_UNSIZED_READ_TIMEOUT_MS,
    };
  }

  /** Whether a read of `p` under `sandbox` may be tried here rather than in its worker. */
  private readsDirectly(sandbox: SandboxRequest, p: string): boolean {
    // The restriction is the same object for every call with the same sandbox (see restriction()).
    let every = this.everyRead.get(sandbox);
    if (every === undefined) {
      every = permitsEveryRead(sandbox.profile.fileSystem);
      this.everyRead.set(sandbox, every);
    }
    return every && this.direct.candidate(p);
  }

  private emitChange(c: FsChange): void {
    for (const l of this.listeners) l(c);
  }

  /** The sandbox a call must run in, or undefined when it may run directly. */
  private restriction(options: FsCallOptions | undefined): SandboxRequest | undefined {
    const requested = options?.sandbox;
    if (!this.ceiling && !requested) return undefined;
    // The server hands every call with the same sandbox value the same frozen object
    // (server/parsed-sandboxes.ts): its result is found without building the string key below.
    const same = requested ? (Object.isFrozen(requested) ? this.restrictionOf.get(requested) : undefined) : this.unrequested;
    if (same !== undefined) return same ?? undefined;
    const callCwd = requested?.cwd ?? this.ceiling?.cwd ?? '/';
    // Intersecting with the ceiling resolves both policies (tens of microseconds); the result
    // depends only on the request and the cwd, so it is kept per distinct pair (a few per session).
    const key = `${callCwd}\0${requested ? JSON.stringify(requested) : ''}`;
    let known = this.restrictions.get(key);
    if (known === undefined) {
      const sandbox = applyCeiling(this.ceiling, requested, callCwd);
      known = sandbox && !grantsFullFileAccess(sandbox.profile.fileSystem) ? sandbox : null;
      if (this.restrictions.size >= 64) this.restrictions.clear();
      this.restrictions.set(key, known);
    }
    if (!requested) this.unrequested = known;
    else if (Object.isFrozen(requested)) this.restrictionOf.set(requested, known);
    return known ?? undefined;
  }

  private async viaWorker(sandbox: SandboxRequest, op: FsWorkerOp): Promise<{ result: unknown; worker: FsWorker }> {
    if (!this.pool) throw internalError(fsMessages.sandboxUnavailable);
    return this.pool.call(sandbox, op);
  }

  /** Runs `op` in the sandbox (on a worker, or in a one-shot sandbox where that is faster) and returns its result. */
  private inSandbox(sandbox: SandboxRequest, op: FsWorkerOp): Promise<unknown> {
    if (!this.pool) return Promise.reject(internalError(fsMessages.sandboxUnavailable));
    return this.pool.perform(sandbox, op);
  }

  /** Runs `op` in the call's sandbox, or `direct` here (synchronous ones without promise layers in between). */
  private run<T>(
    options: FsCallOptions | undefined,
    op: FsWorkerOp,
    direct: () => T | Promise<T>,
    fromWorker: (r: unknown) => T,
  ): Promise<T> {
    const sandbox = this.restriction(options);
    if (sandbox) return this.inSandbox(sandbox, op).then(fromWorker);
    try {
      const result = direct();
      return result instanceof Promise ? result.catch((err: unknown) => Promise.reject(fsErrorFromOs(err))) : Promise.resolve(result);
    } catch (err) {
      return Promise.reject(fsErrorFromOs(err));
    }
  }

  readFile(p: string, options?: FsCallOptions): Promise<Buffer> {
    return this.run(
      options,
      { op: 'readFile', path: p },
      () => this.readAnyFile(p),
      (r) => Buffer.from(r as string, 'base64'),
    );
  }

  /** A whole file: a regular one as it is, anything else (device, FIFO, /proc) within the unsized-read bounds. */
  private async readAnyFile(p: string): Promise<Buffer> {
    const opened = await openForReading(p);
    if (opened && 'whole' in opened) return opened.whole;
    if (opened) {
      const parts: Buffer[] = [];
      for await (const chunk of opened.chunks) parts.push(Buffer.from(chunk));
      return Buffer.concat(parts);
    }
    try {
      return await readUnsized(p, this.unsized);
    } catch (err) {
      if (!(err instanceof UnsizedReadError)) throw err;
      throw invalidRequest(
        err.reason === 'tooLong'
          ? fsMessages.unsizedTooLong(p, this.unsized.maxBytes)
          : fsMessages.unsizedTimedOut(p, this.unsized.timeoutMs),
      );
    }
  }

  async readFileStream(p: string, options?: FsCallOptions): Promise<Buffer | AsyncIterable<Buffer>> {
    const sandbox = this.restriction(options);
    let opened: ReturnType<typeof openForReading>;
    if (!sandbox) opened = fsCallSync(() => openForReading(p));
    else if (this.readsDirectly(sandbox, p)) {
      const fd = fsCallSync(() => this.direct.openForReading(p));
      opened = fd && fsCallSync(() => readOpened(fd.fd, fd.info));
    }
    if (!opened) return this.readFile(p, options);
    return 'whole' in opened ? opened.whole : opened.chunks;
  }

  async writeFile(p: string, data: Uint8Array, options?: FsCallOptions): Promise<void> {
    const sandbox = this.restriction(options);
    if (sandbox) {
      await this.inSandbox(sandbox, {
        op: 'writeFile',
        path: p,
        data: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64'),
      });
      return;
    }
    if (data.byteLength <= SMALL_WRITE_BYTES && fsCallSync(() => writeSmallFile(p, data))) return;
    try {
      // A FIFO or device: never a thread-pool thread parked waiting for a reader or for room.
      if (await writeUnsized(p, data, this.unsized.timeoutMs)) return;
    } catch (err) {
      if (err instanceof UnsizedReadError) throw invalidRequest(fsMessages.unsizedWriteTimedOut(p, this.unsized.timeoutMs));
      throw fsErrorFromOs(err);
    }
    return fsCall(() => writeFile(p, data));
  }

  createDirectory(p: string, args: { recursive?: boolean } = {}, options?: FsCallOptions): Promise<void> {
    const recursive = args.recursive ?? true;
    return this.run(
      options,
      { op: 'createDirectory', path: p, recursive },
      () => (recursive ? mkdirpSync(p) : mkdirSync(p)),
      () => undefined,
    );
  }

  getMetadataNow(p: string, options?: FsCallOptions): FileMetadata | undefined {
    const sandbox = this.restriction(options);
    if (!sandbox) return getMetadataSync(p);
    if (!this.readsDirectly(sandbox, p)) return undefined;
    const m = fsCallSync(() => this.direct.metadata(p));
    return m && toMetadata(m.link, m.target);
  }

  getMetadata(p: string, options?: FsCallOptions): Promise<FileMetadata> {
    try {
      const now = this.getMetadataNow(p, options);
      if (now) return Promise.resolve(now);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.run(
      options,
      { op: 'getMetadata', path: p },
      // One or two stat calls answered from the inode cache take microseconds; a thread-pool
      // hand-off costs two wake-ups and tens of microseconds, which is most of this request.
      () => getMetadataSync(p),
      (r) => r as FileMetadata,
    );
  }

  async readDirectory(p: string, options?: FsCallOptions): Promise<DirectoryEntry[]> {
    const sandbox = this.restriction(options);
    if (sandbox && this.readsDirectly(sandbox, p)) {
      const fd = fsCallSync(() => this.direct.openDirectory(p));
      if (fd !== undefined) {
        try {
          // Listed through the verified descriptor, so nothing swapped in at `p` meanwhile is read.
          const listed = await fsCall(() => listDirectory(`/proc/self/fd/${fd}`, (link) => this.direct.linkTarget(link)));
          if (listed) return listed;
        } finally {
          closeSync(fd);
        }
      }
    }
    return this.run(
      options,
      { op: 'readDirectory', path: p },
      async () => (await listDirectory(p, statKind)) as DirectoryEntry[],
      (r) => r as DirectoryEntry[],
    );
  }

  remove(p: string, args: { recursive?: boolean; force?: boolean } = {}, options?: FsCallOptions): Promise<void> {
    const recursive = args.recursive ?? true;
    const force = args.force ?? true;
    return this.run(
      options,
      { op: 'remove', path: p, recursive, force },
      // A file, a link or an empty directory goes in one or two syscalls; a tree through the pool.
      async () => {
        let info;
        try {
          info = lstatSync(p);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT' && force) return;
          throw err;
        }
        if (!info.isDirectory()) return unlinkSync(p);
        if (recursive) return rm(p, { recursive: true, force: true });
        return rmdirSync(p);
      },
      () => undefined,
    );
  }

  copy(src: string, dst: string, args: { recursive: boolean }, options?: FsCallOptions): Promise<void> {
    return this.run(
      options,
      { op: 'copy', sourcePath: src, destinationPath: dst, recursive: args.recursive },
      () => copyPath(src, dst, args.recursive),
      () => undefined,
    );
  }

  canonicalize(p: string, options?: FsCallOptions): Promise<string> {
    return this.run(
      options,
      { op: 'canonicalize', path: p },
      () => realpathSync.native(p),
      (r) => r as string,
    );
  }

  rename(src: string, dst: string, options?: FsCallOptions): Promise<void> {
    return this.run(
      options,
      { op: 'rename', sourcePath: src, destinationPath: dst },
      () => renameSync(src, dst),
      () => undefined,
    );
  }

  async open(p: string, mode: 'read' | 'write', options?: FsCallOptions): Promise<string> {
    return (await this.openWithMode(p, mode, {}, options)).handle;
  }

  async openWithMode(
    p: string,
    mode: 'read' | 'write',
    args: { permissions?: number | null },
    options?: FsCallOptions,
  ): Promise<{ handle: string; permissions: number }> {
    const sandbox = this.restriction(options);
    if (!sandbox) return fsCall(() => this.handles.open(p, mode, args.permissions));
    if (this.remoteHandles.size + this.pendingRemoteHandles >= this.maxOpenFiles)
      throw invalidRequest(fsMessages.tooManyHandles(this.maxOpenFiles));
    this.pendingRemoteHandles++;
    let via: { result: unknown; worker: FsWorker };
    try {
      via = await this.viaWorker(sandbox, { op: 'open', path: p, mode, permissions: args.permissions ?? null });
    } finally {
      this.pendingRemoteHandles--;
    }
    const { result, worker } = via;
    const opened = result as { handle: string; permissions: number };
    this.remoteHandles.set(opened.handle, worker);
    this.pool?.pin(worker);
    return opened;
  }

  async readBlock(handle: string, offset: number, length: number): Promise<{ data: Buffer; eof: boolean }> {
    const worker = this.remoteHandles.get(handle);
    if (!worker) return fsCall(() => this.handles.readBlock(handle, offset, length));
    const r = (await worker.call({ op: 'readBlock', handle, offset, length })) as { data: string; eof: boolean };
    return { data: Buffer.from(r.data, 'base64'), eof: r.eof };
  }

  async writeBlock(handle: string, offset: number, data: Uint8Array): Promise<void> {
    const worker = this.remoteHandles.get(handle);
    if (!worker) return fsCall(() => this.handles.writeBlock(handle, offset, data));
    await worker.call({ op: 'writeBlock', handle, offset, data: Buffer.from(data).toString('base64') });
  }

  async close(handle: string): Promise<void> {
    const worker = this.remoteHandles.get(handle);
    if (!worker) return fsCall(() => this.handles.close(handle));
    this.remoteHandles.delete(handle);
    this.pool?.unpin(worker);
    await worker.call({ op: 'close', handle });
  }

  async watch(p: string, args: { recursive?: boolean } = {}, options?: FsCallOptions): Promise<string> {
    const sandbox = this.restriction(options);
    if (!sandbox) return fsCall(() => this.watches.watch(p, args.recursive ?? false));
    if (this.remoteWatches.size + this.pendingRemoteWatches >= this.maxWatches)
      throw invalidRequest(fsMessages.tooManyWatches(this.maxWatches));
    this.pendingRemoteWatches++;
    let watched: { result: unknown; worker: FsWorker };
    try {
      watched = await this.viaWorker(sandbox, { op: 'watch', path: p, recursive: args.recursive ?? false });
    } finally {
      this.pendingRemoteWatches--;
    }
    const { result, worker } = watched;
    const watchId = result as string;
    this.remoteWatches.set(watchId, worker);
    this.pool?.pin(worker);
    return watchId;
  }

  async unwatch(watchId: string): Promise<void> {
    const worker = this.remoteWatches.get(watchId);
    if (!worker) return fsCall(() => this.watches.unwatch(watchId));
    this.remoteWatches.delete(watchId);
    this.pool?.unpin(worker);
    await worker.call({ op: 'unwatch', watchId });
  }

  subscribeChanges(listener: FsChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  walk(p: string, options: WalkOptions, callOptions?: FsCallOptions): Promise<WalkResult> {
    return this.run(
      callOptions,
      { op: 'walk', path: p, options },
      () => walkTree(p, options),
      (r) => r as WalkResult,
    );
  }

  watchMissing(watchId: number, missing: string[], present: string | null): Promise<boolean> {
    return this.missingWatch.watch(watchId, missing, present);
  }

  subscribeMissingChanged(listener: (watchId: number) => void): () => void {
    return this.missingWatch.subscribe(listener);
  }

  async openFile(handleId: string, p: string, mode: OpenFileMode, options?: FsCallOptions): Promise<void> {
    const sandbox = this.restriction(options);
    if (this.workerFiles.has(handleId)) throw invalidRequest(methodMessages.handleExists(handleId));
    if (!sandbox) {
      if (this.clientHandles.size + this.workerFiles.size >= MAX_CLIENT_FILE_HANDLES)
        throw invalidRequest(methodMessages.tooManyFileHandles(MAX_CLIENT_FILE_HANDLES));
      return this.clientHandles.open(handleId, p, mode);
    }
    if (this.clientHandles.has(handleId)) throw invalidRequest(methodMessages.handleExists(handleId));
    if (this.clientHandles.size + this.workerFiles.size >= MAX_CLIENT_FILE_HANDLES)
      throw invalidRequest(methodMessages.tooManyFileHandles(MAX_CLIENT_FILE_HANDLES));
    // Workers are shared between sessions: the handle goes by a key of its own there.
    const key = randomUUID();
    const { worker } = await this.viaWorker(sandbox, { op: 'openFile', handleId: key, path: p, mode });
    if (this.workerFiles.has(handleId) || this.clientHandles.has(handleId)) {
      await worker.call({ op: 'closeFile', handleId: key }).catch(() => undefined);
      throw invalidRequest(methodMessages.handleExists(handleId));
    }
    this.workerFiles.set(handleId, { worker, key, mode });
    this.pool?.pin(worker);
  }

  async readFileBlock(handleId: string, offset: number, length: number): Promise<{ data: Buffer; eof: boolean }> {
    const remote = this.workerFiles.get(handleId);
    if (!remote) return this.clientHandles.readBlock(handleId, offset, length);
    checkBlockLength('read', length);
    if (remote.mode !== 'read') throw internalError(methodMessages.badFileDescriptor);
    const r = (await remote.worker.call({ op: 'readFileBlock', handleId: remote.key, offset, length })) as { data: string; eof: boolean };
    return { data: Buffer.from(r.data, 'base64'), eof: r.eof };
  }

  async writeFileBlock(handleId: string, offset: number, data: Uint8Array): Promise<void> {
    const remote = this.workerFiles.get(handleId);
    if (!remote) return this.clientHandles.writeBlock(handleId, offset, data);
    checkBlockLength('write', data.byteLength);
    if (remote.mode !== 'replace') throw internalError(methodMessages.badFileDescriptor);
    await remote.worker.call({
      op: 'writeFileBlock',
      handleId: remote.key,
      offset,
      data: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64'),
    });
  }

  async closeFile(handleId: string): Promise<void> {
    const remote = this.workerFiles.get(handleId);
    if (!remote) return this.clientHandles.close(handleId);
    this.workerFiles.delete(handleId);
    this.pool?.unpin(remote.worker);
    await remote.worker.call({ op: 'closeFile', handleId: remote.key }).catch(() => undefined);
  }

  /** Closes every open file and watch, here and in sandboxed workers. */
  async dispose(): Promise<void> {
    this.watches.closeAll();
    this.missingWatch.close();
    this.offPool?.();
    const remote = [
      ...[...this.remoteHandles].map(([handle, w]) => w.call({ op: 'close', handle }).finally(() => this.pool?.unpin(w))),
      ...[...this.remoteWatches].map(([watchId, w]) => w.call({ op: 'unwatch', watchId }).finally(() => this.pool?.unpin(w))),
      ...[...this.workerFiles.values()].map(({ worker, key }) =>
        worker.call({ op: 'closeFile', handleId: key }).finally(() => this.pool?.unpin(worker)),
      ),
    ];
    this.workerFiles.clear();
    this.remoteHandles.clear();
    this.remoteWatches.clear();
    await Promise.allSettled([this.handles.closeAll(), this.clientHandles.closeAll(), ...remote]);
  }
}
