export { ExecServerClient, type ClientOptions, type StartProcessParams, type ReadOptions, type DecodedReadResult } from './exec-server-client.js';
export { RemoteEnvironment } from './remote-environment.js';
export { DisconnectedError, RpcError } from './errors.js';
