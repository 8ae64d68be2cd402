import { z } from 'zod';
import { invalidParams } from './errors.js';
import { method } from './method-spec.js';
import { struct, u64 } from './validate.js';

/**
 * Params of the methods today's Codex CLI (0.143–0.171) added: fs/watchMissing, fs/walk, the
 * client-named file handles (fs/open with `handleId`, fs/readBlock, fs/writeBlock, fs/close),
 * environmentConfig/read and http/request. Texts are the reference's where a client may see them.
 */

const sandbox = z.unknown().optional();

export const WatchMissingParams = struct('FsWatchMissingParams', {
  watchId: u64(),
  missing: z.array(z.string()),
  present: z.string().nullish(),
});

export const WalkOptions = struct('FsWalkOptions', {
  maxDepth: u64(),
  maxDirectories: u64(),
  maxEntries: u64(),
  followDirectorySymlinks: z.boolean(),
  pruneHiddenDirectories: z.boolean(),
});
export const WalkParams = struct('FsWalkParams', { path: z.string(), options: WalkOptions, sandbox });

export const OpenFileParams = struct('FsOpenParams', { handleId: z.string(), path: z.string(), sandbox, mode: z.unknown().optional() });
export const ReadFileBlockParams = struct('FsReadBlockParams', { handleId: z.string(), offset: u64(), len: u64() });
export const WriteFileBlockParams = struct('FsWriteBlockParams', { handleId: z.string(), offset: u64(), chunk: z.string() });
export const CloseFileParams = struct('FsCloseParams', { handleId: z.string() });

export type OpenFileMode = 'read' | 'replace';

/** `"read"`, `"replace"`, `{"read":null}` or `{"replace":null}` (serde's externally tagged unit variants); absent is read. */
export function parseOpenFileMode(value: unknown): OpenFileMode {
  if (value === undefined) return 'read';
  const variant = (name: unknown): OpenFileMode => {
    if (name === 'read' || name === 'replace') return name;
    throw invalidParams(`unknown variant \`${String(name)}\`, expected \`read\` or \`replace\``);
  };
  if (typeof value === 'string') return variant(value);
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const keys = Object.keys(value);
    if (keys.length === 1) return variant(keys[0]);
  }
  throw invalidParams(
    `invalid type: ${value === null ? 'null' : Array.isArray(value) ? 'sequence' : typeof value}, expected string or map`,
  );
}

const TomlPaths = z.array(z.array(z.string()));
export const EnvironmentConfigReadParams = struct('EnvironmentConfigReadParams', {
  cwd: z.string(),
  configPaths: TomlPaths,
  requirementsPaths: TomlPaths,
});

export const HttpHeader = struct('HttpHeader', { name: z.string(), value: z.string(), valueEnvVar: z.string().nullish() });
export const HttpRequestParams = struct('HttpRequestParams', {
  method: z.string(),
  url: z.string(),
  requestId: z.string(),
  headers: z.array(HttpHeader).nullish(),
  bodyBase64: z.string().nullish(),
  timeoutMs: u64().nullish(),
  redirectPolicy: z.enum(['follow', 'stop']).nullish(),
  streamResponse: z.boolean().nullish(),
});

export interface WireEnvironmentConfigLayer {
  source: string;
  baseDir: string;
  toml: string;
}

export interface WireEnvironmentConfig {
  userHomeDir: string;
  codexHomeDir: string;
  hostname: string;
  config: { layers: WireEnvironmentConfigLayer[]; cloudInsertionIndex: number };
  requirements: { layers: WireEnvironmentConfigLayer[]; cloudInsertionIndex: number };
}

export interface WireHttpResponse {
  status: number;
  headers: { name: string; value: string }[];
  bodyBase64: string;
}

/** environmentConfig/read and http/request: params as the server reads them, and their results. */
export const configHttpMethods = {
  'environmentConfig/read': method(EnvironmentConfigReadParams, 'EnvironmentConfigReadParams')<WireEnvironmentConfig>(),
  'http/request': method(HttpRequestParams, 'HttpRequestParams')<WireHttpResponse>(),
};
