import type { Duplex } from 'node:stream';
import type { Capabilities } from '../protocol/capabilities.js';
import type { FsChangeKind, WireDirEntry, WireMetadata } from '../protocol/fs.js';
import type { OpenFileMode } from '../protocol/methods-0171.js';
import type { EnvPolicy, Stream, WriteStatus } from '../protocol/process.js';
import type { SandboxRequest } from './permissions.js';

export type { EnvPolicy, Stream, WriteStatus };

export interface StartProcessRequest {
  processId: string;
  argv: string[];
  /** Absolute directory. */
  cwd: string;
  env: Record<string, string>;
  tty: boolean;
  pipeStdin?: boolean;
  arg0?: string | null;
  envPolicy?: EnvPolicy | null;
  rows?: number | null;
  cols?: number | null;
  /** Run under this sandbox (docs/sandbox.md); an environment that cannot enforce it must refuse. */
  sandbox?: SandboxRequest | null;
  /** The process must run behind a managed network proxy; an environment that cannot must refuse. */
  enforceManagedNetwork?: boolean;
  /** A managed network proxy for this process (docs/network.md); closed with the process. */
  network?: ProcessNetwork | null;
}

export type ProxyEndpointName = 'http' | 'socks5';

/** A variable's value in the sandboxed child: literal text and the in-namespace ports of bridge endpoints. */
export type EnvTemplate = (string | { port: string })[];

/** How a command reaches its network from its own network namespace (docs/network.md). */
export interface NetworkRoute {
  /** The bridge listens on one namespace loopback port per endpoint, in this order. */
  endpoints: string[];
  /** Variables set for the command (overriding its own), pointing at those ports. */
  env: Record<string, EnvTemplate>;
}

/** The process's network as the environment sees it: where its connections go, and how it is reached. */
export interface ProcessNetwork {
  /**
   * Enforced: the process runs in its own network namespace whose only way out is the bridge, even
   * when its sandbox would otherwise need none. Not enforced (and not sandboxed): `listen` gives the
   * variables for a process on the host's network, and nothing stops it from going around them.
   */
  enforce: boolean;
  /**
   * The bridge for a command with this environment; throws an RpcError (nothing has run yet) when
   * the environment cannot be routed.
   */
  route(childEnv: Readonly<Record<string, string>>): NetworkRoute;
  /** Serves one connection the process opened to an endpoint of its route. */
  accept(endpoint: string, stream: Duplex): void;
  /** For an unenforced process: the variables to set (loopback listeners opened as needed). */
  listen(): Promise<Record<string, string>>;
  close(): void;
}

/**
 * The 0.147+ wire enum (`ProcessSandboxType`). A local environment answers `linuxSeccomp` whenever
 * the request carried a sandbox or Cordon sandboxed the process (bubblewrap + seccomp), else `none`;
 * the other values come from other executors.
 */
export type SandboxType = 'none' | 'macosSeatbelt' | 'linuxSeccomp' | 'windowsRestrictedToken' | 'windowsMxc';

export interface StartProcessResult {
  processId: string;
  sandboxType: SandboxType;
}

export interface OutputChunk {
  seq: number;
  stream: Stream;
  data: Buffer;
}

export interface ReadRequest {
  afterSeq?: number | null;
  maxBytes?: number | null;
  waitMs?: number | null;
  /** Abandons a long-poll early (e.g. when the asking connection goes away). */
  signal?: AbortSignal;
}

export interface ReadResult {
  chunks: OutputChunk[];
  nextSeq: number;
  exited: boolean;
  exitCode: number | null;
  closed: boolean;
  failure: string | null;
  /** Exited, sandboxed, and its failure looks like a sandbox denial (docs/protocol.md §7.2). */
  sandboxDenied: boolean;
  /**
   * Output seqs this read skipped because the process produced more than is retained (present only
   * then). A reader that resumes after a long absence learns here what it missed.
   */
  droppedOutput?: { fromSeq: number; toSeq: number };
}

export interface WriteRequest {
  processId: string;
  data: Uint8Array;
  writeId?: string | null;
  closeStdin?: boolean;
}

export type ProcessEvent =
  | { type: 'output'; processId: string; seq: number; stream: Stream; data: Buffer }
  | { type: 'exited'; processId: string; seq: number; exitCode: number; sandboxDenied: boolean }
  | { type: 'closed'; processId: string; seq: number };

export type ProcessEventListener = (event: ProcessEvent) => void;

export type ProcessSignal = 'interrupt';

/** Running processes: the `process/*` capability. */
export interface ExecBackend {
  start(request: StartProcessRequest): Promise<StartProcessResult>;
  read(processId: string, request?: ReadRequest): Promise<ReadResult>;
  write(request: WriteRequest): Promise<WriteStatus>;
  terminate(processId: string): Promise<{ running: boolean }>;
  signal(processId: string, signal: ProcessSignal): Promise<void>;
  resize(processId: string, rows: number, cols: number): Promise<void>;
  /** Every event of every process of this environment, in seq order per process. */
  subscribe(listener: ProcessEventListener): () => void;
}

/** What an environment says about itself; paths are plain absolute paths (the wire makes them URIs). */
export interface EnvironmentInfo {
  shell: { name: string; path: string };
  /** Version of the executor software (for Cordon, its package version). */
  executorVersion?: string;
  /** A stable id of the executor (same machine and account, same id across restarts). */
  providerId?: string;
  /** The executor's working directory; null when it no longer exists. */
  cwd?: string | null;
  userHomeDir?: string | null;
  platformOs?: string;
  prependPathDirs?: string[];
  temporaryDirectories?: string[];
  tempDir?: string | null;
  /** Capability flags the executor advertises (absent = none). */
  capabilities?: Capabilities;
}

/** Lets a transport slow the producers down when its peer reads slowly. */
export interface OutputFlowControl {
  pauseOutput(): void;
  resumeOutput(): void;
}

/** Metadata and directory entries have the wire's shapes; only data is a Buffer here, not base64. */
export type FileMetadata = WireMetadata;
export type DirectoryEntry = WireDirEntry;
export type { FsChangeKind };

export interface FsChange {
  watchId: string;
  path: string;
  kind: FsChangeKind;
}

export type FsChangeListener = (change: FsChange) => void;

/**
 * Per-call options. `sandbox` is the client's request to restrict this call (docs/sandbox.md); an
 * implementation that cannot enforce it must refuse the call rather than run it unrestricted.
 */
export interface FsCallOptions {
  sandbox?: SandboxRequest | null;
}

/** Files: the `fs/*` capability. Paths are absolute. */
export interface FileSystem {
  readFile(path: string, options?: FsCallOptions): Promise<Buffer>;
  /**
   * The file's bytes: whole (a Buffer) when it was read at once, else as consecutive chunks read
   * while they are consumed (bounded memory for large files). Resolves once the file is open, so
   * errors about the file itself come before any data. A chunk is valid only until the next one is
   * requested; ending the iteration early (`return()`) releases the file.
   */
  readFileStream(path: string, options?: FsCallOptions): Promise<Buffer | AsyncIterable<Buffer>>;
  writeFile(path: string, data: Uint8Array, options?: FsCallOptions): Promise<void>;
  createDirectory(path: string, args?: { recursive?: boolean }, options?: FsCallOptions): Promise<void>;
  getMetadata(path: string, options?: FsCallOptions): Promise<FileMetadata>;
  /**
   * getMetadata answered at once, where that needs no waiting (no sandboxed worker): undefined when
   * the call must go through getMetadata. Throws as getMetadata rejects. Optional: an environment
   * that always waits (a remote one) leaves it out.
   */
  getMetadataNow?(path: string, options?: FsCallOptions): FileMetadata | undefined;
  readDirectory(path: string, options?: FsCallOptions): Promise<DirectoryEntry[]>;
  remove(path: string, args?: { recursive?: boolean; force?: boolean }, options?: FsCallOptions): Promise<void>;
  copy(sourcePath: string, destinationPath: string, args: { recursive: boolean }, options?: FsCallOptions): Promise<void>;
  canonicalize(path: string, options?: FsCallOptions): Promise<string>;
  rename(sourcePath: string, destinationPath: string, options?: FsCallOptions): Promise<void>;
  /** Chunked access for files too big for one message. Handles belong to the environment. */
  open(path: string, mode: 'read' | 'write', options?: FsCallOptions): Promise<string>;
  /**
   * `open`, and the file's permission bits (mode & 0o777). With `permissions`, a file opened for
   * writing gets exactly those bits (not narrowed by the umask): a copy keeps its source's mode.
   */
  openWithMode(
    path: string,
    mode: 'read' | 'write',
    args: { permissions?: number | null },
    options?: FsCallOptions,
  ): Promise<{ handle: string; permissions: number }>;
  readBlock(handle: string, offset: number, length: number): Promise<{ data: Buffer; eof: boolean }>;
  writeBlock(handle: string, offset: number, data: Uint8Array): Promise<void>;
  close(handle: string): Promise<void>;
  watch(path: string, args?: { recursive?: boolean }, options?: FsCallOptions): Promise<string>;
  unwatch(watchId: string): Promise<void>;
  /** Changes seen by every watch of this environment. */
  subscribeChanges(listener: FsChangeListener): () => void;
  /** Breadth-first listing of a tree, bounded by `options` (fs/walk). */
  walk(path: string, options: WalkOptions, callOptions?: FsCallOptions): Promise<WalkResult>;
  /**
   * The environment's one missing-path watch (fs/watchMissing): fires once, through
   * subscribeMissingChanged, when a `missing` path or one of its missing ancestors appears or
   * `present` changes. Answers whether it is watching; a watchId not above the last one is refused.
   */
  watchMissing(watchId: number, missing: string[], present: string | null): Promise<boolean>;
  subscribeMissingChanged(listener: (watchId: number) => void): () => void;
  /** Client-named file handles (fs/open with `handleId`); `replace` creates or truncates at once. */
  openFile(handleId: string, path: string, mode: OpenFileMode, options?: FsCallOptions): Promise<void>;
  readFileBlock(handleId: string, offset: number, length: number): Promise<{ data: Buffer; eof: boolean }>;
  writeFileBlock(handleId: string, offset: number, data: Uint8Array): Promise<void>;
  /** Closing an unknown handle is not an error. */
  closeFile(handleId: string): Promise<void>;
}

export type { OpenFileMode };

export interface WalkOptions {
  maxDepth: number;
  maxDirectories: number;
  maxEntries: number;
  followDirectorySymlinks: boolean;
  pruneHiddenDirectories: boolean;
}

export interface WalkEntry {
  path: string;
  kind: 'file' | 'directory';
}

export interface WalkResult {
  entries: WalkEntry[];
  /** Directories below the root that could not be read. */
  errors: { path: string; message: string }[];
  truncated: boolean;
}

export interface EnvironmentConfigRequest {
  /** Absolute directory the project layers are looked up from (it need not exist). */
  cwd: string;
  configPaths: string[][];
  requirementsPaths: string[][];
}

export interface EnvironmentConfigLayer {
  source: string;
  /** Absolute directory. */
  baseDir: string;
  toml: string;
}

export interface EnvironmentConfig {
  userHomeDir: string;
  codexHomeDir: string;
  hostname: string;
  config: { layers: EnvironmentConfigLayer[]; cloudInsertionIndex: number };
  requirements: { layers: EnvironmentConfigLayer[]; cloudInsertionIndex: number };
}

export interface HttpHeader {
  name: string;
  value: string;
  /** The executor's environment variable whose value is appended to `value`. */
  valueEnvVar?: string | null;
}

export interface HttpRequest {
  method: string;
  url: string;
  requestId: string;
  headers: HttpHeader[];
  body?: Uint8Array | null;
  timeoutMs?: number | null;
  redirectPolicy?: 'follow' | 'stop';
  /** Answer with an empty body and deliver it as body deltas instead. */
  streamResponse?: boolean;
  /**
   * The server's network policy for this request: resolves each URL it is about to fetch (the
   * first and every redirect) to the addresses it may dial, or throws the refusal. Absent: any.
   */
  guard?: (url: URL, method: string) => Promise<string[]>;
}

export interface HttpResponse {
  status: number;
  headers: { name: string; value: string }[];
  body: Buffer;
}

/** One piece of a streamed response body; the last has `done: true`, no data, and `error` if it failed. */
export interface HttpBodyDelta {
  requestId: string;
  seq: number;
  data: Buffer;
  done: boolean;
  error: string | null;
}

/** Outbound HTTP made by the environment's machine (http/request). */
export interface HttpBackend {
  request(request: HttpRequest): Promise<HttpResponse>;
  subscribeBodyDeltas(listener: (delta: HttpBodyDelta) => void): () => void;
}

export interface Environment {
  readonly exec: ExecBackend;
  readonly fs: FileSystem;
  readonly http: HttpBackend;
  info(): Promise<EnvironmentInfo>;
  /** The environment machine's own Codex configuration, the selected keys only (environmentConfig/read). */
  readConfig(request: EnvironmentConfigRequest): Promise<EnvironmentConfig>;
  /** Kills every process (whole process groups) and releases resources. */
  close(): Promise<void>;
}
