import { z } from 'zod';
import { type MethodSpec, method, methodWith } from './method-spec.js';
import {
  CloseFileParams,
  OpenFileParams,
  ReadFileBlockParams,
  WalkParams,
  WatchMissingParams,
  WriteFileBlockParams,
} from './methods-0171.js';
import { parseParams, struct, u64 } from './validate.js';

const sandbox = z.unknown().optional();

export const PathParams = struct('FsPathParams', { path: z.string(), sandbox });
export const WriteFileParams = struct('FsWriteFileParams', { path: z.string(), dataBase64: z.string(), sandbox });
export const CreateDirectoryParams = struct('FsCreateDirectoryParams', { path: z.string(), recursive: z.boolean().nullish(), sandbox });
export const RemoveParams = struct('FsRemoveParams', {
  path: z.string(),
  recursive: z.boolean().nullish(),
  force: z.boolean().nullish(),
  sandbox,
});
export const CopyParams = struct('FsCopyParams', { sourcePath: z.string(), destinationPath: z.string(), recursive: z.boolean(), sandbox });
export const RenameParams = struct('FsRenameParams', { sourcePath: z.string(), destinationPath: z.string(), sandbox });
export const OpenParams = struct('FsOpenParams', {
  path: z.string(),
  mode: z.enum(['read', 'write']),
  permissions: z.number().int().min(0).max(0o777).nullish(),
  sandbox,
});
export const ReadBlockParams = struct('FsReadBlockParams', { handle: z.string(), offset: u64(), length: u64() });
export const WriteBlockParams = struct('FsWriteBlockParams', { handle: z.string(), offset: u64(), dataBase64: z.string() });
export const HandleParams = struct('FsHandleParams', { handle: z.string() });
export const WatchParams = struct('FsWatchParams', { path: z.string(), recursive: z.boolean().nullish(), sandbox });
export const UnwatchParams = struct('FsUnwatchParams', { watchId: z.string() });

export interface WireMetadata {
  isDirectory: boolean;
  isFile: boolean;
  isSymlink: boolean;
  size: number;
  createdAtMs: number;
  modifiedAtMs: number;
}

export interface WireDirEntry {
  fileName: string;
  isDirectory: boolean;
  isFile: boolean;
}

export type FsChangeKind = 'created' | 'modified' | 'removed' | 'renamed';

export interface WireWalkResult {
  entries: { path: string; kind: 'file' | 'directory' }[];
  errors: { path: string; message: string }[];
  truncated: boolean;
}

type Empty = Record<string, never>;

/**
 * fs/open, fs/readBlock, fs/writeBlock and fs/close come in two forms: the client-named one of
 * 0.142+ clients (`handleId`) and Cordon's older one (`handle`, chosen by the server), still served
 * for the clients written for it. A request without `handle` is read as the client-named form, so
 * its errors are worded like the reference's; fs/open without `handleId` and with mode `read` or
 * `write` is the older form.
 */
type TwoForms<Named extends z.ZodTypeAny, Older extends z.ZodTypeAny, NamedResult, OlderResult> = MethodSpec<
  { form: 'named'; params: z.output<Named> } | { form: 'older'; params: z.output<Older> },
  z.input<Named> | z.input<Older>,
  NamedResult | OlderResult
>;

const has = (raw: unknown, key: string): boolean => raw !== null && typeof raw === 'object' && !Array.isArray(raw) && key in raw;

function twoForms<Named extends z.ZodTypeAny, Older extends z.ZodTypeAny>(
  named: [Named, string],
  older: [Older, string],
  isOlder: (raw: unknown) => boolean,
) {
  return <NamedResult, OlderResult>(): TwoForms<Named, Older, NamedResult, OlderResult> =>
    methodWith((raw) =>
      isOlder(raw)
        ? { form: 'older' as const, params: parseParams(older[0], raw, older[1]) }
        : { form: 'named' as const, params: parseParams(named[0], raw, named[1]) },
    );
}

const olderOpen = (raw: unknown): boolean => {
  const mode = has(raw, 'mode') ? (raw as { mode: unknown }).mode : undefined;
  return !has(raw, 'handleId') && (mode === 'read' || mode === 'write');
};
const olderHandle = (raw: unknown): boolean => has(raw, 'handle');

/** The `fs/*` request methods (docs/protocol.md): params as the server reads them, and their results. */
export const fsMethods = {
  'fs/readFile': method(PathParams, 'FsPathParams')<{ dataBase64: string }>(),
  'fs/writeFile': method(WriteFileParams, 'FsWriteFileParams')<Empty>(),
  'fs/createDirectory': method(CreateDirectoryParams, 'FsCreateDirectoryParams')<Empty>(),
  'fs/getMetadata': method(PathParams, 'FsPathParams')<WireMetadata>(),
  'fs/readDirectory': method(PathParams, 'FsPathParams')<{ entries: WireDirEntry[] }>(),
  'fs/remove': method(RemoveParams, 'FsRemoveParams')<Empty>(),
  'fs/copy': method(CopyParams, 'FsCopyParams')<Empty>(),
  'fs/canonicalize': method(PathParams, 'FsPathParams')<{ path: string }>(),
  'fs/rename': method(RenameParams, 'FsRenameParams')<Empty>(),
  'fs/open': twoForms([OpenFileParams, 'FsOpenParams'], [OpenParams, 'FsOpenParams'], olderOpen)<
    { handleId: string },
    { handle: string; permissions: number }
  >(),
  'fs/readBlock': twoForms([ReadFileBlockParams, 'FsReadBlockParams'], [ReadBlockParams, 'FsReadBlockParams'], olderHandle)<
    { chunk: string; eof: boolean },
    { dataBase64: string; eof: boolean }
  >(),
  'fs/writeBlock': twoForms([WriteFileBlockParams, 'FsWriteBlockParams'], [WriteBlockParams, 'FsWriteBlockParams'], olderHandle)<
    Empty,
    Empty
  >(),
  'fs/close': twoForms([CloseFileParams, 'FsCloseParams'], [HandleParams, 'FsHandleParams'], olderHandle)<Empty, Empty>(),
  'fs/watch': method(WatchParams, 'FsWatchParams')<{ watchId: string }>(),
  'fs/unwatch': method(UnwatchParams, 'FsUnwatchParams')<Empty>(),
  'fs/walk': method(WalkParams, 'FsWalkParams')<WireWalkResult>(),
  'fs/watchMissing': method(WatchMissingParams, 'FsWatchMissingParams')<{ watching: boolean }>(),
};
