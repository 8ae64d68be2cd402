import { closeSync, readdirSync, readFileSync } from 'node:fs';

const O_CLOEXEC = 0o2000000;

/**
 * Closes the descriptors this process inherited without close-on-exec (fd 3 and up), so they cannot
 * leak into children, sandboxed or not. Node and libuv open everything close-on-exec, so a
 * descriptor without the flag came from whoever started us. Call it once, at startup, before
 * anything else opens files. Returns the descriptors closed. Linux only; elsewhere it does nothing.
 */
export function closeInheritedDescriptors(keep: number[] = []): number[] {
  const closed: number[] = [];
  const ipc = Number(process.env.NODE_CHANNEL_FD);
  let entries: string[];
  try {
    entries = readdirSync('/proc/self/fd');
  } catch {
    return closed;
  }
  for (const entry of entries) {
    const fd = Number(entry);
    if (!Number.isInteger(fd) || fd < 3 || fd === ipc || keep.includes(fd)) continue;
    let flags: number;
    try {
      const m = /^flags:\s+([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
      if (!m) continue;
      flags = parseInt(m[1] as string, 8);
    } catch {
      continue; // the directory listing's own descriptor, already closed
    }
    if (flags & O_CLOEXEC) continue;
    try {
      closeSync(fd);
      closed.push(fd);
    } catch {
      // not ours to close after all
    }
  }
  return closed;
}
