import type {
  Access,
  FileSystemPolicy,
  FsEntry,
  FsPath,
  NetworkPolicy,
  PermissionProfile,
  SandboxRequest,
  SpecialKind,
} from '../environment/permissions.js';

// The wire shapes of a sandbox are converted in environment/ (server and client both need them).
export {
  profileFromLegacyPolicy,
  profileFromWire,
  sandboxFromWire,
  sandboxToWire,
  workspaceWriteEntries,
} from '../environment/sandbox-wire.js';
export type { Access, FileSystemPolicy, FsEntry, FsPath, NetworkPolicy, PermissionProfile, SandboxRequest, SpecialKind };

/** Whether running under this profile needs no sandbox at all: files unrestricted and network enabled. */
export function profileNeedsNoSandbox(p: PermissionProfile): boolean {
  if (p.enforcement === 'disabled') return true;
  if (p.enforcement === 'external') return p.network === 'enabled';
  return grantsFullFileAccess(p.fileSystem) && p.network === 'enabled';
}

/**
 * Whether a file-system policy lets every path be read and written, so an fs call needs no sandbox:
 * unrestricted, external, or restricted with `:root` writable and nothing narrowing it.
 */
export function grantsFullFileAccess(fs: FileSystemPolicy): boolean {
  if (fs.kind !== 'restricted') return true;
  const rootWrite = fs.entries.some((e) => e.path.type === 'special' && e.path.kind === 'root' && e.access === 'write');
  if (!rootWrite) return false;
  const key = (p: FsPath): string => JSON.stringify(p);
  const written = new Set(fs.entries.filter((e) => e.access === 'write').map((e) => key(e.path)));
  return fs.entries.every((e) => {
    if (e.path.type === 'glob_pattern' || e.access === 'deny') return false;
    if (e.access === 'write' || (e.path.type === 'special' && (e.path.kind === 'minimal' || e.path.kind === 'unknown'))) return true;
    return written.has(key(e.path));
  });
}
