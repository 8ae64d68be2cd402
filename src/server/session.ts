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
  /** A server-to-client request (network/policyRequest). */
  request?(method: string, params: unknown, timeoutMs: number): Promise<unknown>;
}

/** Streamed HTTP bodies are held upstream while detached, so only a few notifications can pile up. */
const MAX_MISSED_NOTIFICATIONS = 256;
/** File changes kept for a detached session; more are dropped (the oldest first). */
const MAX_HELD_FS_CHANGES = 1024;

/** A client's session: its environment (processes and their output) outlives connections. */
export class Session {
  readonly id = randomUUID();
  readonly environment: LocalEnvironment;
  private attached: SessionSink | null = null;
  /** Notifications that came while no connection was attached, delivered on the next attach (bounded). */
  private readonly missed: { method: string; params: unknown }[] = [];
  expiry: NodeJS.Timeout | undefined;
  private readonly unsubscribe: (() => void)[];
  /**
   * Watch reports made while no connection was attached. Process output needs no such queue (a
   * resumed client reads it by seq), but a watch report has no seq: without this, a change during
   * a reconnect would be lost, and the 0.171 CLI does not re-register its watches after a resume.
   */
  private heldFsChanges: FsChange[] = [];

  /** Where notifications go; null while no connection is attached (then HTTP bodies wait upstream). */
  get sink(): SessionSink | null {
    return this.attached;
  }

  set sink(sink: SessionSink | null) {
    this.attached = sink;
    this.environment.http.hold(sink === null);
  }

  /** A notification that must not be lost to a dropped connection: kept until a connection attaches. */
  private notify(method: string, params: unknown): void {
    if (this.attached) this.attached.deliverNotification(method, params);
    else if (this.missed.length < MAX_MISSED_NOTIFICATIONS) this.missed.push({ method, params });
  }

  constructor(environmentOptions: Partial<LocalEnvironmentOptions>) {
    this.environment = new LocalEnvironment(environmentOptions);
    this.environment.http.hold(true);
    this.unsubscribe = [
      this.environment.exec.subscribe((event) => this.sink?.deliver(event)),
      this.environment.fs.subscribeChanges((change) => this.fsChanged(change)),
      // A session's watch and its HTTP streams notify whichever connection is attached (resume included).
      this.environment.fs.subscribeMissingChanged((watchId) => this.notify('fs/missingChanged', { watchId })),
      this.environment.http.subscribeBodyDeltas((delta) => this.notify('http/request/bodyDelta', wireBodyDelta(delta))),
    ];
  }

  /** A notification to the attached client; dropped while detached (network/policyDecision). */
  notifyIfAttached(method: string, params: unknown): void {
    this.sink?.deliverNotification(method, params);
  }

  /** A request to the attached client; rejects at once while detached. */
  request(method: string, params: unknown, timeoutMs: number): Promise<unknown> {
    const sink = this.sink;
    if (!sink?.request) return Promise.reject(new Error('no client attached'));
    return sink.request(method, params, timeoutMs);
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
    for (const m of this.missed.splice(0)) sink.deliverNotification(m.method, m.params);
  }

  async close(): Promise<void> {
    clearTimeout(this.expiry);
    this.attached = null;
    for (const off of this.unsubscribe) off();
    await this.environment.close();
  }
}
