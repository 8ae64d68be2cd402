import type { Logger } from 'pino';
import type { Environment } from '../environment/types.js';
import type { ExecPolicyAsk, ExecPolicyEnforcer } from '../execpolicy/index.js';
import type { OperatorNetworkPolicy, Resolve } from '../network/policy.js';
import type { ParsedSandboxes } from './parsed-sandboxes.js';
import type { Session } from './session.js';

/** What every method handler is given besides its params: the session's environment and the server's rules. */
export interface HandlerContext {
  environment: Environment;
  /** Aborted when the connection that asked goes away. */
  signal: AbortSignal;
  /** `fs/writeFile`'s data, decoded by the dispatcher from the message's bytes (`dataBase64` is then empty). */
  decodedData?: Buffer;
  /** fs/writeFile taken apart from bytes whose dataBase64 is not valid: the problem, worded. */
  base64Problem?: string;
  /** The operator's command rules, checked before anything is spawned. */
  execPolicy?: ExecPolicyEnforcer;
  /** Asks the client about a `prompt` verdict; absent when the client did not offer to answer. */
  askExecPolicy?: ExecPolicyAsk;
  /** The session asking: server-to-client requests and notifications (the network decider). */
  session?: Session;
  logger?: Logger;
  /** Name resolution for managed network proxies (injectable for tests). */
  resolve?: Resolve;
  trustedRanges?: string[];
  operatorNetwork?: OperatorNetworkPolicy;
  /** The sandboxes this connection's fs calls sent, validated once each (absent: validated per call). */
  sandboxes?: ParsedSandboxes;
  /** The server ceiling's network (`restricted`: no process has any network). */
  ceilingNetwork?: string;
}
