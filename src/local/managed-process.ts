import type { OutputChunk, ProcessEvent, ReadRequest, ReadResult, Stream, WriteStatus } from '../environment/types.js';
import type { ChildHandle, ChildListener } from './child.js';
import { OutputLog } from './output-log.js';
import { SandboxDenialScanner } from './sandbox-denial.js';

const MAX_REMEMBERED_WRITE_IDS = 4096;
/** setTimeout's largest delay; longer long-polls are clamped to it. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * One process of a session: its seq counter (shared by output, exited and closed), retained output,
 * long-poll waiters and stdin. It knows nothing of the wire.
 */
export class ManagedProcess {
  private seq = 0;
  private readonly log: OutputLog;
  private waiters = new Set<() => void>();
  private writeIds = new Set<string>();
  private stdinOpen = true;
  child: ChildHandle | undefined;
  exited = false;
  exitCode: number | null = null;
  closed = false;
  sandboxDenied = false;
  /** Set for a process that runs with a sandbox: its output is scanned for denials. */
  private denialScanner: SandboxDenialScanner | undefined;

  constructor(
    readonly processId: string,
    retainBytes: number,
    private readonly emit: (event: ProcessEvent) => void,
    private readonly onClosed: (process: ManagedProcess) => void,
  ) {
    this.log = new OutputLog(retainBytes);
  }

  /** Marks the process as sandboxed (before it starts): its exit then says whether a denial is likely. */
  watchForSandboxDenial(): void {
    this.denialScanner ??= new SandboxDenialScanner();
  }

  get running(): boolean {
    return !this.exited;
  }

  output(stream: Stream, data: Buffer): void {
    const chunk: OutputChunk = { seq: ++this.seq, stream, data };
    this.log.push(chunk);
    this.denialScanner?.push(data);
    this.emit({ type: 'output', processId: this.processId, ...chunk });
    this.wake();
  }

  markExited(exitCode: number): void {
    this.exited = true;
    this.exitCode = exitCode;
    this.sandboxDenied = this.denialScanner?.denied(exitCode) ?? false;
    this.emit({ type: 'exited', processId: this.processId, seq: ++this.seq, exitCode, sandboxDenied: this.sandboxDenied });
    this.wake();
  }

  markClosed(): void {
    this.closed = true;
    this.emit({ type: 'closed', processId: this.processId, seq: ++this.seq });
    this.wake();
    this.onClosed(this);
  }

  private wake(): void {
    if (this.waiters.size === 0) return;
    const waiters = this.waiters;
    this.waiters = new Set();
    for (const w of waiters) w();
  }

  /** The callbacks a child reports to. */
  listener(): ChildListener {
    return {
      output: (stream, data) => this.output(stream, data),
      exited: (exitCode) => this.markExited(exitCode),
      closed: () => this.markClosed(),
    };
  }

  async read(request: ReadRequest = {}): Promise<ReadResult> {
    const afterSeq = request.afterSeq ?? 0;
    const ready = (): boolean => this.exited || this.closed || this.log.hasAfter(afterSeq);
    const waitMs = Math.min(request.waitMs ?? 0, MAX_TIMER_MS);
    if (waitMs > 0 && !ready() && !request.signal?.aborted) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.waiters.delete(check);
          request.signal?.removeEventListener('abort', done);
          resolve();
        };
        const check = (): void => {
          if (ready()) done();
          else this.waiters.add(check);
        };
        const timer = setTimeout(done, waitMs);
        request.signal?.addEventListener('abort', done, { once: true });
        this.waiters.add(check);
      });
    }
    const chunks = this.log.read(afterSeq, request.maxBytes ?? null);
    const last = chunks[chunks.length - 1];
    const gap = this.log.gapAfter(afterSeq);
    return {
      ...(gap ? { droppedOutput: gap } : {}),
      chunks,
      nextSeq: last ? last.seq + 1 : this.seq + 1,
      exited: this.exited,
      exitCode: this.exitCode,
      closed: this.closed,
      failure: null,
      sandboxDenied: this.sandboxDenied,
    };
  }

  async write(data: Uint8Array, writeId: string | null | undefined, closeStdin: boolean): Promise<WriteStatus> {
    const child = this.child;
    if (!child || !child.hasStdin) return 'stdinClosed';
    if (writeId) {
      if (this.writeIds.has(writeId)) return 'accepted';
      this.writeIds.add(writeId);
      if (this.writeIds.size > MAX_REMEMBERED_WRITE_IDS) {
        const oldest = this.writeIds.values().next().value as string;
        this.writeIds.delete(oldest);
      }
    }
    if (this.exited || !this.stdinOpen) return 'stdinClosed';
    const pending = data.length > 0 ? child.write(data) : Promise.resolve();
    if (closeStdin) {
      this.stdinOpen = false;
      child.endStdin();
    }
    try {
      await pending;
    } catch {
      this.stdinOpen = false;
      return 'stdinClosed';
    }
    return 'accepted';
  }

  /** Kills the whole process group. Returns whether the process was still running. */
  terminate(): boolean {
    const wasRunning = this.running;
    this.child?.terminate();
    return wasRunning;
  }
}
