import { createInterface } from 'node:readline/promises';
import type { ServerRequestHandler } from '../client/exec-server-client.js';

/**
 * Answers a server's `execPolicy/request` (a `prompt` rule matched): asks y/N on the terminal;
 * without a terminal it refuses, since nobody can approve.
 */
export function terminalExecPolicyPrompt(
  input: NodeJS.ReadStream = process.stdin,
  output: NodeJS.WriteStream = process.stderr,
): ServerRequestHandler {
  return async (params) => {
    const p = (params ?? {}) as { reason?: unknown; argv?: unknown };
    const reason = typeof p.reason === 'string' ? p.reason : `\`${Array.isArray(p.argv) ? p.argv.join(' ') : '?'}\` requires approval`;
    if (!input.isTTY || !output.isTTY) return { decision: { type: 'deny', reason: 'no terminal to ask for approval on' } };
    const rl = createInterface({ input, output });
    try {
      const answer = await rl.question(`${reason}\nRun it? [y/N] `);
      return /^y(es)?$/i.test(answer.trim())
        ? { decision: { type: 'allow' } }
        : { decision: { type: 'deny', reason: 'denied at the terminal' } };
    } finally {
      rl.close();
    }
  };
}
