import { closeSync, openSync, writeSync } from 'node:fs';
import tty from 'node:tty';
import type { ApprovalDecision, ApprovalHandler, ApprovalRequest } from '../client/network-approvals.js';

export interface TerminalPromptHooks {
  /** Stop forwarding our stdin while the question is on the terminal, and resume after. */
  pauseInput?(): void;
  resumeInput?(): void;
}

/**
 * Asks on the controlling terminal (/dev/tty, so it works with stdin redirected). With no terminal
 * the answer is deny. One question at a time; NetworkApprovals already shares a question between
 * identical requests and remembers `session` answers.
 */
export function terminalApprovalHandler(hooks: TerminalPromptHooks = {}): ApprovalHandler {
  let queue: Promise<unknown> = Promise.resolve();
  const askOne = (r: ApprovalRequest): Promise<ApprovalDecision> =>
    new Promise<ApprovalDecision>((resolve) => {
      let fd: number;
      try {
        fd = openSync('/dev/tty', 'r+');
      } catch {
        return resolve('deny');
      }
      if (!tty.isatty(fd)) {
        closeSync(fd);
        return resolve('deny');
      }
      hooks.pauseInput?.();
      // A tty stream (not a file stream): its read can be cancelled, so the CLI can exit after asking.
      const input = new tty.ReadStream(fd);
      input.setRawMode(true);
      let done = false;
      const finish = (d: ApprovalDecision): void => {
        if (done) return;
        done = true;
        try {
          input.setRawMode(false);
          writeSync(fd, '\r\n');
        } catch {
          // the terminal went away
        }
        input.destroy();
        hooks.resumeInput?.();
        resolve(d);
      };
      writeSync(
        fd,
        `\r\ncordon: process ${r.processId} wants ${r.protocol} access to ${r.host}:${r.port}. Allow? [o]nce, for this [s]ession, [N]o: `,
      );
      input.on('data', (d: Buffer | string) => {
        const c = d.toString().toLowerCase()[0];
        finish(c === 'o' || c === 'y' ? 'allowOnce' : c === 's' ? 'allowForSession' : 'deny');
      });
      input.on('error', () => finish('deny'));
      input.on('end', () => finish('deny'));
    });
  return (r) => {
    const next = queue.then(() => askOne(r));
    queue = next.catch(() => undefined);
    return next;
  };
}
