import type { PermissionProfile } from '../environment/permissions.js';
import { workspaceWriteEntries } from './profile.js';

export const BUILTIN_PROFILE_NAMES = [':read-only', ':workspace', ':danger-full-access'] as const;
export type BuiltinProfileName = (typeof BUILTIN_PROFILE_NAMES)[number];

/**
 * The built-in profiles (docs/sandbox.md, "Profiles"): read-only, workspace-write (symbolic project
 * roots), and no sandbox.
 */
export function builtinProfile(name: BuiltinProfileName, options: { network?: 'restricted' | 'enabled' } = {}): PermissionProfile {
  const network = options.network ?? 'restricted';
  switch (name) {
    case ':read-only':
      return {
        enforcement: 'managed',
        network,
        fileSystem: { kind: 'restricted', entries: [{ path: { type: 'special', kind: 'root' }, access: 'read' }] },
      };
    case ':workspace':
      return { enforcement: 'managed', network, fileSystem: { kind: 'restricted', entries: workspaceWriteEntries([], false, false) } };
    case ':danger-full-access':
      return { enforcement: 'disabled', network: 'enabled', fileSystem: { kind: 'unrestricted' } };
  }
}

export const isBuiltinProfileName = (name: string): name is BuiltinProfileName =>
  (BUILTIN_PROFILE_NAMES as readonly string[]).includes(name);
