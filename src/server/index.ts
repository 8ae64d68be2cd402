export { CordonServer, type ListenOptions } from './cordon-server.js';
export { defaultServerOptions, type ServerOptions } from './options.js';
