export * from './client/index.js';
export * from './environment/index.js';
export { closeInheritedDescriptors } from './local/inherited-fds.js';
export { LocalEnvironment } from './local/local-environment.js';
export type { LocalEnvironmentOptions } from './local/options.js';
export { ErrorCode, RpcError } from './protocol/errors.js';
export { CordonServer, defaultServerOptions, type ListenOptions, type ServerOptions } from './server/index.js';
