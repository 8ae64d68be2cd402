import { open, type FileHandle } from 'node:fs/promises';

/** Bytes read per step: a multiple of 3 (each chunk's base64 then concatenates), read into one reused buffer. */
const CHUNK_BYTES = 3 * 256 * 1024;

/**
 * Opens a regular file for reading in chunks, or returns undefined for anything else (a directory,
 * a device, a FIFO, or a file that reports size 0 such as those of /proc), which the caller reads
 * whole instead. Open errors are thrown here, before the caller has sent anything.
 *
 * Like fs.readFile, it reads up to the size the file had when opened. Every chunk but the last is
 * CHUNK_BYTES long, and is valid only until the next one is requested.
 */
export async function openFileChunks(path: string): Promise<AsyncIterable<Buffer> | undefined> {
  const handle = await open(path, 'r');
  try {
    const info = await handle.stat();
    if (info.isFile() && info.size > 0) return readChunks(handle, info.size);
  } catch (err) {
    await handle.close();
    throw err;
  }
  await handle.close();
  return undefined;
}

async function* readChunks(handle: FileHandle, size: number): AsyncGenerator<Buffer> {
  const buffer = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, size));
  try {
    let position = 0;
    while (position < size) {
      let filled = 0;
      while (filled < buffer.length && position + filled < size) {
        const want = Math.min(buffer.length - filled, size - position - filled);
        const { bytesRead } = await handle.read(buffer, filled, want, position + filled);
        if (bytesRead === 0) break; // truncated meanwhile: what was there is all there is
        filled += bytesRead;
      }
      if (filled === 0) return;
      position += filled;
      yield buffer.subarray(0, filled);
      if (filled < buffer.length && position < size) return;
    }
  } finally {
    await handle.close();
  }
}
