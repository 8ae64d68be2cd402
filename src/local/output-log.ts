import type { OutputChunk } from '../environment/types.js';

/**
 * The retained output of one process: chunks in seq order, trimmed from the front to the most recent
 * `retainBytes` (the newest chunk is always kept). What was dropped is remembered as the seq of the
 * last dropped chunk, so a read that reaches back past it can say which seqs it skips (`gapAfter`).
 */
export class OutputLog {
  private chunks: OutputChunk[] = [];
  private head = 0;
  private bytes = 0;
  /** Seq of the newest chunk dropped (0: none). Output seqs are consecutive, so all up to it are gone. */
  private droppedThrough = 0;

  constructor(private readonly retainBytes: number) {}

  get retainedBytes(): number {
    return this.bytes;
  }

  push(chunk: OutputChunk): void {
    this.chunks.push(chunk);
    this.bytes += chunk.data.length;
    while (this.bytes > this.retainBytes && this.chunks.length - this.head > 1) {
      const dropped = this.chunks[this.head] as OutputChunk;
      this.chunks[this.head] = undefined as unknown as OutputChunk;
      this.head++;
      this.bytes -= dropped.data.length;
      this.droppedThrough = dropped.seq;
    }
    if (this.head > 1024 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }

  /** Index of the first retained chunk with seq > afterSeq. */
  private firstAfter(afterSeq: number): number {
    let lo = this.head;
    let hi = this.chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.chunks[mid] as OutputChunk).seq <= afterSeq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  hasAfter(afterSeq: number): boolean {
    return this.firstAfter(afterSeq) < this.chunks.length;
  }

  /** The seqs a read after `afterSeq` skips because they are no longer retained, if any. */
  gapAfter(afterSeq: number): { fromSeq: number; toSeq: number } | undefined {
    return afterSeq < this.droppedThrough ? { fromSeq: afterSeq + 1, toSeq: this.droppedThrough } : undefined;
  }

  /** Chunks after `afterSeq` whose sizes sum to at most `maxBytes`, but always at least one. */
  read(afterSeq: number, maxBytes: number | null): OutputChunk[] {
    const out: OutputChunk[] = [];
    let total = 0;
    for (let i = this.firstAfter(afterSeq); i < this.chunks.length; i++) {
      const chunk = this.chunks[i] as OutputChunk;
      if (maxBytes !== null && out.length > 0 && total + chunk.data.length > maxBytes) break;
      out.push(chunk);
      total += chunk.data.length;
    }
    return out;
  }
}
