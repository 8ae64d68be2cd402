import { z } from 'zod';
import type { Capabilities } from './capabilities.js';
import { struct } from './validate.js';

export const InitializeParams = struct('InitializeParams', {
  clientName: z.string(),
  resumeSessionId: z.string().nullish(),
  /** Cordon extension: server-to-client requests this client answers (docs/protocol-extensions.md). */
  capabilities: z.object({ execPolicyPrompt: z.boolean().optional() }).passthrough().nullish(),
});
export type InitializeParams = z.infer<typeof InitializeParams>;

/**
 * `environmentInfo` as 0.150+ clients read it (docs/clients.md, "`environmentInfo`"), key order as
 * the reference sends it. Paths are `file://` URIs for every client: only 0.150+ clients read this
 * object, and they parse URIs. `cwd` is null when the server's working directory no longer exists.
 */
export interface WireEnvironmentInfo {
  shell: { name: string; path: string };
  executorVersion: string;
  providerId: string;
  cwd: string | null;
  userHomeDir: string | null;
  platformOs: string;
  prependPathDirs: string[];
  temporaryDirectories: string[];
  tempDir: string | null;
  capabilities: Capabilities;
}

export interface InitializeResult {
  sessionId: string;
  environmentInfo: WireEnvironmentInfo;
}

export const messages = {
  initializeOnce: 'initialize may only be sent once per connection',
  unknownSession: (id: string) => `unknown session id ${id}`,
  sessionAttached: (id: string) => `session ${id} is already attached to another connection`,
  mustInitialize: (kind: MethodFamily) => `client must call initialize before using ${kind} methods`,
  mustSendInitialized: (kind: MethodFamily) => `client must send initialized before using ${kind} methods`,
} as const;

export type MethodFamily = 'exec' | 'filesystem';

export const methodFamily = (method: string): MethodFamily => (method.startsWith('fs/') ? 'filesystem' : 'exec');
