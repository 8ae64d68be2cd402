/** The JSON document `codex execpolicy check` prints, key for key. */
import type { Evaluation } from './policy.js';

export function checkDocument(evaluation: Evaluation): unknown {
  const doc: Record<string, unknown> = {
    matchedRules: evaluation.matchedRules.map((m) => {
      const inner: Record<string, unknown> = { matchedPrefix: m.matchedPrefix, decision: m.decision };
      if (m.resolvedProgram !== undefined) inner.resolvedProgram = m.resolvedProgram;
      if (m.justification !== undefined) inner.justification = m.justification;
      return { prefixRuleMatch: inner };
    }),
  };
  if (evaluation.decision !== undefined) doc.decision = evaluation.decision;
  return doc;
}

export function formatCheck(evaluation: Evaluation, pretty: boolean): string {
  return JSON.stringify(checkDocument(evaluation), null, pretty ? 2 : undefined);
}
