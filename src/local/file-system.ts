import { lstat, mkdir, readdir, readFile, realpath, rename, rm, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { DirectoryEntry, FileMetadata, FileSystem, FsCallOptions, FsChangeListener } from '../environment/types.js';
import { fsErrorFromOs, fsMessages, internalError } from '../protocol/index.js';
import { grantsFullFileAccess } from '../sandbox/profile.js';
import { FileHandles } from './file-handles.js';
import { copyPath } from './fs-copy.js';
import { FsWatches } from './fs-watches.js';

export interface LocalFileSystemLimits {
  maxOpenFiles: number;
  maxBlockBytes: number;
  maxWatches: number;
  watchCoalesceMs: number;
  maxPendingWatchPaths: number;
}

/** Runs `op`, turning OS errors into the fs error codes of PROTOCOL.md §9. */
async function fsCall<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    throw fsErrorFromOs(err);
  }
}

/**
 * Files on this machine, for one session (its open files and watches are its own). A request whose
 * sandbox restricts file access is refused: the sandboxed path is not built yet, and running it
 * unsandboxed would be a silent escalation.
 */
export class LocalFileSystem implements FileSystem {
  private readonly handles: FileHandles;
  private readonly watches: FsWatches;

  constructor(limits: LocalFileSystemLimits) {
    this.handles = new FileHandles(limits.maxOpenFiles, limits.maxBlockBytes);
    this.watches = new FsWatches({ maxWatches: limits.maxWatches, coalesceMs: limits.watchCoalesceMs, maxPendingPaths: limits.maxPendingWatchPaths });
  }

  private direct<T>(options: FsCallOptions | undefined, op: () => Promise<T>): Promise<T> {
    const sandbox = options?.sandbox;
    if (sandbox && !grantsFullFileAccess(sandbox.profile.fileSystem)) return Promise.reject(internalError(fsMessages.sandboxUnavailable));
    return fsCall(op);
  }

  readFile(p: string, options?: FsCallOptions): Promise<Buffer> {
    return this.direct(options, () => readFile(p));
  }

  writeFile(p: string, data: Uint8Array, options?: FsCallOptions): Promise<void> {
    return this.direct(options, () => writeFile(p, data));
  }

  createDirectory(p: string, args: { recursive?: boolean } = {}, options?: FsCallOptions): Promise<void> {
    return this.direct(options, async () => {
      const recursive = args.recursive ?? true;
      if (recursive) {
        // mkdir -p succeeds on an existing directory but must not on an existing file.
        const existing = await stat(p).catch(() => undefined);
        if (existing && !existing.isDirectory()) throw Object.assign(new Error('EEXIST'), { code: 'EEXIST' });
      }
      await mkdir(p, { recursive });
    });
  }

  getMetadata(p: string, options?: FsCallOptions): Promise<FileMetadata> {
    return this.direct(options, async () => {
      const link = await lstat(p);
      const target = link.isSymbolicLink() ? await stat(p) : link;
      return {
        isDirectory: target.isDirectory(),
        isFile: target.isFile(),
        isSymlink: link.isSymbolicLink(),
        size: target.size,
        createdAtMs: Math.max(0, Math.floor(target.birthtimeMs)),
        modifiedAtMs: Math.floor(target.mtimeMs),
      };
    });
  }

  readDirectory(p: string, options?: FsCallOptions): Promise<DirectoryEntry[]> {
    return this.direct(options, async () => {
      const entries = await readdir(p, { withFileTypes: true });
      const out = await Promise.all(
        entries.map(async (e): Promise<DirectoryEntry | undefined> => {
          if (!e.isSymbolicLink()) return { fileName: e.name, isDirectory: e.isDirectory(), isFile: e.isFile() };
          try {
            const t = await stat(path.join(p, e.name));
            return { fileName: e.name, isDirectory: t.isDirectory(), isFile: t.isFile() };
          } catch {
            return undefined; // broken links are left out
          }
        }),
      );
      return out.filter((e): e is DirectoryEntry => e !== undefined);
    });
  }

  remove(p: string, args: { recursive?: boolean; force?: boolean } = {}, options?: FsCallOptions): Promise<void> {
    return this.direct(options, async () => {
      let info;
      try {
        info = await lstat(p);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' && (args.force ?? true)) return;
        throw err;
      }
      if (!info.isDirectory()) return unlink(p);
      if (args.recursive ?? true) return rm(p, { recursive: true, force: true });
      return rmdir(p);
    });
  }

  copy(src: string, dst: string, args: { recursive: boolean }, options?: FsCallOptions): Promise<void> {
    return this.direct(options, () => copyPath(src, dst, args.recursive));
  }

  canonicalize(p: string, options?: FsCallOptions): Promise<string> {
    return this.direct(options, () => realpath(p));
  }

  rename(src: string, dst: string, options?: FsCallOptions): Promise<void> {
    return this.direct(options, () => rename(src, dst));
  }

  open(p: string, mode: 'read' | 'write', options?: FsCallOptions): Promise<string> {
    return this.direct(options, () => this.handles.open(p, mode));
  }

  readBlock(handle: string, offset: number, length: number): Promise<{ data: Buffer; eof: boolean }> {
    return fsCall(() => this.handles.readBlock(handle, offset, length));
  }

  writeBlock(handle: string, offset: number, data: Uint8Array): Promise<void> {
    return fsCall(() => this.handles.writeBlock(handle, offset, data));
  }

  close(handle: string): Promise<void> {
    return fsCall(() => this.handles.close(handle));
  }

  watch(p: string, args: { recursive?: boolean } = {}, options?: FsCallOptions): Promise<string> {
    return this.direct(options, () => this.watches.watch(p, args.recursive ?? false));
  }

  unwatch(watchId: string): Promise<void> {
    return fsCall(() => this.watches.unwatch(watchId));
  }

  subscribeChanges(listener: FsChangeListener): () => void {
    return this.watches.subscribe(listener);
  }

  /** Closes every open file and watch. */
  async dispose(): Promise<void> {
    this.watches.closeAll();
    await this.handles.closeAll();
  }
}
