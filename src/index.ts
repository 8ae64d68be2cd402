export * from './environment/index.js';
export { LocalEnvironment } from './local/local-environment.js';
export type { LocalEnvironmentOptions } from './local/options.js';
export { CordonServer, defaultServerOptions, type ServerOptions, type ListenOptions } from './server/index.js';
export * from './client/index.js';
export { RpcError, ErrorCode } from './protocol/errors.js';
export { closeInheritedDescriptors } from './local/inherited-fds.js';
