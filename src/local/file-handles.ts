import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { invalidParams, invalidRequest } from '../protocol/errors.js';
import { fsMessages } from '../protocol/messages.js';

interface OpenFile {
  handle: FileHandle;
  mode: 'read' | 'write';
}

/** The open files of one session, for chunked reads and writes; bounded in number. */
export class FileHandles {
  private readonly files = new Map<string, OpenFile>();
  /** Opens in flight: they hold a slot before their await, so concurrent opens cannot pass the limit. */
  private opening = 0;

  constructor(
    private readonly maxHandles: number,
    private readonly maxBlockBytes: number,
  ) {}

  async open(path: string, mode: 'read' | 'write', permissions?: number | null): Promise<{ handle: string; permissions: number }> {
    if (this.files.size + this.opening >= this.maxHandles) throw invalidRequest(fsMessages.tooManyHandles(this.maxHandles));
    this.opening++;
    let handle: FileHandle;
    try {
      // Non-blocking, so opening a FIFO never parks a thread-pool thread waiting for its other end
      // (for reading it opens at once; for writing without a reader it fails with ENXIO).
      handle = await open(
        path,
        (mode === 'read' ? constants.O_RDONLY : constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC) | constants.O_NONBLOCK,
        0o666,
      );
    } finally {
      this.opening--;
    }
    let bits: number;
    try {
      if (mode === 'write' && permissions !== undefined && permissions !== null) await handle.chmod(permissions & 0o777);
      bits = (await handle.stat()).mode & 0o777;
    } catch (err) {
      await handle.close();
      throw err;
    }
    const id = randomUUID();
    this.files.set(id, { handle, mode });
    return { handle: id, permissions: bits };
  }

  private get(id: string, mode: 'read' | 'write'): FileHandle {
    const f = this.files.get(id);
    if (!f) throw invalidRequest(fsMessages.unknownHandle(id));
    if (f.mode !== mode) throw invalidRequest(fsMessages.handleMode(id, mode === 'read' ? 'reading' : 'writing'));
    return f.handle;
  }

  async readBlock(id: string, offset: number, length: number): Promise<{ data: Buffer; eof: boolean }> {
    if (length > this.maxBlockBytes) throw invalidParams(fsMessages.blockTooLarge(this.maxBlockBytes));
    const handle = this.get(id, 'read');
    const buffer = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const { bytesRead } = await handle.read(buffer, filled, length - filled, offset + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return { data: buffer.subarray(0, filled), eof: filled < length || (length > 0 && offset + filled >= (await handle.stat()).size) };
  }

  async writeBlock(id: string, offset: number, data: Uint8Array): Promise<void> {
    if (data.length > this.maxBlockBytes) throw invalidParams(fsMessages.blockTooLarge(this.maxBlockBytes));
    const handle = this.get(id, 'write');
    let written = 0;
    while (written < data.length) {
      const { bytesWritten } = await handle.write(data, written, data.length - written, offset + written);
      written += bytesWritten;
    }
  }

  async close(id: string): Promise<void> {
    const f = this.files.get(id);
    if (!f) throw invalidRequest(fsMessages.unknownHandle(id));
    this.files.delete(id);
    await f.handle.close();
  }

  async closeAll(): Promise<void> {
    const all = [...this.files.values()];
    this.files.clear();
    await Promise.allSettled(all.map((f) => f.handle.close()));
  }
}
