import type { DirectoryEntry, FileMetadata, FsChange, OpenFileMode, WalkOptions, WalkResult } from '../environment/types.js';
import type { MethodName, MethodRequest, MethodResult } from '../protocol/methods.js';
import { EventQueue } from './event-queue.js';
import { fieldData } from './frame-decoder.js';

/** ExecServerClient's `request`: a declared method with its params, resolving to its result. */
export type RequestFn = <M extends MethodName>(method: M, params: MethodRequest<M>) => Promise<MethodResult<M>>;

/** The answer of a two-form method to an older-form request (`handle`, not `handleId`): the union narrowed by the form asked. */
const olderForm = <R extends object>(r: R): Extract<R, { handle: string }> => r as Extract<R, { handle: string }>;

/** A wire `sandbox` object (any shape of docs/protocol.md §8), passed through as given. */
export type WireSandboxObject = Record<string, unknown>;

export interface FsRequestOptions {
  sandbox?: WireSandboxObject | null;
}

const withSandbox = <P extends object>(params: P, options: FsRequestOptions = {}): P & { sandbox?: WireSandboxObject } =>
  options.sandbox ? { ...params, sandbox: options.sandbox } : params;

/** Default block size for chunked transfers: large enough to amortise round trips, well under the frame limit. */
export const DEFAULT_BLOCK_BYTES = 4 * 1024 * 1024;

/** The `fs/*` methods with Buffer data; base64 stays on the wire. */
export class FsClient {
  constructor(
    private readonly request: RequestFn,
    private readonly onChange: (listener: (change: FsChange) => void) => () => void,
  ) {}

  async readFile(path: string, options?: FsRequestOptions): Promise<Buffer> {
    const r = await this.request('fs/readFile', withSandbox({ path }, options));
    return fieldData(r, 'dataBase64');
  }

  async writeFile(path: string, data: Uint8Array | string, options?: FsRequestOptions): Promise<void> {
    await this.request('fs/writeFile', withSandbox({ path, dataBase64: Buffer.from(data).toString('base64') }, options));
  }

  async createDirectory(path: string, args: { recursive?: boolean } = {}, options?: FsRequestOptions): Promise<void> {
    await this.request('fs/createDirectory', withSandbox({ path, ...args }, options));
  }

  getMetadata(path: string, options?: FsRequestOptions): Promise<FileMetadata> {
    return this.request('fs/getMetadata', withSandbox({ path }, options));
  }

  async readDirectory(path: string, options?: FsRequestOptions): Promise<DirectoryEntry[]> {
    return (await this.request('fs/readDirectory', withSandbox({ path }, options))).entries;
  }

  async remove(path: string, args: { recursive?: boolean; force?: boolean } = {}, options?: FsRequestOptions): Promise<void> {
    await this.request('fs/remove', withSandbox({ path, ...args }, options));
  }

  async copy(sourcePath: string, destinationPath: string, args: { recursive: boolean }, options?: FsRequestOptions): Promise<void> {
    await this.request('fs/copy', withSandbox({ sourcePath, destinationPath, recursive: args.recursive }, options));
  }

  async canonicalize(path: string, options?: FsRequestOptions): Promise<string> {
    return (await this.request('fs/canonicalize', withSandbox({ path }, options))).path;
  }

  async rename(sourcePath: string, destinationPath: string, options?: FsRequestOptions): Promise<void> {
    await this.request('fs/rename', withSandbox({ sourcePath, destinationPath }, options));
  }

  async open(path: string, mode: 'read' | 'write', options?: FsRequestOptions): Promise<string> {
    return olderForm(await this.request('fs/open', withSandbox({ path, mode }, options))).handle;
  }

  /**
   * `open`, and the file's permission bits (Cordon servers; NaN from one that does not say). With
   * `permissions`, a file opened for writing gets exactly those bits.
   */
  async openWithMode(
    path: string,
    mode: 'read' | 'write',
    args: { permissions?: number | null } = {},
    options?: FsRequestOptions,
  ): Promise<{ handle: string; permissions: number }> {
    const params = {
      path,
      mode,
      ...(args.permissions !== undefined && args.permissions !== null ? { permissions: args.permissions } : {}),
    };
    const r = olderForm(await this.request('fs/open', withSandbox(params, options)));
    return { handle: r.handle, permissions: typeof r.permissions === 'number' ? r.permissions : Number.NaN };
  }

  async readBlock(handle: string, offset: number, length: number): Promise<{ data: Buffer; eof: boolean }> {
    const r = await this.request('fs/readBlock', { handle, offset, length });
    return { data: fieldData(r, 'dataBase64'), eof: r.eof === true };
  }

  async writeBlock(handle: string, offset: number, data: Uint8Array): Promise<void> {
    await this.request('fs/writeBlock', { handle, offset, dataBase64: Buffer.from(data).toString('base64') });
  }

  async close(handle: string): Promise<void> {
    await this.request('fs/close', { handle });
  }

  /** Reads a file of any size block by block (fs/open + fs/readBlock), one request in flight ahead. */
  async *readFileChunks(path: string, options: FsRequestOptions & { blockBytes?: number } = {}): AsyncGenerator<Buffer> {
    const block = options.blockBytes ?? DEFAULT_BLOCK_BYTES;
    const handle = await this.open(path, 'read', options);
    try {
      let offset = 0;
      let next = this.readBlock(handle, offset, block);
      for (;;) {
        const { data, eof } = await next;
        offset += data.length;
        if (!eof && data.length > 0) next = this.readBlock(handle, offset, block);
        if (data.length > 0) yield data;
        if (eof || data.length === 0) return;
      }
    } finally {
      await this.close(handle).catch(() => undefined);
    }
  }

  /** Writes a file of any size from a Buffer or a stream of chunks, block by block. */
  async writeFileChunks(
    path: string,
    source: Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    options: FsRequestOptions & { blockBytes?: number } = {},
  ): Promise<number> {
    const block = options.blockBytes ?? DEFAULT_BLOCK_BYTES;
    const handle = await this.open(path, 'write', options);
    let offset = 0;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = async (all: boolean): Promise<void> => {
      let buf = Buffer.concat(pending);
      while (buf.length >= block || (all && buf.length > 0)) {
        const piece = buf.subarray(0, Math.min(block, buf.length));
        await this.writeBlock(handle, offset, piece);
        offset += piece.length;
        buf = buf.subarray(piece.length);
      }
      pending = buf.length ? [buf] : [];
      pendingBytes = buf.length;
    };
    try {
      const chunks = source instanceof Uint8Array ? [source] : source;
      for await (const chunk of chunks) {
        pending.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        pendingBytes += chunk.byteLength;
        if (pendingBytes >= block) await flush(false);
      }
      await flush(true);
    } finally {
      await this.close(handle);
    }
    return offset;
  }

  /** Watches a path; events end when `unwatch` is called. */
  async watch(
    path: string,
    args: { recursive?: boolean } = {},
    options?: FsRequestOptions,
  ): Promise<{ watchId: string; events: AsyncIterable<FsChange>; unwatch(): Promise<void> }> {
    const queue = new EventQueue<FsChange>();
    const early: FsChange[] = [];
    let watchId: string | undefined;
    const off = this.onChange((c) => {
      if (watchId === undefined) early.push(c);
      else if (c.watchId === watchId) queue.push(c);
    });
    try {
      watchId = (await this.request('fs/watch', withSandbox({ path, ...args }, options))).watchId;
    } catch (err) {
      off();
      throw err;
    }
    for (const c of early) if (c.watchId === watchId) queue.push(c);
    const id = watchId;
    return {
      watchId: id,
      events: queue,
      unwatch: async () => {
        off();
        queue.end();
        await this.request('fs/unwatch', { watchId: id });
      },
    };
  }

  async unwatch(watchId: string): Promise<void> {
    await this.request('fs/unwatch', { watchId });
  }

  /** fs/walk; paths come back in the form they were given (a `file://` URI gets URIs). */
  walk(path: string, options: WalkOptions, requestOptions?: FsRequestOptions): Promise<WalkResult> {
    return this.request('fs/walk', withSandbox({ path, options }, requestOptions));
  }

  /** fs/watchMissing: whether the server watches; it then sends `fs/missingChanged {watchId}` once. */
  async watchMissing(watchId: number, missing: string[], present: string | null = null): Promise<boolean> {
    return (await this.request('fs/watchMissing', { watchId, missing, present })).watching;
  }

  /** fs/open with a client-chosen `handleId` (0.142+ form). */
  async openFile(handleId: string, path: string, mode: OpenFileMode = 'read', options?: FsRequestOptions): Promise<void> {
    await this.request('fs/open', { handleId, path, mode, sandbox: options?.sandbox ?? null });
  }

  async readFileBlock(handleId: string, offset: number, len: number): Promise<{ data: Buffer; eof: boolean }> {
    const r = await this.request('fs/readBlock', { handleId, offset, len });
    return { data: fieldData(r, 'chunk'), eof: r.eof === true };
  }

  async writeFileBlock(handleId: string, offset: number, data: Uint8Array): Promise<void> {
    await this.request('fs/writeBlock', { handleId, offset, chunk: Buffer.from(data).toString('base64') });
  }

  async closeFile(handleId: string): Promise<void> {
    await this.request('fs/close', { handleId });
  }
}
