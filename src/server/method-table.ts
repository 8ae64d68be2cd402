import {
  handleEnvironmentInfo,
  handleRead,
  handleResize,
  handleSignal,
  handleStart,
  handleTerminate,
  handleWrite,
  type HandlerContext,
} from './process-handlers.js';

export type Handler = (ctx: HandlerContext, params: unknown) => Promise<unknown>;

/** Every method a session may call after the handshake. */
export const methodTable: ReadonlyMap<string, Handler> = new Map<string, Handler>([
  ['process/start', handleStart],
  ['process/read', handleRead],
  ['process/write', handleWrite],
  ['process/terminate', handleTerminate],
  ['process/signal', handleSignal],
  ['process/resize', handleResize],
  ['environment/info', handleEnvironmentInfo],
]);
