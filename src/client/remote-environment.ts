import { fileURLToPath } from 'node:url';
import { sandboxToWire } from '../environment/sandbox-wire.js';
import type {
  DirectoryEntry,
  Environment,
  EnvironmentConfig,
  EnvironmentConfigRequest,
  EnvironmentInfo,
  ExecBackend,
  FileMetadata,
  FileSystem,
  FsCallOptions,
  FsChangeListener,
  HttpBackend,
  HttpBodyDelta,
  HttpRequest,
  HttpResponse,
  OutputFlowControl,
  ProcessEventListener,
  ProcessSignal,
  ReadRequest,
  ReadResult,
  StartProcessRequest,
  WriteRequest,
  WriteStatus,
} from '../environment/types.js';
import type { WireEnvironmentInfo } from '../protocol/initialize.js';
import { type ClientOptions, ExecServerClient } from './exec-server-client.js';
import type { FsRequestOptions } from './fs-client.js';

const wireOptions = (o?: FsCallOptions): FsRequestOptions => (o?.sandbox ? { sandbox: sandboxToWire(o.sandbox) } : {});

const plainPath = (p: string): string => (p.startsWith('file:') ? fileURLToPath(p) : p);
const plainOrNull = (p: string | null | undefined): string | null | undefined => (p ? plainPath(p) : p);

/** An `environment/info` answer (any generation) as an EnvironmentInfo; absent keys stay absent. */
export function environmentInfoFromWire(w: Partial<WireEnvironmentInfo> & { shell: EnvironmentInfo['shell'] }): EnvironmentInfo {
  const info: EnvironmentInfo = { shell: w.shell };
  if (w.executorVersion !== undefined) info.executorVersion = w.executorVersion;
  if (w.providerId !== undefined) info.providerId = w.providerId;
  if (w.cwd !== undefined) info.cwd = plainOrNull(w.cwd);
  if (w.userHomeDir !== undefined) info.userHomeDir = plainOrNull(w.userHomeDir);
  if (w.platformOs !== undefined) info.platformOs = w.platformOs;
  if (w.prependPathDirs) info.prependPathDirs = w.prependPathDirs.map(plainPath);
  if (w.temporaryDirectories) info.temporaryDirectories = w.temporaryDirectories.map(plainPath);
  if (w.tempDir !== undefined) info.tempDir = plainOrNull(w.tempDir);
  if (w.capabilities) info.capabilities = w.capabilities;
  return info;
}

/** An Environment whose processes run on a Cordon server; indistinguishable from a local one. */
export class RemoteEnvironment implements Environment, OutputFlowControl {
  readonly exec: ExecBackend;
  readonly fs: FileSystem;
  readonly http: HttpBackend;

  constructor(readonly client: ExecServerClient) {
    this.exec = {
      start: async (r: StartProcessRequest) => {
        const started = await client.startProcess({
          processId: r.processId,
          argv: r.argv,
          cwd: r.cwd,
          env: r.env,
          tty: r.tty,
          pipeStdin: r.pipeStdin ?? false,
          arg0: r.arg0 ?? null,
          envPolicy: r.envPolicy ?? null,
          ...(r.rows ? { rows: r.rows } : {}),
          ...(r.cols ? { cols: r.cols } : {}),
          ...(r.sandbox ? { sandbox: sandboxToWire(r.sandbox) } : {}),
          ...(r.enforceManagedNetwork ? { enforceManagedNetwork: true } : {}),
        });
        return { processId: started.processId, sandboxType: started.sandboxType };
      },
      read: (processId: string, r: ReadRequest = {}): Promise<ReadResult> =>
        client.read(processId, { afterSeq: r.afterSeq ?? null, maxBytes: r.maxBytes ?? null, waitMs: r.waitMs ?? null }),
      write: (r: WriteRequest): Promise<WriteStatus> =>
        client.write(r.processId, r.data, {
          ...(r.writeId ? { writeId: r.writeId } : {}),
          ...(r.closeStdin ? { closeStdin: true } : {}),
        }),
      terminate: (processId: string) => client.terminate(processId),
      signal: (processId: string, signal: ProcessSignal) => client.signal(processId, signal),
      resize: (processId: string, rows: number, cols: number) => client.resize(processId, rows, cols),
      subscribe: (listener: ProcessEventListener) => client.onEvent(listener),
    };
    const f = client.fs;
    this.fs = {
      readFile: (p, o) => f.readFile(p, wireOptions(o)),
      // One fs/readFile (the server streams it); a caller wanting bounded memory uses client.fs.readFileChunks.
      readFileStream: (p, o) => f.readFile(p, wireOptions(o)),
      writeFile: (p, d, o) => f.writeFile(p, d, wireOptions(o)),
      createDirectory: (p, a, o) => f.createDirectory(p, a, wireOptions(o)),
      getMetadata: (p, o): Promise<FileMetadata> => f.getMetadata(p, wireOptions(o)),
      readDirectory: (p, o): Promise<DirectoryEntry[]> => f.readDirectory(p, wireOptions(o)),
      remove: (p, a, o) => f.remove(p, a, wireOptions(o)),
      copy: (s, d, a, o) => f.copy(s, d, a, wireOptions(o)),
      canonicalize: (p, o) => f.canonicalize(p, wireOptions(o)),
      rename: (s, d, o) => f.rename(s, d, wireOptions(o)),
      open: (p, m, o) => f.open(p, m, wireOptions(o)),
      openWithMode: (p, m, a, o) => f.openWithMode(p, m, a, wireOptions(o)),
      readBlock: (h, off, len) => f.readBlock(h, off, len),
      writeBlock: (h, off, d) => f.writeBlock(h, off, d),
      close: (h) => f.close(h),
      watch: async (p, a, o) =>
        (await client.request('fs/watch', { path: p, recursive: a?.recursive ?? false, ...wireOptions(o) })).watchId,
      unwatch: (id) => f.unwatch(id),
      subscribeChanges: (listener: FsChangeListener) => client.onFsChange(listener),
      walk: (p, options, o) => f.walk(p, options, wireOptions(o)),
      watchMissing: (id, missing, present) => f.watchMissing(id, missing, present),
      subscribeMissingChanged: (listener) => client.onServerNotification('fs/missingChanged', (p) => listener(p.watchId as number)),
      openFile: (id, p, mode, o) => f.openFile(id, p, mode, wireOptions(o)),
      readFileBlock: (id, off, len) => f.readFileBlock(id, off, len),
      writeFileBlock: (id, off, d) => f.writeFileBlock(id, off, d),
      closeFile: (id) => f.closeFile(id),
    };
    this.http = {
      request: async (r: HttpRequest): Promise<HttpResponse> => {
        const res = await client.httpRequest({
          method: r.method,
          url: r.url,
          requestId: r.requestId,
          headers: r.headers,
          ...(r.body ? { bodyBase64: Buffer.from(r.body).toString('base64') } : {}),
          timeoutMs: r.timeoutMs ?? null,
          redirectPolicy: r.redirectPolicy ?? 'follow',
          streamResponse: r.streamResponse ?? false,
        });
        return { status: res.status, headers: res.headers, body: Buffer.from(res.bodyBase64, 'base64') };
      },
      subscribeBodyDeltas: (listener: (d: HttpBodyDelta) => void) =>
        client.onServerNotification('http/request/bodyDelta', (p) =>
          listener({
            requestId: p.requestId as string,
            seq: p.seq as number,
            data: Buffer.from((p.deltaBase64 as string | undefined) ?? '', 'base64'),
            done: p.done === true,
            error: (p.error as string | null | undefined) ?? null,
          }),
        ),
    };
  }

  async readConfig(request: EnvironmentConfigRequest): Promise<EnvironmentConfig> {
    const r = await this.client.readEnvironmentConfig(request);
    const plain = (u: string): string => (u.startsWith('file:') ? fileURLToPath(u) : u);
    const layers = (ls: { source: string; baseDir: string; toml: string }[]) =>
      ls.map((l) => ({ source: l.source, baseDir: plain(l.baseDir), toml: l.toml }));
    return {
      userHomeDir: plain(r.userHomeDir),
      codexHomeDir: plain(r.codexHomeDir),
      hostname: r.hostname,
      config: { layers: layers(r.config.layers), cloudInsertionIndex: r.config.cloudInsertionIndex },
      requirements: { layers: layers(r.requirements.layers), cloudInsertionIndex: r.requirements.cloudInsertionIndex },
    };
  }

  static async connect(options: ClientOptions): Promise<RemoteEnvironment> {
    return new RemoteEnvironment(await ExecServerClient.connect(options));
  }

  /** Stops reading from the server until `resumeOutput` (back-pressure reaches the processes). */
  pauseOutput(): void {
    this.client.pauseReading();
  }

  resumeOutput(): void {
    this.client.resumeReading();
  }

  /** The server's own description, with its URIs turned back into plain paths. */
  async info(): Promise<EnvironmentInfo> {
    return environmentInfoFromWire(await this.client.environmentInfo());
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
