/** The permission model of docs/sandbox.md, as plain types. */

export type Access = 'read' | 'write' | 'deny';
export type SpecialKind = 'root' | 'minimal' | 'tmpdir' | 'slash_tmp' | 'project_roots' | 'unknown';

export type FsPath =
  | { type: 'path'; path: string }
  | { type: 'glob_pattern'; pattern: string }
  | { type: 'special'; kind: SpecialKind; subpath?: string };

export interface FsEntry {
  path: FsPath;
  access: Access;
}

export type FileSystemPolicy =
  | { kind: 'unrestricted' }
  | { kind: 'external-sandbox' }
  | { kind: 'restricted'; entries: FsEntry[]; globScanMaxDepth?: number };

export type NetworkPolicy = 'restricted' | 'enabled';

export interface PermissionProfile {
  enforcement: 'managed' | 'disabled' | 'external';
  fileSystem: FileSystemPolicy;
  network: NetworkPolicy;
}

/** A client's sandbox for one request: the profile and the cwd its relative parts resolve against. */
export interface SandboxRequest {
  profile: PermissionProfile;
  cwd: string | null;
  /** What `project_roots` stands for (0.147+ `workspaceRoots`, e.g. with `--add-dir`); absent: [cwd]. */
  workspaceRoots?: string[] | null;
}
