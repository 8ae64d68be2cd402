import { copyFileSync, lstatSync, type Stats, statSync } from 'node:fs';
import { copyFile, lstat, mkdir, readdir, readlink, realpath, stat, symlink, unlink } from 'node:fs/promises';
import path from 'node:path';
import { invalidRequest } from '../protocol/errors.js';
import { fsMessages } from '../protocol/messages.js';

const errno = (code: string, message: string): NodeJS.ErrnoException => Object.assign(new Error(message), { code });

/**
 * A regular file up to this size is copied with synchronous calls: lstat, stat and copy_file_range
 * of a small file take microseconds, three thread-pool hand-offs took most of the request.
 */
const SYNC_COPY_BYTES = 64 * 1024;

/** Refuses a destination that is the source itself or a directory; a missing one is fine. */
function checkDestination(dst: string, d: Stats | undefined, srcStat: { dev: number; ino: number }): void {
  if (!d) return;
  if (d.dev === srcStat.dev && d.ino === srcStat.ino) throw invalidRequest(fsMessages.copyOntoItself);
  if (d.isDirectory()) throw errno('EISDIR', `EISDIR: ${dst}`);
}

/** The real path a destination would have, resolving the parts of it that exist. */
async function realDestination(p: string): Promise<string> {
  try {
    return await realpath(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const parent = path.dirname(p);
    if (parent === p) return p;
    return path.join(await realDestination(parent), path.basename(p));
  }
}

/** Replaces `dst` (unless it is a directory) with a symlink carrying the same target text as `src`. */
async function copySymlink(src: string, dst: string): Promise<void> {
  const target = await readlink(src);
  try {
    const existing = await lstat(dst);
    if (existing.isDirectory()) throw errno('EISDIR', `EISDIR: ${dst}`);
    await unlink(dst);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await symlink(target, dst);
}

async function copyRegularFile(src: string, dst: string, srcStat: { dev: number; ino: number }): Promise<void> {
  checkDestination(dst, await stat(dst).catch(missingAsUndefined), srcStat);
  await copyFile(src, dst);
}

function copySmallFile(src: string, dst: string, srcStat: Stats): void | Promise<void> {
  let d: Stats | undefined;
  try {
    d = statSync(dst);
  } catch (err) {
    d = missingAsUndefined(err);
  }
  checkDestination(dst, d, srcStat);
  // Opening a FIFO or a device for writing can block: only the thread pool may wait on that.
  if (d && !d.isFile()) return copyRegularFile(src, dst, srcStat);
  copyFileSync(src, dst);
}

function missingAsUndefined(err: unknown): undefined {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  return undefined;
}

async function copyTree(src: string, dst: string): Promise<void> {
  try {
    await mkdir(dst);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !(await stat(dst)).isDirectory()) throw err;
  }
  for (const entry of await readdir(src, { withFileTypes: true })) {
    const from = path.join(src, entry.name);
    const to = path.join(dst, entry.name);
    if (entry.isSymbolicLink()) await copySymlink(from, to);
    else if (entry.isDirectory()) await copyTree(from, to);
    else if (entry.isFile()) await copyRegularFile(from, to, await stat(from));
    else throw invalidRequest(fsMessages.copyUnsupportedType);
  }
}

/**
 * fs/copy (docs/protocol.md §10): files overwrite, trees merge, symlinks are copied as symlinks.
 * Unlike the reference, copying a file onto itself is refused instead of truncating it.
 */
export function copyPath(src: string, dst: string, recursive: boolean): void | Promise<void> {
  const info = lstatSync(src);
  if (info.isFile() && info.size <= SYNC_COPY_BYTES) return copySmallFile(src, dst, info);
  return copyOther(src, dst, recursive, info);
}

async function copyOther(src: string, dst: string, recursive: boolean, info: Stats): Promise<void> {
  if (info.isSymbolicLink()) {
    if (path.resolve(dst) === path.resolve(src)) throw invalidRequest(fsMessages.copyOntoItself);
    return copySymlink(src, dst);
  }
  if (info.isDirectory()) {
    if (!recursive) throw invalidRequest(fsMessages.copyNeedsRecursive);
    const from = await realpath(src);
    const to = await realDestination(dst);
    if (to === from || to.startsWith(from.endsWith('/') ? from : `${from}/`)) throw invalidRequest(fsMessages.copyIntoItself);
    return copyTree(src, dst);
  }
  if (info.isFile()) return copyRegularFile(src, dst, info);
  throw invalidRequest(fsMessages.copyUnsupportedType);
}
