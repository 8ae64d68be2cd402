import { createInterface } from 'node:readline/promises';
import { type ExecPolicyDecision, type ExecPolicyRequest, execPolicyRequestHandler } from '../client/exec-policy-requests.js';
import type { ServerRequestHandler } from '../client/exec-server-client.js';

/**
 * Answers a server's `execPolicy/request` on the terminal: y/N, and `a` to also accept the
 * proposed rule for the rest of the session when the server offers one. Without a terminal it
 * refuses, since nobody can approve.
 */
export function terminalExecPolicyPrompt(
  input: NodeJS.ReadStream = process.stdin,
  output: NodeJS.WriteStream = process.stderr,
): ServerRequestHandler {
  const ask = async (request: ExecPolicyRequest): Promise<ExecPolicyDecision> => {
    if (!input.isTTY || !output.isTTY) return 'deny';
    const rl = createInterface({ input, output });
    try {
      const amendment = request.proposedAmendment;
      const offer = amendment ? `\n[a] allow, and for the rest of the session allow commands starting with \`${amendment.join(' ')}\`` : '';
      const answer = (await rl.question(`${request.reason}${offer}\nRun it? [y/N${amendment ? '/a' : ''}] `)).trim();
      if (amendment && /^a$/i.test(answer)) return 'allowWithAmendment';
      return /^y(es)?$/i.test(answer) ? 'allowOnce' : 'deny';
    } finally {
      rl.close();
    }
  };
  const tty = execPolicyRequestHandler(ask, 'denied at the terminal');
  const none = execPolicyRequestHandler(() => 'deny', 'no terminal to ask for approval on');
  return (params) => (input.isTTY && output.isTTY ? tty(params) : none(params));
}
