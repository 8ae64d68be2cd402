import { close, closeSync, constants, fstatSync, openSync, read, readSync, writeSync, type Stats } from 'node:fs';

/** Bytes read per step: a multiple of 3 (each chunk's base64 then concatenates), read into one reused buffer. */
const CHUNK_BYTES = 3 * 256 * 1024;
/** Regular files up to this size are read whole, synchronously: a few syscalls against four thread-pool round trips. */
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

/** Payloads up to this size are written synchronously when the target is a regular file (or new). */
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
}
