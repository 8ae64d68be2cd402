import { homedir, hostname } from 'node:os';
import path from 'node:path';
import type { Environment, EnvironmentConfig, EnvironmentConfigRequest, EnvironmentInfo, OutputFlowControl } from '../environment/types.js';
import { FsWorkerPool } from '../sandbox/fs-worker-pool.js';
import { LinuxSandbox } from '../sandbox/linux-sandbox.js';
import { readEnvironmentConfig } from './environment-config.js';
import { describeLocalEnvironment } from './environment-info.js';
import { LocalFileSystem } from './file-system.js';
import { HttpRequests } from './http-requests.js';
import { defaultLocalEnvironmentOptions, type LocalEnvironmentOptions } from './options.js';
import { ProcessTable } from './process-table.js';
import { PtyHost } from './pty-host.js';
import { Spawner } from './spawner.js';

/** Sandboxed fs workers for an environment that was not handed a shared pool. */
export const defaultFsWorkerPool = (sandbox: LinuxSandbox, env: Readonly<Record<string, string | undefined>>): FsWorkerPool =>
  new FsWorkerPool({ sandbox, maxWorkers: 8, idleMs: 30_000, serverEnv: env });

/** A sandbox runtime for an environment that was not handed a shared one. */
export const defaultLinuxSandbox = (env: Readonly<Record<string, string | undefined>>): LinuxSandbox =>
  new LinuxSandbox({ searchPath: env.PATH, tmpdir: env.TMPDIR, maxGlobMatches: 8192 });

/** Runs things on this machine. One per session: processIds are per session. */
export class LocalEnvironment implements Environment, OutputFlowControl {
  readonly options: LocalEnvironmentOptions;
  readonly exec: ProcessTable;
  readonly fs: LocalFileSystem;
  readonly http: HttpRequests;
  private readonly ownSandbox: LinuxSandbox | undefined;
  private readonly ownFsWorkers: FsWorkerPool | undefined;
  private readonly ownPtyHost: PtyHost | undefined;
  private readonly ownSpawner: Spawner | undefined;

  constructor(options: Partial<LocalEnvironmentOptions> = {}) {
    const merged = { ...defaultLocalEnvironmentOptions(), ...options };
    this.ownSandbox = merged.sandbox ? undefined : defaultLinuxSandbox(merged.serverEnv);
    const sandbox = (merged.sandbox ?? this.ownSandbox) as LinuxSandbox;
    this.ownFsWorkers = merged.fsWorkers ? undefined : defaultFsWorkerPool(sandbox, merged.serverEnv);
    this.ownPtyHost = merged.ptyHost ? undefined : new PtyHost();
    this.ownSpawner = merged.spawner ? undefined : new Spawner();
    this.options = {
      ...merged,
      sandbox,
      fsWorkers: merged.fsWorkers ?? this.ownFsWorkers,
      ptyHost: merged.ptyHost ?? this.ownPtyHost,
      spawner: merged.spawner ?? this.ownSpawner,
    };
    this.exec = new ProcessTable(this.options);
    this.fs = new LocalFileSystem(
      {
        maxOpenFiles: this.options.maxOpenFiles,
        maxBlockBytes: this.options.maxBlockBytes,
        maxWatches: this.options.maxWatches,
        watchCoalesceMs: this.options.watchCoalesceMs,
        maxPendingWatchPaths: this.options.maxPendingWatchPaths,
        maxUnsizedReadBytes: this.options.maxUnsizedReadBytes,
        unsizedReadTimeoutMs: this.options.unsizedReadTimeoutMs,
      },
      this.options.fsWorkers,
      this.options.ceiling,
    );
    this.http = new HttpRequests(this.options.serverEnv, this.options.http);
  }

  readConfig(request: EnvironmentConfigRequest): Promise<EnvironmentConfig> {
    const env = this.options.serverEnv;
    const home = env.HOME || homedir();
    const codexHome = this.options.codexHome ?? (env.CODEX_HOME ? path.resolve(env.CODEX_HOME) : path.join(home, '.codex'));
    return readEnvironmentConfig(request, {
      codexHome,
      userHome: home,
      hostname: hostname(),
      requirementsFile: this.options.requirementsFile,
    });
  }

  info(): Promise<EnvironmentInfo> {
    return Promise.resolve(this.infoNow());
  }

  /** The same, at once (no waiting: a few local syscalls). */
  infoNow(): EnvironmentInfo {
    return describeLocalEnvironment(this.options.serverEnv);
  }

  pauseOutput(): void {
    this.exec.pauseOutput();
    this.http.pause();
  }

  resumeOutput(): void {
    this.exec.resumeOutput();
    this.http.resume();
  }

  async close(): Promise<void> {
    this.http.closeAll();
    await Promise.all([this.exec.close(), this.fs.dispose()]);
    await Promise.all([this.ownFsWorkers?.dispose(), this.ownPtyHost?.dispose(), this.ownSpawner?.dispose()]);
    this.ownSandbox?.dispose();
  }
}
