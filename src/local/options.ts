/** The named bounds of a local environment (ARCHITECTURE.md: every bound is named and configurable). */
export interface LocalEnvironmentOptions {
  /** Most recent output bytes kept per process. */
  retainBytesPerProcess: number;
  /** How long an exited, closed process stays readable (and its id taken). */
  retainExitedMs: number;
  /** Processes a session may hold at once (running or retained). */
  maxProcesses: number;
  /** Largest output chunk notified or returned by a read. */
  maxChunkBytes: number;
  /** The environment `envPolicy.inherit` draws from. Defaults to this process's environment. */
  serverEnv: Readonly<Record<string, string | undefined>>;
}

export const defaultLocalEnvironmentOptions = (): LocalEnvironmentOptions => ({
  retainBytesPerProcess: 1024 * 1024,
  retainExitedMs: 30_000,
  maxProcesses: 1024,
  maxChunkBytes: 64 * 1024,
  serverEnv: process.env,
});
