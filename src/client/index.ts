export { ExecServerClient, type ClientOptions, type StartProcessParams, type ReadOptions, type DecodedReadResult, type ClientProcessEvent, type OutputGapEvent, type ReconnectingInfo } from './exec-server-client.js';
export { RemoteEnvironment } from './remote-environment.js';
export { DisconnectedError, RpcError } from './errors.js';
export { NetworkApprovals, deferredDenialMessage, type ApprovalDecision, type ApprovalHandler, type ApprovalRequest } from './network-approvals.js';
export type { NetworkDenial, ServerRequestHandler } from './exec-server-client.js';
