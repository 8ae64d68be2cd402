export { DisconnectedError, RpcError } from './errors.js';
export {
  type ExecPolicyAnswerWire,
  type ExecPolicyDecider,
  type ExecPolicyDecision,
  type ExecPolicyRequest,
  execPolicyRequestHandler,
  parseExecPolicyRequest,
} from './exec-policy-requests.js';
export type { NetworkDenial, ServerRequestHandler } from './exec-server-client.js';
export {
  type ClientOptions,
  type ClientProcessEvent,
  type DecodedReadResult,
  ExecServerClient,
  type OutputGapEvent,
  type ReadOptions,
  type ReconnectingInfo,
  type StartProcessParams,
} from './exec-server-client.js';
export {
  type ApprovalDecision,
  type ApprovalHandler,
  type ApprovalRequest,
  deferredDenialMessage,
  NetworkApprovals,
} from './network-approvals.js';
export { RemoteEnvironment } from './remote-environment.js';
