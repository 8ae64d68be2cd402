/**
 * Answering a server's `execPolicy/request` (docs/exec-policy.md): a command rule, or the server's
 * approval policy, wants someone to approve a process start. Typed here so a client decides on
 * the question and this module speaks the wire.
 */
import type { ExecPolicyRequestParams, ExecPolicyRequestResult } from '../protocol/exec-policy.js';
import type { ServerRequestHandler } from './exec-server-client.js';

/** The params of `execPolicy/request`. */
export type ExecPolicyRequest = ExecPolicyRequestParams;

/** `allowWithAmendment`: allow, and accept the proposed amendment for the session (else as `allowOnce`). */
export type ExecPolicyDecision = 'allowOnce' | 'allowWithAmendment' | 'deny';

/** The result of `execPolicy/request` on the wire. */
export type ExecPolicyAnswerWire = ExecPolicyRequestResult;

export type ExecPolicyDecider = (request: ExecPolicyRequest) => ExecPolicyDecision | Promise<ExecPolicyDecision>;

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');

/** The request, or undefined when the params are not shaped as one. */
export function parseExecPolicyRequest(params: unknown): ExecPolicyRequest | undefined {
  if (params === null || typeof params !== 'object') return undefined;
  const p = params as Record<string, unknown>;
  if (!isStrings(p.argv) || typeof p.reason !== 'string') return undefined;
  if (p.proposedAmendment !== undefined && !isStrings(p.proposedAmendment)) return undefined;
  return {
    ...(typeof p.processId === 'string' ? { processId: p.processId } : {}),
    argv: p.argv,
    commands: Array.isArray(p.commands) && p.commands.every(isStrings) ? (p.commands as string[][]) : [p.argv],
    evaluation: p.evaluation,
    reason: p.reason,
    ...(p.proposedAmendment ? { proposedAmendment: p.proposedAmendment } : {}),
  };
}

/** A handler for `requestHandlers['execPolicy/request']`; malformed questions are denied. */
export function execPolicyRequestHandler(decide: ExecPolicyDecider, denyReason = 'denied'): ServerRequestHandler {
  return async (params): Promise<ExecPolicyAnswerWire> => {
    const request = parseExecPolicyRequest(params);
    if (!request) return { decision: { type: 'deny', reason: 'malformed execPolicy/request' } };
    const decision = await decide(request);
    if (decision === 'allowOnce') return { decision: { type: 'allow' } };
    if (decision === 'allowWithAmendment')
      return request.proposedAmendment ? { decision: { type: 'allow', acceptAmendment: true } } : { decision: { type: 'allow' } };
    return { decision: { type: 'deny', reason: denyReason } };
  };
}
