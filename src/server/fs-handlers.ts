import type { FileMetadata, FsCallOptions } from '../environment/types.js';
import {
  Base64Error,
  Base64Result,
  Base64Stream,
  decodeBase64Strict,
  type FsMethodName,
  formatPath,
  fsMessages,
  invalidParams,
  invalidRequest,
  type MethodHandlers,
  type MethodParams,
  osErrorMessage,
  parseAbsolutePath,
  parseOpenFileMode,
  parseWireSandbox,
  pathForm,
  RpcError,
  type WireDirEntry,
  type WireMetadata,
  type WireWalkResult,
} from '../protocol/index.js';
import { sandboxFromWire } from '../sandbox/profile.js';
import type { HandlerContext } from './handler-context.js';

/** The thin adapters from `fs/*` params to the environment's FileSystem. */

type Empty = Record<string, never>;
const EMPTY: Empty = {};

function callOptions(ctx: HandlerContext, raw: { sandbox?: unknown }): FsCallOptions {
  if (ctx.sandboxes) return ctx.sandboxes.options(raw.sandbox);
  const wire = parseWireSandbox(raw.sandbox);
  return wire ? { sandbox: sandboxFromWire(wire) } : {};
}

function decode(data: string, message: (detail: string) => string): Buffer {
  try {
    return decodeBase64Strict(data);
  } catch (err) {
    if (err instanceof Base64Error) throw invalidRequest(message(err.message));
    throw err;
  }
}

const IS_A_DIRECTORY = osErrorMessage({ code: 'EISDIR' });

/**
 * A directory is `-32603 Is a directory (os error 21)` for a plain path (0.122–0.141, as the 0.141
 * reference) and ``-32600 path `X` is not a file`` for a URI (0.142+, as the newer reference): the
 * request's path form tells the generations apart, and each gets the answer its own server gave.
 */
export async function handleReadFile(ctx: HandlerContext, p: MethodParams<'fs/readFile'>): Promise<Base64Result | Base64Stream> {
  const file = parseAbsolutePath(p.path);
  let data: Buffer | AsyncIterable<Buffer>;
  try {
    data = await ctx.environment.fs.readFileStream(file, callOptions(ctx, p));
  } catch (err) {
    if (pathForm(p.path) === 'uri' && err instanceof RpcError && err.message === IS_A_DIRECTORY)
      throw invalidRequest(fsMessages.notAFile(file));
    throw err;
  }
  return Buffer.isBuffer(data) ? new Base64Result('{"dataBase64":"', data, '"}') : new Base64Stream('{"dataBase64":"', data, '"}');
}

export async function handleWriteFile(ctx: HandlerContext, p: MethodParams<'fs/writeFile'>): Promise<Empty> {
  const file = parseAbsolutePath(p.path);
  const options = callOptions(ctx, p);
  if (ctx.base64Problem !== undefined) throw invalidRequest(fsMessages.writeFileBase64(ctx.base64Problem));
  await ctx.environment.fs.writeFile(file, ctx.decodedData ?? decode(p.dataBase64, fsMessages.writeFileBase64), options);
  return EMPTY;
}

export async function handleCreateDirectory(ctx: HandlerContext, p: MethodParams<'fs/createDirectory'>): Promise<Empty> {
  await ctx.environment.fs.createDirectory(parseAbsolutePath(p.path), { recursive: p.recursive ?? true }, callOptions(ctx, p));
  return EMPTY;
}

/** Answered in the same turn when the environment can (no promise layers: the commonest fs call). */
export function handleGetMetadata(ctx: HandlerContext, p: MethodParams<'fs/getMetadata'>): WireMetadata | Promise<WireMetadata> {
  const file = parseAbsolutePath(p.path);
  const options = callOptions(ctx, p);
  const now = ctx.environment.fs.getMetadataNow?.(file, options);
  return now ? wireMetadata(now) : ctx.environment.fs.getMetadata(file, options).then(wireMetadata);
}

const wireMetadata = (m: FileMetadata): WireMetadata => ({
  isDirectory: m.isDirectory,
  isFile: m.isFile,
  isSymlink: m.isSymlink,
  size: m.size,
  createdAtMs: m.createdAtMs,
  modifiedAtMs: m.modifiedAtMs,
});

export async function handleReadDirectory(ctx: HandlerContext, p: MethodParams<'fs/readDirectory'>): Promise<{ entries: WireDirEntry[] }> {
  const entries = await ctx.environment.fs.readDirectory(parseAbsolutePath(p.path), callOptions(ctx, p));
  return { entries: entries.map((e) => ({ fileName: e.fileName, isDirectory: e.isDirectory, isFile: e.isFile })) };
}

export async function handleRemove(ctx: HandlerContext, p: MethodParams<'fs/remove'>): Promise<Empty> {
  await ctx.environment.fs.remove(
    parseAbsolutePath(p.path),
    { recursive: p.recursive ?? true, force: p.force ?? true },
    callOptions(ctx, p),
  );
  return EMPTY;
}

export async function handleCopy(ctx: HandlerContext, p: MethodParams<'fs/copy'>): Promise<Empty> {
  await ctx.environment.fs.copy(
    parseAbsolutePath(p.sourcePath),
    parseAbsolutePath(p.destinationPath),
    { recursive: p.recursive },
    callOptions(ctx, p),
  );
  return EMPTY;
}

/** The result is a URI when the request's path was one (0.142+ clients), else a plain path. */
export async function handleCanonicalize(ctx: HandlerContext, p: MethodParams<'fs/canonicalize'>): Promise<{ path: string }> {
  return { path: formatPath(await ctx.environment.fs.canonicalize(parseAbsolutePath(p.path), callOptions(ctx, p)), pathForm(p.path)) };
}

export async function handleRename(ctx: HandlerContext, p: MethodParams<'fs/rename'>): Promise<Empty> {
  await ctx.environment.fs.rename(parseAbsolutePath(p.sourcePath), parseAbsolutePath(p.destinationPath), callOptions(ctx, p));
  return EMPTY;
}

/** fs/open and friends in either form (see fsMethods in the protocol). */
export async function handleOpen(
  ctx: HandlerContext,
  { form, params: p }: MethodParams<'fs/open'>,
): Promise<{ handle: string; permissions: number } | { handleId: string }> {
  if (form === 'older')
    return ctx.environment.fs.openWithMode(parseAbsolutePath(p.path), p.mode, { permissions: p.permissions ?? null }, callOptions(ctx, p));
  await ctx.environment.fs.openFile(p.handleId, parseAbsolutePath(p.path), parseOpenFileMode(p.mode), callOptions(ctx, p));
  return { handleId: p.handleId };
}

export async function handleReadBlock(ctx: HandlerContext, { form, params: p }: MethodParams<'fs/readBlock'>): Promise<Base64Result> {
  if (form === 'named') {
    const { data, eof } = await ctx.environment.fs.readFileBlock(p.handleId, p.offset, p.len);
    return new Base64Result('{"chunk":"', data, `","eof":${eof}}`);
  }
  const { data, eof } = await ctx.environment.fs.readBlock(p.handle, p.offset, p.length);
  return new Base64Result('{"dataBase64":"', data, `","eof":${eof}}`);
}

export async function handleWriteBlock(ctx: HandlerContext, { form, params: p }: MethodParams<'fs/writeBlock'>): Promise<Empty> {
  if (form === 'named') {
    let data: Buffer;
    try {
      data = decodeBase64Strict(p.chunk);
    } catch (err) {
      if (err instanceof Base64Error) throw invalidParams(err.message);
      throw err;
    }
    await ctx.environment.fs.writeFileBlock(p.handleId, p.offset, data);
    return EMPTY;
  }
  await ctx.environment.fs.writeBlock(p.handle, p.offset, decode(p.dataBase64, fsMessages.writeBlockBase64));
  return EMPTY;
}

export async function handleClose(ctx: HandlerContext, { form, params: p }: MethodParams<'fs/close'>): Promise<Empty> {
  if (form === 'named') await ctx.environment.fs.closeFile(p.handleId);
  else await ctx.environment.fs.close(p.handle);
  return EMPTY;
}

export async function handleWalk(ctx: HandlerContext, p: MethodParams<'fs/walk'>): Promise<WireWalkResult> {
  const result = await ctx.environment.fs.walk(parseAbsolutePath(p.path), p.options, callOptions(ctx, p));
  const form = pathForm(p.path);
  return {
    entries: result.entries.map((e) => ({ path: formatPath(e.path, form), kind: e.kind })),
    errors: result.errors.map((e) => ({ path: formatPath(e.path, form), message: e.message })),
    truncated: result.truncated,
  };
}

export async function handleWatchMissing(ctx: HandlerContext, p: MethodParams<'fs/watchMissing'>): Promise<{ watching: boolean }> {
  const missing = p.missing.map(parseAbsolutePath);
  const present = p.present ? parseAbsolutePath(p.present) : null;
  return { watching: await ctx.environment.fs.watchMissing(p.watchId, missing, present) };
}

export async function handleWatch(ctx: HandlerContext, p: MethodParams<'fs/watch'>): Promise<{ watchId: string }> {
  return { watchId: await ctx.environment.fs.watch(parseAbsolutePath(p.path), { recursive: p.recursive ?? false }, callOptions(ctx, p)) };
}

export async function handleUnwatch(ctx: HandlerContext, p: MethodParams<'fs/unwatch'>): Promise<Empty> {
  await ctx.environment.fs.unwatch(p.watchId);
  return EMPTY;
}

export const fsHandlers: MethodHandlers<HandlerContext, FsMethodName> = {
  'fs/readFile': handleReadFile,
  'fs/writeFile': handleWriteFile,
  'fs/createDirectory': handleCreateDirectory,
  'fs/getMetadata': handleGetMetadata,
  'fs/readDirectory': handleReadDirectory,
  'fs/remove': handleRemove,
  'fs/copy': handleCopy,
  'fs/canonicalize': handleCanonicalize,
  'fs/rename': handleRename,
  'fs/open': handleOpen,
  'fs/readBlock': handleReadBlock,
  'fs/writeBlock': handleWriteBlock,
  'fs/close': handleClose,
  'fs/watch': handleWatch,
  'fs/unwatch': handleUnwatch,
  'fs/walk': handleWalk,
  'fs/watchMissing': handleWatchMissing,
};
