import type { FsEntry, PermissionProfile, SandboxRequest } from '../environment/permissions.js';
import type { LinuxSandbox, SandboxedCommand } from './linux-sandbox.js';

/**
 * The sandbox an fs helper runs in, a worker or a one-shot alike: the request's profile without
 * network, plus read access to the helper's own program (binaries and libraries, not user data)
 * where the profile restricts reads. The two must be the same sandbox, so both are built here.
 */
export function wrapFsHelper(
  sandbox: LinuxSandbox,
  request: SandboxRequest,
  command: string[],
  options: { programReads: readonly string[]; passDescriptors?: boolean },
): Promise<SandboxedCommand> {
  let profile: PermissionProfile = { ...request.profile, network: 'restricted' };
  if (profile.fileSystem.kind === 'restricted') {
    const reads: FsEntry[] = options.programReads.map((p) => ({ path: { type: 'path', path: p }, access: 'read' }));
    profile = { ...profile, fileSystem: { ...profile.fileSystem, entries: [...profile.fileSystem.entries, ...reads] } };
  }
  return sandbox.wrap({
    profile,
    policyCwd: request.cwd ?? '/',
    commandCwd: request.cwd ?? '/',
    command,
    tty: false,
    workspaceRoots: request.workspaceRoots ?? undefined,
    passDescriptors: options.passDescriptors,
  });
}

/** A helper's environment: the server's PATH and TMPDIR, and what the sandbox adds. */
export function fsHelperEnv(serverEnv: Readonly<Record<string, string | undefined>>, command: SandboxedCommand): Record<string, string> {
  return { PATH: serverEnv.PATH ?? '/usr/bin:/bin', ...(serverEnv.TMPDIR ? { TMPDIR: serverEnv.TMPDIR } : {}), ...command.env };
}
