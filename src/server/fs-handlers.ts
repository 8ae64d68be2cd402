import type { FileMetadata, FsCallOptions } from '../environment/types.js';
import {
  Base64Error,
  Base64Result,
  Base64Stream,
  CloseFileParams,
  CopyParams,
  CreateDirectoryParams,
  decodeBase64Strict,
  formatPath,
  fsMessages,
  HandleParams,
  invalidParams,
  invalidRequest,
  OpenFileParams,
  OpenParams,
  osErrorMessage,
  PathParams,
  parseAbsolutePath,
  parseOpenFileMode,
  parseParams,
  parseWireSandbox,
  pathForm,
  ReadBlockParams,
  ReadFileBlockParams,
  RemoveParams,
  RenameParams,
  RpcError,
  UnwatchParams,
  WalkParams,
  WatchMissingParams,
  WatchParams,
  type WireDirEntry,
  type WireMetadata,
  WriteBlockParams,
  WriteFileBlockParams,
  WriteFileParams,
} from '../protocol/index.js';
import { sandboxFromWire } from '../sandbox/profile.js';
import type { HandlerContext } from './process-handlers.js';

/** The thin adapters from `fs/*` params to the environment's FileSystem. */

type Empty = Record<string, never>;
const EMPTY: Empty = {};

function callOptions(raw: { sandbox?: unknown }): FsCallOptions {
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
export async function handleReadFile(ctx: HandlerContext, raw: unknown): Promise<Base64Result | Base64Stream> {
  const p = parseParams(PathParams, raw, 'FsPathParams');
  const file = parseAbsolutePath(p.path);
  let data: Buffer | AsyncIterable<Buffer>;
  try {
    data = await ctx.environment.fs.readFileStream(file, callOptions(p));
  } catch (err) {
    if (pathForm(p.path) === 'uri' && err instanceof RpcError && err.message === IS_A_DIRECTORY)
      throw invalidRequest(fsMessages.notAFile(file));
    throw err;
  }
  return Buffer.isBuffer(data) ? new Base64Result('{"dataBase64":"', data, '"}') : new Base64Stream('{"dataBase64":"', data, '"}');
}

export async function handleWriteFile(ctx: HandlerContext, raw: unknown): Promise<Empty> {
  const p = parseParams(WriteFileParams, raw, 'FsWriteFileParams');
  const file = parseAbsolutePath(p.path);
  const options = callOptions(p);
  if (ctx.base64Problem !== undefined) throw invalidRequest(fsMessages.writeFileBase64(ctx.base64Problem));
  await ctx.environment.fs.writeFile(file, ctx.decodedData ?? decode(p.dataBase64, fsMessages.writeFileBase64), options);
  return EMPTY;
}

export async function handleCreateDirectory(ctx: HandlerContext, raw: unknown): Promise<Empty> {
  const p = parseParams(CreateDirectoryParams, raw, 'FsCreateDirectoryParams');
  await ctx.environment.fs.createDirectory(parseAbsolutePath(p.path), { recursive: p.recursive ?? true }, callOptions(p));
  return EMPTY;
}

/** Answered in the same turn when the environment can (no promise layers: the commonest fs call). */
export function handleGetMetadata(ctx: HandlerContext, raw: unknown): WireMetadata | Promise<WireMetadata> {
  const p = parseParams(PathParams, raw, 'FsPathParams');
  const file = parseAbsolutePath(p.path);
  const options = callOptions(p);
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

export async function handleReadDirectory(ctx: HandlerContext, raw: unknown): Promise<{ entries: WireDirEntry[] }> {
  const p = parseParams(PathParams, raw, 'FsPathParams');
  const entries = await ctx.environment.fs.readDirectory(parseAbsolutePath(p.path), callOptions(p));
  return { entries: entries.map((e) => ({ fileName: e.fileName, isDirectory: e.isDirectory, isFile: e.isFile })) };
}

export async function handleRemove(ctx: HandlerContext, raw: unknown): Promise<Empty> {
  const p = parseParams(RemoveParams, raw, 'FsRemoveParams');
  await ctx.environment.fs.remove(parseAbsolutePath(p.path), { recursive: p.recursive ?? true, force: p.force ?? true }, callOptions(p));
  return EMPTY;
}

export async function handleCopy(ctx: HandlerContext, raw: unknown): Promise<Empty> {
  const p = parseParams(CopyParams, raw, 'FsCopyParams');
  await ctx.environment.fs.copy(
    parseAbsolutePath(p.sourcePath),
    parseAbsolutePath(p.destinationPath),
    { recursive: p.recursive },
    callOptions(p),
  );
  return EMPTY;
}

/** The result is a URI when the request's path was one (0.142+ clients), else a plain path. */
export async function handleCanonicalize(ctx: HandlerContext, raw: unknown): Promise<{ path: string }> {
  const p = parseParams(PathParams, raw, 'FsPathParams');
  return { path: formatPath(await ctx.environment.fs.canonicalize(parseAbsolutePath(p.path), callOptions(p)), pathForm(p.path)) };
}

export async function handleRename(ctx: HandlerContext, raw: unknown): Promise<Empty> {
  const p = parseParams(RenameParams, raw, 'FsRenameParams');
  await ctx.environment.fs.rename(parseAbsolutePath(p.sourcePath), parseAbsolutePath(p.destinationPath), callOptions(p));
  return EMPTY;
}

/**
 * fs/open and friends come in two forms: the client-named one of 0.142+ clients (`handleId`) and
 * Cordon's older form (`handle`, chosen by the server), still served for the clients written for it.
 * A request without `handle` is read as the client-named form, so its errors are worded like the
 * reference's; fs/open without `handleId` and with mode `read` or `write` is the older form.
 */
const olderForm = (raw: unknown, key: string): boolean => raw !== null && typeof raw === 'object' && !Array.isArray(raw) && key in raw;

export async function handleOpen(
  ctx: HandlerContext,
  raw: unknown,
): Promise<{ handle: string; permissions: number } | { handleId: string }> {
  const mode = olderForm(raw, 'mode') ? (raw as { mode: unknown }).mode : undefined;
  if (!olderForm(raw, 'handleId') && (mode === 'read' || mode === 'write')) return handleOlderOpen(ctx, raw);
  const p = parseParams(OpenFileParams, raw, 'FsOpenParams');
  await ctx.environment.fs.openFile(p.handleId, parseAbsolutePath(p.path), parseOpenFileMode(p.mode), callOptions(p));
  return { handleId: p.handleId };
}

async function handleOlderOpen(ctx: HandlerContext, raw: unknown): Promise<{ handle: string; permissions: number }> {
  const p = parseParams(OpenParams, raw, 'FsOpenParams');
  return ctx.environment.fs.openWithMode(parseAbsolutePath(p.path), p.mode, { permissions: p.permissions ?? null }, callOptions(p));
}

export async function handleReadBlock(ctx: HandlerContext, raw: unknown): Promise<Base64Result> {
  if (!olderForm(raw, 'handle')) {
    const p = parseParams(ReadFileBlockParams, raw, 'FsReadBlockParams');
    const { data, eof } = await ctx.environment.fs.readFileBlock(p.handleId, p.offset, p.len);
    return new Base64Result('{"chunk":"', data, `","eof":${eof}}`);
  }
  const p = parseParams(ReadBlockParams, raw, 'FsReadBlockParams');
  const { data, eof } = await ctx.environment.fs.readBlock(p.handle, p.offset, p.length);
  return new Base64Result('{"dataBase64":"', data, `","eof":${eof}}`);
}

export async function handleWriteBlock(ctx: HandlerContext, raw: unknown): Promise<Empty> {
  if (!olderForm(raw, 'handle')) {
    const p = parseParams(WriteFileBlockParams, raw, 'FsWriteBlockParams');
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
  const p = parseParams(WriteBlockParams, raw, 'FsWriteBlockParams');
  await ctx.environment.fs.writeBlock(p.handle, p.offset, decode(p.dataBase64, fsMessages.writeBlockBase64));
  return EMPTY;
}

export async function handleClose(ctx: HandlerContext, raw: unknown): Promise<Empty> {
  if (!olderForm(raw, 'handle')) {
    const p = parseParams(CloseFileParams, raw, 'FsCloseParams');
    await ctx.environment.fs.closeFile(p.handleId);
    return EMPTY;
  }
  const p = parseParams(HandleParams, raw, 'FsHandleParams');
  await ctx.environment.fs.close(p.handle);
  return EMPTY;
}

export async function handleWalk(ctx: HandlerContext, raw: unknown): Promise<unknown> {
  const p = parseParams(WalkParams, raw, 'FsWalkParams');
  const result = await ctx.environment.fs.walk(parseAbsolutePath(p.path), p.options, callOptions(p));
  const form = pathForm(p.path);
  return {
    entries: result.entries.map((e) => ({ path: formatPath(e.path, form), kind: e.kind })),
    errors: result.errors.map((e) => ({ path: formatPath(e.path, form), message: e.message })),
    truncated: result.truncated,
  };
}

export async function handleWatchMissing(ctx: HandlerContext, raw: unknown): Promise<{ watching: boolean }> {
  const p = parseParams(WatchMissingParams, raw, 'FsWatchMissingParams');
  const missing = p.missing.map(parseAbsolutePath);
  const present = p.present ? parseAbsolutePath(p.present) : null;
  return { watching: await ctx.environment.fs.watchMissing(p.watchId, missing, present) };
}

export async function handleWatch(ctx: HandlerContext, raw: unknown): Promise<{ watchId: string }> {
  const p = parseParams(WatchParams, raw, 'FsWatchParams');
  return { watchId: await ctx.environment.fs.watch(parseAbsolutePath(p.path), { recursive: p.recursive ?? false }, callOptions(p)) };
}

export async function handleUnwatch(ctx: HandlerContext, raw: unknown): Promise<Empty> {
  const p = parseParams(UnwatchParams, raw, 'FsUnwatchParams');
  await ctx.environment.fs.unwatch(p.watchId);
  return EMPTY;
}
