import { handleEnvironmentConfigRead, handleHttpRequest } from './config-http-handlers.js';
import * as fs from './fs-handlers.js';
import {
  type HandlerContext,
  handleEnvironmentInfo,
  handleEnvironmentStatus,
  handleRead,
  handleResize,
  handleSignal,
  handleStart,
  handleTerminate,
  handleWrite,
} from './process-handlers.js';

/** A handler answers with a value, or a promise of one when it has to wait. */
export type Handler = (ctx: HandlerContext, params: unknown) => unknown;

/** Every method a session may call after the handshake. */
export const methodTable: ReadonlyMap<string, Handler> = new Map<string, Handler>([
  ['process/start', handleStart],
  ['process/read', handleRead],
  ['process/write', handleWrite],
  ['process/terminate', handleTerminate],
  ['process/signal', handleSignal],
  ['process/resize', handleResize],
  ['environment/info', handleEnvironmentInfo],
  ['environment/status', handleEnvironmentStatus],
  ['fs/readFile', fs.handleReadFile],
  ['fs/writeFile', fs.handleWriteFile],
  ['fs/createDirectory', fs.handleCreateDirectory],
  ['fs/getMetadata', fs.handleGetMetadata],
  ['fs/readDirectory', fs.handleReadDirectory],
  ['fs/remove', fs.handleRemove],
  ['fs/copy', fs.handleCopy],
  ['fs/canonicalize', fs.handleCanonicalize],
  ['fs/rename', fs.handleRename],
  ['fs/open', fs.handleOpen],
  ['fs/readBlock', fs.handleReadBlock],
  ['fs/writeBlock', fs.handleWriteBlock],
  ['fs/close', fs.handleClose],
  ['fs/watch', fs.handleWatch],
  ['fs/unwatch', fs.handleUnwatch],
  ['fs/walk', fs.handleWalk],
  ['fs/watchMissing', fs.handleWatchMissing],
  ['environmentConfig/read', handleEnvironmentConfigRead],
  ['http/request', handleHttpRequest],
]);
