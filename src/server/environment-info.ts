import type { EnvironmentInfo } from '../environment/types.js';
import type { Capabilities } from '../protocol/capabilities.js';
import type { WireEnvironmentInfo } from '../protocol/initialize.js';
import { pathToUri } from '../protocol/paths.js';

/** `environmentInfo` on the wire: the environment's facts with paths as URIs, and the capabilities. */
export function wireEnvironmentInfo(info: EnvironmentInfo, capabilities: Capabilities): WireEnvironmentInfo {
  const uri = (p: string | null | undefined): string | null => (p ? pathToUri(p) : null);
  return {
    shell: { name: info.shell.name, path: info.shell.path },
    executorVersion: info.executorVersion ?? 'unknown',
    providerId: info.providerId ?? '',
    cwd: uri(info.cwd),
    userHomeDir: uri(info.userHomeDir),
    platformOs: info.platformOs ?? process.platform,
    prependPathDirs: (info.prependPathDirs ?? []).map(pathToUri),
    temporaryDirectories: (info.temporaryDirectories ?? []).map(pathToUri),
    tempDir: uri(info.tempDir),
    capabilities,
  };
}
