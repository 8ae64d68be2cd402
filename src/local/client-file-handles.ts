import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { internalError, invalidRequest, notFound } from '../protocol/errors.js';
import type { OpenFileMode } from '../protocol/index.js';
import { methodMessages } from '../protocol/messages.js';
import { fsErrorFromOs } from '../protocol/os-error.js';

/** Largest block fs/readBlock and fs/writeBlock take in the client-named form (the reference's bound). */
export const FILE_BLOCK_MAX_BYTES = 1024 * 1024;
/** Client-named handles a session may hold (the reference allows 128 per connection). */
export const MAX_CLIENT_FILE_HANDLES = 128;

interface OpenFile {
  handle: FileHandle;
  mode: OpenFileMode;
}

/** Checks what the reference checks before it looks at the handle. */
export function checkBlockLength(kind: 'read' | 'write', length: number): void {
  if (length < 1 || length > FILE_BLOCK_MAX_BYTES) {
    throw invalidRequest(
      kind === 'read' ? methodMessages.readBlockLength(FILE_BLOCK_MAX_BYTES) : methodMessages.writeBlockLength(FILE_BLOCK_MAX_BYTES),
    );
  }
}

/**
 * File handles named by the client (fs/open with `handleId`, 0.142+ clients). `read` opens an
 * existing regular file; `replace` creates or truncates at once. Opens are non-blocking so a FIFO
 * cannot hold a thread. Used directly for unsandboxed calls and inside sandboxed fs workers.
 */
export class ClientFileHandles {
  private readonly files = new Map<string, OpenFile | 'opening'>();

  constructor(private readonly maxHandles: number = MAX_CLIENT_FILE_HANDLES) {}

  get size(): number {
    return this.files.size;
  }

  has(id: string): boolean {
    return this.files.has(id);
  }

  async open(id: string, path: string, mode: OpenFileMode): Promise<void> {
    if (this.files.has(id)) throw invalidRequest(methodMessages.handleExists(id));
    if (this.files.size >= this.maxHandles) throw invalidRequest(methodMessages.tooManyFileHandles(this.maxHandles));
    this.files.set(id, 'opening');
    try {
      const flags = mode === 'read' ? constants.O_RDONLY : constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC;
      const handle = await open(path, flags | constants.O_NONBLOCK, 0o666);
      if (mode === 'read' && !(await handle.stat()).isFile()) {
        await handle.close();
        throw invalidRequest(methodMessages.notAFile(path));
      }
      if (this.files.get(id) !== 'opening') {
        await handle.close(); // closed (session ended) while it opened
        throw notFound(methodMessages.unknownFileHandle(id));
      }
      this.files.set(id, { handle, mode });
    } catch (err) {
      if (this.files.get(id) === 'opening') this.files.delete(id);
      throw fsErrorFromOs(err);
    }
  }

  private get(id: string, mode: OpenFileMode): FileHandle {
    const f = this.files.get(id);
    if (f === undefined || f === 'opening') throw notFound(methodMessages.unknownFileHandle(id));
    if (f.mode !== mode) throw internalError(methodMessages.badFileDescriptor);
    return f.handle;
  }

  /** `eof` is true once the block reaches the end of the file (so a client needs no extra empty read). */
  async readBlock(id: string, offset: number, length: number): Promise<{ data: Buffer; eof: boolean }> {
    checkBlockLength('read', length);
    const handle = this.get(id, 'read');
    try {
      const buffer = Buffer.allocUnsafe(length);
      let filled = 0;
      while (filled < length) {
        const { bytesRead } = await handle.read(buffer, filled, length - filled, offset + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      const eof = filled < length || offset + filled >= (await handle.stat()).size;
      return { data: buffer.subarray(0, filled), eof };
    } catch (err) {
      throw fsErrorFromOs(err);
    }
  }

  async writeBlock(id: string, offset: number, data: Uint8Array): Promise<void> {
    checkBlockLength('write', data.byteLength);
    const handle = this.get(id, 'replace');
    try {
      let written = 0;
      while (written < data.byteLength) {
        const { bytesWritten } = await handle.write(data, written, data.byteLength - written, offset + written);
        written += bytesWritten;
      }
    } catch (err) {
      throw fsErrorFromOs(err);
    }
  }

  async close(id: string): Promise<void> {
    const f = this.files.get(id);
    if (f === undefined || f === 'opening') return;
    this.files.delete(id);
    await f.handle.close().catch(() => undefined);
  }

  async closeAll(): Promise<void> {
    const all = [...this.files.values()];
    this.files.clear();
    await Promise.allSettled(all.map((f) => (f === 'opening' ? undefined : f.handle.close())));
  }
}
