import { parseAbsolutePath } from '../protocol/paths.js';
import type { WireEntry, WirePermissionProfile, WireSandbox, WireSandboxPolicy } from '../protocol/sandbox.js';

import type { Access, FsEntry, FsPath, NetworkPolicy, PermissionProfile, SandboxRequest, SpecialKind } from './permissions.js';

/** Normalises the wire shapes of sandboxes (docs/protocol.md §8) into Cordon's permission model. */

const special = (kind: SpecialKind, subpath?: string): FsPath => ({ type: 'special', kind, ...(subpath ? { subpath } : {}) });

function entryFromWire(e: WireEntry): FsEntry {
  const access: Access = e.access === 'none' ? 'deny' : e.access;
  const p = e.path;
  if (p.type === 'path') return { path: { type: 'path', path: parseAbsolutePath(p.path) }, access };
  if (p.type === 'glob_pattern') return { path: { type: 'glob_pattern', pattern: p.pattern }, access };
  const v = p.value;
  if (v.kind === 'current_working_directory' || v.kind === 'project_roots')
    return { path: special('project_roots', v.subpath ?? undefined), access };
  if (v.kind === 'unknown') return { path: special('unknown', v.subpath ?? undefined), access };
  return { path: special(v.kind), access };
}

export function profileFromWire(w: WirePermissionProfile): PermissionProfile {
  if ('type' in w) {
    if (w.type === 'disabled') return { enforcement: 'disabled', fileSystem: { kind: 'unrestricted' }, network: 'enabled' };
    if (w.type === 'external') return { enforcement: 'external', fileSystem: { kind: 'external-sandbox' }, network: w.network };
    const fs = w.file_system;
    return {
      enforcement: 'managed',
      network: w.network,
      fileSystem:
        fs.type === 'unrestricted'
          ? { kind: 'unrestricted' }
          : {
              kind: 'restricted',
              entries: fs.entries.map(entryFromWire),
              ...(fs.glob_scan_max_depth ? { globScanMaxDepth: fs.glob_scan_max_depth } : {}),
            },
    };
  }
  const network: NetworkPolicy = w.network?.enabled === true ? 'enabled' : 'restricted';
  const fs = w.file_system;
  let entries: FsEntry[] = [];
  let depth: number | undefined;
  if (fs && 'entries' in fs) {
    entries = fs.entries.map(entryFromWire);
    depth = fs.glob_scan_max_depth ?? undefined;
  } else if (fs) {
    entries = [
      ...fs.read.map((p): FsEntry => ({ path: { type: 'path', path: parseAbsolutePath(p) }, access: 'read' })),
      ...fs.write.map((p): FsEntry => ({ path: { type: 'path', path: parseAbsolutePath(p) }, access: 'write' })),
    ];
  }
  return { enforcement: 'managed', network, fileSystem: { kind: 'restricted', entries, ...(depth ? { globScanMaxDepth: depth } : {}) } };
}

/**
 * The workspace-write preset of docs/protocol.md §8 (project roots symbolic, resolved against the
 * cwd later).
 */
export function workspaceWriteEntries(writableRoots: string[], excludeTmpdirEnvVar: boolean, excludeSlashTmp: boolean): FsEntry[] {
  const entries: FsEntry[] = [
    { path: special('root'), access: 'read' },
    { path: special('project_roots'), access: 'write' },
  ];
  if (!excludeSlashTmp) entries.push({ path: special('slash_tmp'), access: 'write' });
  if (!excludeTmpdirEnvVar) entries.push({ path: special('tmpdir'), access: 'write' });
  for (const r of writableRoots) entries.push({ path: { type: 'path', path: r }, access: 'write' });
  for (const name of ['.git', '.agents', '.codex', '.aws']) entries.push({ path: special('project_roots', name), access: 'read' });
  return entries;
}

export function profileFromLegacyPolicy(p: WireSandboxPolicy): PermissionProfile {
  switch (p.type) {
    case 'danger-full-access':
      return { enforcement: 'disabled', fileSystem: { kind: 'unrestricted' }, network: 'enabled' };
    case 'external-sandbox':
      return { enforcement: 'external', fileSystem: { kind: 'external-sandbox' }, network: p.network_access ?? 'restricted' };
    case 'read-only':
      return {
        enforcement: 'managed',
        fileSystem: { kind: 'restricted', entries: [{ path: special('root'), access: 'read' }] },
        network: p.network_access ? 'enabled' : 'restricted',
      };
    case 'workspace-write':
      return {
        enforcement: 'managed',
        fileSystem: {
          kind: 'restricted',
          entries: workspaceWriteEntries(
            (p.writable_roots ?? []).map(parseAbsolutePath),
            p.exclude_tmpdir_env_var ?? false,
            p.exclude_slash_tmp ?? false,
          ),
        },
        network: p.network_access ? 'enabled' : 'restricted',
      };
  }
}

/**
 * The request a wire sandbox stands for. `cwd` and `workspaceRoots` come from the object itself or,
 * failing that, from its `policyContext` (fs calls of 0.171 clients); without roots, `project_roots`
 * is the cwd, as for 0.142–0.146 clients. `userHomeDir` is accepted but not needed here: no
 * entry kind Cordon resolves refers to the home directory.
 */
export function sandboxFromWire(w: WireSandbox): SandboxRequest {
  const rawCwd = w.cwd ?? w.policyContext?.cwd ?? null;
  const cwd = rawCwd === null ? null : parseAbsolutePath(rawCwd);
  const rawRoots = w.workspaceRoots ?? w.policyContext?.workspaceRoots ?? null;
  if (w.userHomeDir !== null) parseAbsolutePath(w.userHomeDir);
  const profile = w.shape === 'permissions' ? profileFromWire(w.permissions) : profileFromLegacyPolicy(w.sandboxPolicy);
  return { profile, cwd, ...(rawRoots?.length ? { workspaceRoots: rawRoots.map(parseAbsolutePath) } : {}) };
}

function entryToWire(e: FsEntry): WireEntry {
  const p = e.path;
  if (p.type === 'path') return { path: { type: 'path', path: p.path }, access: e.access };
  if (p.type === 'glob_pattern') return { path: { type: 'glob_pattern', pattern: p.pattern }, access: e.access };
  if (p.kind === 'project_roots')
    return { path: { type: 'special', value: { kind: 'project_roots', ...(p.subpath ? { subpath: p.subpath } : {}) } }, access: e.access };
  if (p.kind === 'unknown')
    return {
      path: { type: 'special', value: { kind: 'unknown', path: '', ...(p.subpath ? { subpath: p.subpath } : {}) } },
      access: e.access,
    };
  return { path: { type: 'special', value: { kind: p.kind } }, access: e.access };
}

/** The 0.124+ wire shape of a sandbox request, as a client sends it. */
export function sandboxToWire(s: SandboxRequest): Record<string, unknown> {
  const p = s.profile;
  let permissions: Record<string, unknown>;
  if (p.enforcement === 'disabled') permissions = { type: 'disabled' };
  else if (p.enforcement === 'external') permissions = { type: 'external', network: p.network };
  else {
    const fs = p.fileSystem;
    permissions = {
      type: 'managed',
      network: p.network,
      file_system:
        fs.kind === 'restricted'
          ? {
              type: 'restricted',
              entries: fs.entries.map(entryToWire),
              ...(fs.globScanMaxDepth ? { glob_scan_max_depth: fs.globScanMaxDepth } : {}),
            }
          : { type: 'unrestricted' },
    };
  }
  return {
    permissions,
    ...(s.cwd ? { cwd: s.cwd } : {}),
    ...(s.workspaceRoots?.length ? { workspaceRoots: s.workspaceRoots } : {}),
    windowsSandboxLevel: 'disabled',
  };
}
