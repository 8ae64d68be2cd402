/**
 * The CLI's own stdout and stderr as a well-behaved Unix filter uses them: writes respect the
 * reader's pace (a full pipe pauses whoever produces the output), everything written is flushed
 * before the process exits, and a reader that went away (EPIPE, `| head`) ends the command quietly.
 */

/** 128 + SIGPIPE: the exit status of a command killed by a closed pipe, as shells report it. */
export const EXIT_BROKEN_PIPE = 141;

export type Writable = NodeJS.WritableStream & { writableLength: number; writableNeedDrain: boolean; destroyed: boolean };

/**
 * Resolves once everything written to `stream` so far has been handed to the OS: true, or false
 * when the stream failed (a closed pipe).
 */
export function flushed(stream: Writable): Promise<boolean> {
  return new Promise((resolve) => {
    if (stream.destroyed) return resolve(false);
    if (stream.writableLength === 0 && !stream.writableNeedDrain) return resolve(true);
    stream.write('', (err?: Error | null) => resolve(!err));
  });
}

/** Flushes stdout and stderr; call before `process.exit`, which would drop what a pipe has not taken yet. */
export async function flushStdio(): Promise<void> {
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
}

/**
 * Output to stdout/stderr with back-pressure: `write` returns false while either is full, and
 * `pause`/`resume` are called as the pair fills and drains. `onBrokenPipe` runs once when stdout's
 * reader is gone; later writes are dropped. Errors on stderr are ignored (nowhere left to report).
 */
export class StdioSink {
  private full = new Set<Writable>();
  private broken = false;

  constructor(
    private readonly flow: { pause(): void; resume(): void },
    private readonly onBrokenPipe: () => void,
    private readonly stdout: Writable = process.stdout as unknown as Writable,
    private readonly stderr: Writable = process.stderr as unknown as Writable,
  ) {
    // EPIPE is the usual end (`| head`); any other write error leaves stdout just as unusable.
    stdout.on('error', () => this.breakPipe());
    stderr.on('error', () => undefined);
  }

  get brokenPipe(): boolean {
    return this.broken;
  }

  write(stream: 'stdout' | 'stderr', data: Uint8Array): void {
    if (this.broken && stream === 'stdout') return;
    const target = stream === 'stdout' ? this.stdout : this.stderr;
    if (target.destroyed) return;
    if (target.write(data) || this.full.has(target)) return;
    if (this.full.size === 0) this.flow.pause();
    this.full.add(target);
    target.once('drain', () => {
      this.full.delete(target);
      if (this.full.size === 0) this.flow.resume();
    });
  }

  private breakPipe(): void {
    if (this.broken) return;
    this.broken = true;
    if (this.full.delete(this.stdout) && this.full.size === 0) this.flow.resume();
    this.onBrokenPipe();
  }
}
