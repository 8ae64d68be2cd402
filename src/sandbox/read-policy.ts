import type { FileSystemPolicy } from '../environment/permissions.js';

/**
 * Whether a file-system policy lets every path be read: `:root` (or `/`) readable and no entry that
 * could take read access away — no deny entry of any kind and no glob. Reads under such a policy see
 * what an unsandboxed read sees, but for what the sandbox itself hides (see local/direct-read.ts).
 * Conservative on purpose: a deny entry anywhere, even one that would not apply, answers false.
 */
export function permitsEveryRead(fs: FileSystemPolicy): boolean {
  if (fs.kind !== 'restricted') return true;
  let root = false;
  for (const e of fs.entries) {
    if (e.access === 'deny' || e.path.type === 'glob_pattern') return false;
    if ((e.path.type === 'special' && e.path.kind === 'root') || (e.path.type === 'path' && e.path.path === '/')) root = true;
    else if (e.path.type === 'special' && e.path.kind === 'unknown') return false;
  }
  return root;
}
