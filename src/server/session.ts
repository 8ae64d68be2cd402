import { randomUUID } from 'node:crypto';
import type { FsChange, ProcessEvent } from '../environment/types.js';
import { LocalEnvironment } from '../local/local-environment.js';
import type { LocalEnvironmentOptions } from '../local/options.js';

/** Where a session's process events go while a connection is attached. */
export interface SessionSink {
  deliver(event: ProcessEvent): void;
  deliverFsChange(change: FsChange): void;
}

/** File changes kept for a detached session; more are dropped (the oldest first). */
const MAX_HELD_FS_CHANGES = 1024;

/** A client's session: its environment (processes and their output) outlives connections. */
export class Session {
  readonly id = randomUUID();
  readonly environment: LocalEnvironment;
  sink: SessionSink | null = null;
  expiry: NodeJS.Timeout | undefined;
  private readonly unsubscribe: (() => void)[];
  /**
   * Watch reports made while no connection was attached. Process output needs no such queue (a
   * resumed client reads it by seq), but a watch report has no seq: without this, a change during
   * a reconnect would be lost, and the 0.171 CLI does not re-register its watches after a resume.
   */
  private heldFsChanges: FsChange[] = [];

  constructor(environmentOptions: Partial<LocalEnvironmentOptions>) {
    this.environment = new LocalEnvironment(environmentOptions);
    this.unsubscribe = [
      this.environment.exec.subscribe((event) => this.sink?.deliver(event)),
      this.environment.fs.subscribeChanges((change) => this.fsChanged(change)),
    ];
  }

  private fsChanged(change: FsChange): void {
    if (this.sink) return this.sink.deliverFsChange(change);
    this.heldFsChanges.push(change);
    if (this.heldFsChanges.length > MAX_HELD_FS_CHANGES) this.heldFsChanges.shift();
  }

  /** Hands what happened while detached to the (new) connection, once it has answered `initialize`. */
  deliverHeld(): void {
    const sink = this.sink;
    if (!sink) return;
    const held = this.heldFsChanges;
    this.heldFsChanges = [];
    for (const change of held) sink.deliverFsChange(change);
  }

  async close(): Promise<void> {
    clearTimeout(this.expiry);
    this.sink = null;
    for (const off of this.unsubscribe) off();
    await this.environment.close();
  }
}
