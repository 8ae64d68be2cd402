import type { Logger } from 'pino';
import pino from 'pino';
import type { ExecPolicyEnforcer } from '../execpolicy/index.js';
import type { LocalEnvironmentOptions } from '../local/options.js';

export interface ServerOptions {
  /** How long a detached session (its processes, their output) waits to be resumed. */
  sessionGraceMs: number;
  /** Largest incoming WebSocket frame; a bigger one closes the connection with 1009. */
  maxFrameBytes: number;
  /** Largest incoming message (all frames of it, or one stdio line). */
  maxMessageBytes: number;
  /** Unsent bytes on a connection above which the session's child output stops being read. */
  sendHighWaterBytes: number;
  /** ...and below which it is read again. */
  sendLowWaterBytes: number;
  /** Bearer token required on the WebSocket upgrade; none means no authentication. */
  token: string | undefined;
  environment: Partial<LocalEnvironmentOptions>;
  logger: Logger;
  /** Command rules checked before every `process/start` (docs/exec-policy.md); none: no rules. */
  execPolicy?: ExecPolicyEnforcer;
  /** How long a `prompt` verdict waits for the client's `execPolicy/request` answer before denying. */
  execPolicyPromptTimeoutMs: number;
}

export const defaultServerOptions = (): ServerOptions => ({
  sessionGraceMs: 30_000,
  maxFrameBytes: 16 * 1024 * 1024,
  maxMessageBytes: 64 * 1024 * 1024,
  sendHighWaterBytes: 8 * 1024 * 1024,
  sendLowWaterBytes: 1024 * 1024,
  token: undefined,
  environment: {},
  execPolicyPromptTimeoutMs: 120_000,
  logger: pino({ enabled: false }),
});
