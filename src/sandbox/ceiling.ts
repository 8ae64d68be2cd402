import type { PermissionProfile, SandboxRequest } from '../environment/permissions.js';
import { intersectProfiles } from './intersect.js';

/** The most access any client of a server may get (`cordon serve --permissions`). */
export interface PermissionCeiling {
  profile: PermissionProfile;
  /** The directory the ceiling's relative parts resolve against. */
  cwd: string;
  workspaceRoots: string[];
  /** Its name, for messages (`:workspace`, a config profile...). */
  name: string;
}

const UNRESTRICTED: PermissionProfile = { enforcement: 'disabled', network: 'enabled', fileSystem: { kind: 'unrestricted' } };

/**
 * What a call may actually do: the intersection of what the client asked for (no restriction when it
 * sent no sandbox) and the ceiling. A client can ask for less, never for more.
 */
export function applyCeiling(
  ceiling: PermissionCeiling | undefined,
  requested: SandboxRequest | null | undefined,
  callCwd: string,
): SandboxRequest | null {
  if (!ceiling) return requested ?? null;
  const request = requested ?? { profile: UNRESTRICTED, cwd: null };
  const requestCwd = request.cwd ?? callCwd;
  // The request's project_roots stand for its workspaceRoots (e.g. `--add-dir` dirs); each root still
  // gets at most what the ceiling gives that path, so a root outside the ceiling stays read-only.
  const requestRoots = request.workspaceRoots?.length ? request.workspaceRoots : undefined;
  const profile = intersectProfiles(ceiling.profile, { cwd: ceiling.cwd, workspaceRoots: ceiling.workspaceRoots }, request.profile, {
    cwd: requestCwd,
    workspaceRoots: requestRoots,
  });
  return { profile, cwd: requestCwd, ...(requestRoots ? { workspaceRoots: requestRoots } : {}) };
}
