import { z } from 'zod';
import { struct, u64 } from './validate.js';

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

export const fsMessages = {
  copyNeedsRecursive: 'fs/copy requires recursive: true when sourcePath is a directory',
  copyIntoItself: 'fs/copy cannot copy a directory to itself or one of its descendants',
  copyOntoItself: 'fs/copy refuses to copy a file onto itself (source and destination are the same file)',
  copyUnsupportedType: 'fs/copy only supports regular files, directories, and symlinks',
  writeFileBase64: (detail: string) => `fs/writeFile requires valid base64 dataBase64: ${detail}`,
  writeBlockBase64: (detail: string) => `fs/writeBlock requires valid base64 dataBase64: ${detail}`,
  unknownHandle: (h: string) => `unknown file handle ${h}`,
  tooManyHandles: (n: number) => `too many open file handles in this session (limit ${n})`,
  handleMode: (h: string, mode: string) => `file handle ${h} was not opened for ${mode}`,
  blockTooLarge: (n: number) => `length must be at most ${n} bytes`,
  notAFile: (p: string) => `path \`${p}\` is not a file`,
  unknownWatch: (id: string) => `unknown watch id ${id}`,
  tooManyWatches: (n: number) => `too many watches in this session (limit ${n})`,
  unsizedTooLong: (p: string, n: number) =>
    `fs/readFile of ${p}: not a regular file (a device, FIFO or /proc-like file) and it gave more than ${n} bytes; read it with fs/open and fs/readBlock`,
  unsizedWriteTimedOut: (p: string, ms: number) =>
    `fs/writeFile of ${p}: not a regular file and nothing took the data within ${ms} ms (a FIFO without a reader)`,
  unsizedTimedOut: (p: string, ms: number) =>
    `fs/readFile of ${p}: not a regular file and no end of data within ${ms} ms (a FIFO or device that keeps waiting)`,
  sandboxUnavailable:
    'sandboxed file operations are not available on this server yet: the request carries a sandbox that restricts file access, and Cordon will not run it unsandboxed',
} as const;
