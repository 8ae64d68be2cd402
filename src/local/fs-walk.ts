import { lstat, opendir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { WalkEntry, WalkOptions, WalkResult } from '../environment/types.js';
import { invalidRequest } from '../protocol/errors.js';
import { methodMessages } from '../protocol/messages.js';
import { fsErrorFromOs, osErrorMessage } from '../protocol/os-error.js';

/** The most entries one walk returns whatever the client asks: a walk of `/` must not exhaust memory. */
export const WALK_ENTRY_CAP = 200_000;

interface Pending {
  dir: string;
  depth: number;
}

/** What a directory entry is for the walk: listed as a file or directory, or left out (undefined). */
async function kindOf(
  full: string,
  isDirectory: boolean,
  isFile: boolean,
  isLink: boolean,
  follow: boolean,
): Promise<{ kind: WalkEntry['kind']; key?: string } | undefined> {
  if (isDirectory) return { kind: 'directory' };
  if (isFile) return { kind: 'file' };
  if (!isLink || !follow) return undefined; // symlinked files, broken links, sockets, devices
  try {
    const target = await stat(full);
    return target.isDirectory() ? { kind: 'directory', key: `${target.dev}:${target.ino}` } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * fs/walk: a breadth-first listing, names sorted within each directory. `maxDepth` 0 lists the
 * root's own entries; `maxDirectories` counts directories read (the root included); hitting it or
 * `maxEntries` sets `truncated`. A root that is not a directory (or a link to one, unless links
 * are followed) lists nothing. A directory followed through a link is read once, however it is
 * reached. Unreadable directories below the root go to `errors`; the walk continues.
 */
export async function walkTree(root: string, options: WalkOptions): Promise<WalkResult> {
  if (options.maxDirectories < 1 || options.maxEntries < 1) throw invalidRequest(methodMessages.walkLimits);
  const result: WalkResult = { entries: [], errors: [], truncated: false };
  let rootInfo;
  try {
    rootInfo = await lstat(root);
    if (rootInfo.isSymbolicLink() && options.followDirectorySymlinks) rootInfo = await stat(root);
  } catch (err) {
    throw fsErrorFromOs(err);
  }
  if (!rootInfo.isDirectory()) return result;
  const seen = new Set<string>([`${rootInfo.dev}:${rootInfo.ino}`]);
  const queue: Pending[] = [{ dir: root, depth: 0 }];
  let directoriesRead = 0;
  for (let next = queue.shift(); next; next = queue.shift()) {
    if (directoriesRead >= options.maxDirectories) {
      result.truncated = true;
      break;
    }
    directoriesRead++;
    let names: { name: string; isDirectory: boolean; isFile: boolean; isLink: boolean }[];
    try {
      names = [];
      for await (const e of await opendir(next.dir))
        names.push({ name: e.name, isDirectory: e.isDirectory(), isFile: e.isFile(), isLink: e.isSymbolicLink() });
    } catch (err) {
      if (next.dir === root) throw fsErrorFromOs(err);
      result.errors.push({ path: next.dir, message: osErrorMessage(err as NodeJS.ErrnoException) });
      continue;
    }
    names.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of names) {
      const full = path.join(next.dir, e.name);
      const kind = await kindOf(full, e.isDirectory, e.isFile, e.isLink, options.followDirectorySymlinks);
      if (!kind) continue;
      if (result.entries.length >= Math.min(options.maxEntries, WALK_ENTRY_CAP)) {
        result.truncated = true;
        return result;
      }
      result.entries.push({ path: full, kind: kind.kind });
      if (kind.kind !== 'directory' || next.depth >= options.maxDepth) continue;
      if (options.pruneHiddenDirectories && e.name.startsWith('.')) continue;
      let key = kind.key;
      if (!key) {
        try {
          const info = await lstat(full);
          key = `${info.dev}:${info.ino}`;
        } catch {
          continue; // gone meanwhile
        }
      }
      if (seen.has(key)) continue;
      seen.add(key);
      queue.push({ dir: full, depth: next.depth + 1 });
    }
  }
  return result;
}
