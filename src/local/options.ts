import type { PermissionCeiling } from '../sandbox/ceiling.js';
import type { FsWorkerPool } from '../sandbox/fs-worker-pool.js';
import type { LinuxSandbox } from '../sandbox/linux-sandbox.js';
import { defaultHttpLimits, type HttpLimits } from './http-requests.js';
import type { PtyHost } from './pty-host.js';
import type { Spawner } from './spawner.js';

/** The named bounds of a local environment (docs/architecture.md: every bound is configurable). */
export interface LocalEnvironmentOptions {
  /** Most recent output bytes kept per process. */
  retainBytesPerProcess: number;
  /** How long an exited, closed process stays readable (and its id taken). */
  retainExitedMs: number;
  /** Processes a session may hold at once (running or retained). */
  maxProcesses: number;
  /** Largest output chunk notified or returned by a read. */
  maxChunkBytes: number;
  /** Open files (fs/open) a session may hold. */
  maxOpenFiles: number;
  /** Largest block fs/readBlock returns or fs/writeBlock takes. */
  maxBlockBytes: number;
  /** Watches (fs/watch) a session may hold. */
  maxWatches: number;
  /** How long watch events are gathered and deduplicated before they are reported. */
  watchCoalesceMs: number;
  /** Distinct changed paths one watch holds between reports; more are dropped. */
  maxPendingWatchPaths: number;
  /** fs/readFile of a file of unknown size (a device, a FIFO, a /proc file): most bytes read; more is refused. */
  maxUnsizedReadBytes: number;
  /** ...and how long such a read may wait for its end of data before it is refused (also how long fs/writeFile to a FIFO or device may wait for a reader and for room). */
  unsizedReadTimeoutMs: number;
  /**
   * Run each unsandboxed pipe child under the keeper (local/keeper.ts), so that nothing it starts,
   * setsid children included, outlives its session or the server (even after kill -9). The keepers
   * are forked by the spawn helper (local/spawner.ts); without perl it is skipped.
   */
  containChildren: boolean;
  /** Forks the keepers of unsandboxed pipe children; shared by the sessions of a server. None: the environment starts its own. */
  spawner: Spawner | undefined;
  /** Runs sandboxed processes; shared by the sessions of a server. None: sandboxed starts are refused. */
  sandbox: LinuxSandbox | undefined;
  /** The most access any call may get; each call runs with its sandbox intersected with this. */
  ceiling: PermissionCeiling | undefined;
  /** Sandboxed fs workers; shared by the sessions of a server. None: sandboxed fs calls are refused. */
  fsWorkers: FsWorkerPool | undefined;
  /** Runs terminal (tty) processes on their own thread; shared by the sessions of a server. None: the environment starts its own. */
  ptyHost: PtyHost | undefined;
  /** The environment `envPolicy.inherit` draws from. Defaults to this process's environment. */
  serverEnv: Readonly<Record<string, string | undefined>>;
  /** The Codex home environmentConfig/read reads; undefined: `$CODEX_HOME` of serverEnv, else `~/.codex`. */
  codexHome: string | undefined;
  /** The managed requirements file environmentConfig/read reads. */
  requirementsFile: string;
  /** Bounds of http/request. */
  http: HttpLimits;
}

export const defaultLocalEnvironmentOptions = (): LocalEnvironmentOptions => ({
  retainBytesPerProcess: 1024 * 1024,
  retainExitedMs: 30_000,
  maxProcesses: 1024,
  maxChunkBytes: 64 * 1024,
  maxOpenFiles: 64,
  maxBlockBytes: 16 * 1024 * 1024,
  maxWatches: 64,
  watchCoalesceMs: 50,
  maxPendingWatchPaths: 10_000,
  containChildren: true,
  maxUnsizedReadBytes: 48 * 1024 * 1024,
  unsizedReadTimeoutMs: 10_000,
  sandbox: undefined,
  fsWorkers: undefined,
  ptyHost: undefined,
  spawner: undefined,
  ceiling: undefined,
  serverEnv: process.env,
  codexHome: undefined,
  requirementsFile: '/etc/codex/requirements.toml',
  http: defaultHttpLimits(),
});
