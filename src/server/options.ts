import type { Logger } from 'pino';
import pino from 'pino';
import type { ExecPolicyEnforcer } from '../execpolicy/index.js';
import type { LocalEnvironmentOptions } from '../local/options.js';
import type { OperatorNetworkPolicy, Resolve } from '../network/policy.js';

export interface ServerOptions {
  /** How long a detached session (its processes, their output) waits to be resumed. */
  sessionGraceMs: number;
  /** Largest incoming WebSocket frame; a bigger one closes the connection with 1009. */
  maxFrameBytes: number;
  /** Largest incoming message (all frames of it, or one stdio line). */
  maxMessageBytes: number;
  /** Pongs queued but unsent on a WebSocket (a burst of pings from a peer that does not read) above which it is closed with 1008. */
  maxPendingPongs: number;
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
  /** Name resolution of managed network proxies (default: the system's); tests inject their own. */
  networkResolve?: Resolve;
  /** Private ranges (an intranet) managed proxies may reach; loopback, link-local and metadata never. */
  networkTrustedRanges?: string[];
  /**
   * The operator's network policy: with it, every process whose network is enabled goes through a
   * managed proxy (one the client did not ask for gets this policy), and it limits the policy a
   * client sends. Without it, a client's `networkProxy` alone decides.
   */
  network?: OperatorNetworkPolicy;
}

export const defaultServerOptions = (): ServerOptions => ({
  sessionGraceMs: 30_000,
  maxFrameBytes: 16 * 1024 * 1024,
  maxMessageBytes: 64 * 1024 * 1024,
  maxPendingPongs: 4096,
  sendHighWaterBytes: 8 * 1024 * 1024,
  sendLowWaterBytes: 1024 * 1024,
  token: undefined,
  environment: {},
  execPolicyPromptTimeoutMs: 120_000,
  logger: pino({ enabled: false }),
});
