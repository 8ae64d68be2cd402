/**
 * The texts of Cordon's fs and method errors, apart from the schemas: the sandboxed fs worker needs
 * them, and importing them must not build every zod schema of the protocol (about 70 ms of the
 * worker's start).
 */

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

export const methodMessages = {
  walkLimits: 'filesystem walk limits must be greater than zero',
  readBlockLength: (max: number) => `file read block length must be between 1 and ${max}`,
  writeBlockLength: (max: number) => `file write block length must be between 1 and ${max}`,
  handleExists: (h: string) => `file handle \`${h}\` already exists`,
  tooManyFileHandles: (n: number) => `at most ${n} file handles may be open per connection`,
  unknownFileHandle: (h: string) => `unknown file handle \`${h}\``,
  notAFile: (p: string) => `path \`${p}\` is not a file`,
  badFileDescriptor: 'Bad file descriptor (os error 9)',
  configPathsRequired: 'at least one config or requirements path is required',
  tomlPathEmpty: 'TOML paths must contain at least one key segment',
  configLoad: (detail: string) => `failed to load executor-local config: ${detail}`,
  httpScheme: (scheme: string) => `http/request only supports http and https URLs, got ${scheme}`,
  httpUrl: (detail: string) => `http/request url is invalid: ${detail}`,
  httpMethod: 'http/request method is invalid: invalid HTTP method',
  httpHeaderName: 'http/request header name is invalid: invalid HTTP header name',
  httpHeaderValue: (name: string) => `http/request header value is invalid for ${name}: failed to parse header value`,
  httpEnvVar: (name: string, variable: string) => `http/request header ${name} requires executor environment variable ${variable}`,
  httpFailed: (detail: string) => `http/request failed: ${detail}`,
  httpNoNetwork:
    "http/request is refused: this server's permissions give its clients no network access (serve with a profile whose network is enabled, or a managed network policy such as --network-allow HOST)",
  httpPolicyRefused: (host: string, port: number, reason: string) =>
    `http/request to ${host}:${port} is refused by the server's network policy (${reason})`,
  httpStreamActive: (id: string) => `http/request streamResponse requestId \`${id}\` is already active`,
  httpTooMany: (n: number) => `http/request: at most ${n} requests may be in flight per session`,
} as const;
