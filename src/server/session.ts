import { randomUUID } from 'node:crypto';
import type { FsChange, ProcessEvent } from '../environment/types.js';
import { LocalEnvironment } from '../local/local-environment.js';
import type { LocalEnvironmentOptions } from '../local/options.js';
import { wireBodyDelta } from './config-http-handlers.js';

/** Where a session's process events go while a connection is attached. */
export interface SessionSink {
  deliver(event: ProcessEvent): void;
  deliverFsChange(change: FsChange): void;
  /** Any other notification of the session (fs/missingChanged, http/request/bodyDelta). */
  deliverNotification(method: string, params: unknown): void;
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
      // A session's watch and its HTTP streams notify whichever connection is attached (resume included).
      this.environment.fs.subscribeMissingChanged((watchId) => this.sink?.deliverNotification('fs/missingChanged', { watchId })),
      this.environment.http.subscribeBodyDeltas((delta) => this.sink?.deliverNotification('http/request/bodyDelta', wireBodyDelta(delta))),
    ];
  }

  async close(): Promise<void> {
    clearTimeout(this.expiry);
    this.sink = null;
    for (const off of this.unsubscribe) off();
    await this.environment.close();
  }
}
