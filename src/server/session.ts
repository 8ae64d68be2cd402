import { randomUUID } from 'node:crypto';
import type { FsChange, ProcessEvent } from '../environment/types.js';
import { LocalEnvironment } from '../local/local-environment.js';
import type { LocalEnvironmentOptions } from '../local/options.js';

/** Where a session's process events go while a connection is attached. */
export interface SessionSink {
  deliver(event: ProcessEvent): void;
  deliverFsChange(change: FsChange): void;
  notify?(method: string, params: unknown): void;
  request?(method: string, params: unknown, timeoutMs: number): Promise<unknown>;
}

/** A client's session: its environment (processes and their output) outlives connections. */
export class Session {
  readonly id = randomUUID();
  readonly environment: LocalEnvironment;
  sink: SessionSink | null = null;
  expiry: NodeJS.Timeout | undefined;
  private readonly unsubscribe: (() => void)[];

  constructor(environmentOptions: Partial<LocalEnvironmentOptions>) {
    this.environment = new LocalEnvironment(environmentOptions);
    this.unsubscribe = [
      this.environment.exec.subscribe((event) => this.sink?.deliver(event)),
      this.environment.fs.subscribeChanges((change) => this.sink?.deliverFsChange(change)),
    ];
  }

  /** A notification to the attached client; dropped while detached. */
  notify(method: string, params: unknown): void {
    this.sink?.notify?.(method, params);
  }

  /** A request to the attached client; rejects at once while detached. */
  request(method: string, params: unknown, timeoutMs: number): Promise<unknown> {
    const sink = this.sink;
    if (!sink?.request) return Promise.reject(new Error('no client attached'));
    return sink.request(method, params, timeoutMs);
  }

  async close(): Promise<void> {
    clearTimeout(this.expiry);
    this.sink = null;
    for (const off of this.unsubscribe) off();
    await this.environment.close();
  }
}
