/**
 * Whether a sandboxed process's failure looks like a sandbox denial, by the reference's rule
 * (docs/clients.md, "What differs between generations"; checked against the 0.171 executor): exit
 * code not 0, and either the output (stdout and stderr, case-insensitive) contains one of these
 * phrases, or the exit code is 128 + SIGSYS (a seccomp kill).
 */
const PHRASES = [
  'operation not permitted',
  'permission denied',
  'read-only file system',
  'seccomp',
  'sandbox',
  'landlock',
  'failed to write file',
];
const LONGEST = Math.max(...PHRASES.map((p) => p.length));
const SIGSYS_EXIT = 128 + 31;

/**
 * Scans output once, as it arrives: each byte is looked at once (plus the last few bytes of the
 * previous chunk, so a phrase split across chunks is still found) and scanning stops at the first
 * match. The phrases are ASCII, so latin1 decoding keeps every byte one character.
 */
export class SandboxDenialScanner {
  private tail = '';
  private found = false;

  push(data: Buffer): void {
    if (this.found || data.length === 0) return;
    const text = (this.tail + data.toString('latin1')).toLowerCase();
    if (PHRASES.some((p) => text.includes(p))) {
      this.found = true;
      this.tail = '';
      return;
    }
    this.tail = text.slice(-(LONGEST - 1));
  }

  denied(exitCode: number): boolean {
    return exitCode !== 0 && (this.found || exitCode === SIGSYS_EXIT);
  }
}
