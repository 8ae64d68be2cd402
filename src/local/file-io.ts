import { close, closeSync, constants, fstatSync, openSync, read, readSync, type Stats, statSync, write, writeSync } from 'node:fs';

/** Bytes read per step: a multiple of 3 (each chunk's base64 then concatenates), read into one reused buffer. */
const CHUNK_BYTES = 3 * 256 * 1024;
/**
 * Regular files up to this size are read whole, synchronously: a few syscalls against four thread-pool
 * round trips (against fs.promises.readFile, server CPU for a fresh server's first 220 reads of 4 KB 214 -> 117 ms).
 */
const SMALL_FILE_BYTES = 64 * 1024;

/**
 * A file to read: `whole` for a small regular file (already read), `chunks` for a larger one (read
 * while consumed), undefined for anything else (a directory, a device, a FIFO, or a file that
 * reports size 0 such as those of /proc), which the caller reads the ordinary way. Errors about the
 * file itself are thrown here, before the caller has sent anything.
 *
 * The first open is non-blocking, so a FIFO put in place of a file cannot stall the server; like
 * fs.readFile, at most the size the file had when opened is read.
 */
export function openForReading(path: string): { whole: Buffer } | { chunks: FileChunks } | undefined {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  let info: Stats;
  try {
    info = fstatSync(fd);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return readOpened(fd, info);
}

/**
 * openForReading for a descriptor already open for reading (and its fstat); takes it over: closed
 * here unless chunks are returned, which close it at their end.
 */
export function readOpened(fd: number, info: Stats): { whole: Buffer } | { chunks: FileChunks } | undefined {
  const size = info.size;
  if (!info.isFile() || size === 0 || size > SMALL_FILE_BYTES) {
    if (info.isFile() && size > SMALL_FILE_BYTES) return { chunks: new FileChunks(fd, size) };
    closeSync(fd);
    return undefined;
  }
  try {
    return { whole: readWhole(fd, size) };
  } finally {
    closeSync(fd);
  }
}

const readAt = (fd: number, buffer: Buffer, offset: number, length: number, position: number): Promise<number> =>
  new Promise((resolve, reject) => read(fd, buffer, offset, length, position, (err, n) => (err ? reject(err) : resolve(n))));

function readWhole(fd: number, size: number): Buffer {
  const buffer = Buffer.allocUnsafe(size);
  let filled = 0;
  while (filled < size) {
    const n = readSync(fd, buffer, filled, size - filled, filled);
    if (n === 0) break; // truncated meanwhile: what was there is all there is
    filled += n;
  }
  return filled === size ? buffer : buffer.subarray(0, filled);
}

/**
 * A large file read in CHUNK_BYTES chunks into one reused buffer: each chunk is valid only until the
 * next is requested. The file is closed at the end, on an error, or by `return()`, even when
 * iteration never started (a response dropped before it was sent).
 */
export class FileChunks implements AsyncIterable<Buffer>, AsyncIterator<Buffer> {
  private buffer: Buffer | undefined;
  private position = 0;
  private closed = false;

  constructor(
    private readonly fd: number,
    private readonly size: number,
  ) {}

  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    return this;
  }

  async next(): Promise<IteratorResult<Buffer>> {
    if (this.closed || this.position >= this.size) return this.return();
    this.buffer ??= Buffer.allocUnsafe(Math.min(CHUNK_BYTES, this.size));
    let filled = 0;
    try {
      while (filled < this.buffer.length && this.position + filled < this.size) {
        const want = Math.min(this.buffer.length - filled, this.size - this.position - filled);
        const bytesRead = await readAt(this.fd, this.buffer, filled, want, this.position + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
    } catch (err) {
      await this.return();
      throw err;
    }
    // A short chunk (the file shrank) is the last one.
    this.position = filled < this.buffer.length ? this.size : this.position + filled;
    if (filled === 0) return this.return();
    return { done: false, value: this.buffer.subarray(0, filled) };
  }

  async return(): Promise<IteratorResult<Buffer>> {
    if (!this.closed) {
      this.closed = true;
      await new Promise<void>((resolve) => close(this.fd, () => resolve()));
    }
    return { done: true, value: undefined };
  }
}

/**
 * Payloads up to this size are written synchronously when the target is a regular file (or new):
 * against fs.promises.writeFile, server CPU for a fresh server's first 220 writes of 4 KB 257 -> 167 ms.
 */
export const SMALL_WRITE_BYTES = 64 * 1024;

/**
 * Writes `data` to `path` (created 0666 & ~umask, or truncated) with synchronous syscalls, like
 * fs.writeFile without its three thread-pool round trips. Returns false, having written nothing,
 * when the path is not a regular file (a FIFO, a device): the caller then writes the ordinary way.
 * The open is non-blocking so a FIFO cannot stall the server; O_TRUNC does not apply to one.
 */
export function writeSmallFile(path: string, data: Uint8Array): boolean {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NONBLOCK, 0o666);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENXIO') return false; // a FIFO nobody reads yet
    throw err;
  }
  try {
    if (!fstatSync(fd).isFile()) return false;
    for (let done = 0; done < data.byteLength; ) done += writeSync(fd, data, done, data.byteLength - done);
    return true;
  } finally {
    closeSync(fd);
  }
  return true;
}

export interface UnsizedReadLimits {
  /** Bytes read at most from a file whose size is unknown (a device, a FIFO, a /proc file). */
  maxBytes: number;
  /** How long such a read may wait for its end of data. */
  timeoutMs: number;
}

export class UnsizedReadError extends Error {
  constructor(
    message: string,
    readonly reason: 'tooLong' | 'timedOut',
  ) {
    super(message);
  }
}

const readAsync = (fd: number, buffer: Buffer, offset: number, length: number): Promise<number> =>
  new Promise((resolve, reject) => read(fd, buffer, offset, length, null, (err, n) => (err ? reject(err) : resolve(n))));

/**
 * Reads a whole file of unknown size (what fs.readFile does for a device, a FIFO or a /proc file),
 * bounded in bytes and time. The open and every read are non-blocking: a FIFO waiting for a writer,
 * or whose writer holds it open without writing, is polled (backing off to 100 ms) instead of
 * parking a thread-pool thread, so other sessions' file calls and shutdown never wait on it.
 */
export async function readUnsized(path: string, limits: UnsizedReadLimits): Promise<Buffer> {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const info = fstatSync(fd);
    if (info.isDirectory())
      throw Object.assign(new Error(`EISDIR: illegal operation on a directory, read`), { code: 'EISDIR', errno: -21, syscall: 'read' });
    // A FIFO opened without blocking reads as ended until a writer comes: wait for one, as a
    // blocking read would, until the first data (after which end of data is the end).
    const waitForWriter = info.isFIFO();
    const parts: Buffer[] = [];
    let total = 0;
    let waitMs = 1;
    const deadline = Date.now() + limits.timeoutMs;
    for (;;) {
      const buffer = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, limits.maxBytes + 1 - total));
      let n: number;
      try {
        n = await readAsync(fd, buffer, 0, buffer.length);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
        n = -1;
      }
      if (n === 0 && !(waitForWriter && total === 0)) return Buffer.concat(parts, total);
      if (n <= 0) {
        if (Date.now() >= deadline) throw new UnsizedReadError(`no end of data within ${limits.timeoutMs} ms`, 'timedOut');
        await new Promise((r) => setTimeout(r, waitMs));
        waitMs = Math.min(waitMs * 2, 100);
        continue;
      }
      waitMs = 1;
      parts.push(buffer.subarray(0, n));
      total += n;
      if (total > limits.maxBytes) throw new UnsizedReadError(`more than ${limits.maxBytes} bytes`, 'tooLong');
      if (Date.now() >= deadline) throw new UnsizedReadError(`no end of data within ${limits.timeoutMs} ms`, 'timedOut');
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes `data` to something that is not a regular file (a FIFO, a device) without ever blocking a
 * thread: the open waits for a FIFO's reader and each write for room, by polling (backing off to
 * 100 ms), at most `timeoutMs` in all. False, having done nothing, when `path` is a regular file, a
 * directory or missing (the caller writes it the ordinary way).
 */
export async function writeUnsized(path: string, data: Uint8Array, timeoutMs: number): Promise<boolean> {
  let info;
  try {
    info = statSync(path);
  } catch {
    return false;
  }
  if (info.isFile() || info.isDirectory()) return false;
  const deadline = Date.now() + timeoutMs;
  let waitMs = 1;
  const pause = async (): Promise<void> => {
    if (Date.now() >= deadline) throw new UnsizedReadError(`no reader took the data within ${timeoutMs} ms`, 'timedOut');
    await new Promise((r) => setTimeout(r, waitMs));
    waitMs = Math.min(waitMs * 2, 100);
  };
  let fd: number | undefined;
  while (fd === undefined) {
    try {
      fd = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENXIO') throw err; // a FIFO without a reader yet
      await pause();
    }
  }
  try {
    for (let done = 0; done < data.byteLength; ) {
      try {
        done += await new Promise<number>((resolve, reject) =>
          write(fd as number, data, done, data.byteLength - done, null, (err, n) => (err ? reject(err) : resolve(n))),
        );
        waitMs = 1;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
        await pause();
      }
    }
  } finally {
    closeSync(fd);
  }
  return true;
}
