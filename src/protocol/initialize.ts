import { z } from 'zod';
import { struct } from './validate.js';

export const InitializeParams = struct('InitializeParams', {
  clientName: z.string(),
  resumeSessionId: z.string().nullish(),
  /** Cordon extension: server-to-client requests this client answers (docs/protocol-extensions.md). */
  capabilities: z.object({ execPolicyPrompt: z.boolean().optional() }).passthrough().nullish(),
});
export type InitializeParams = z.infer<typeof InitializeParams>;

export interface InitializeResult {
  sessionId: string;
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
