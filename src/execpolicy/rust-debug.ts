/** Rust `{:?}` renderings that Codex puts in its example-validation errors (reproduced for identical messages). */
import type { Decision, PrefixRule, RuleMatch } from './policy.js';

export function debugString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const code = ch.codePointAt(0) as number;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\0') out += '\\0';
    else if (code < 0x20 || code === 0x7f) out += `\\u{${code.toString(16)}}`;
    else out += ch;
  }
  return `${out}"`;
}

const debugList = (items: readonly string[]): string => `[${items.map(debugString).join(', ')}]`;
const debugDecision = (d: Decision): string => d[0]?.toUpperCase() + d.slice(1);
const debugOption = (s: string | null | undefined): string => (s === null || s === undefined ? 'None' : `Some(${debugString(s)})`);

export function debugPrefixRule(rule: PrefixRule): string {
  const rest = rule.rest.map((t) => ('single' in t ? `Single(${debugString(t.single)})` : `Alts(${debugList(t.alts)})`));
  return (
    `PrefixRule { pattern: PrefixPattern { canonical_matching: false, first: ${debugString(rule.first)}, rest: [${rest.join(', ')}] }, ` +
    `decision: ${debugDecision(rule.decision)}, justification: ${debugOption(rule.justification)} }`
  );
}

export function debugRuleMatch(m: RuleMatch): string {
  return (
    `PrefixRuleMatch { matched_prefix: ${debugList(m.matchedPrefix)}, decision: ${debugDecision(m.decision)}, ` +
    `resolved_program: ${debugOption(m.resolvedProgram)}, justification: ${debugOption(m.justification)} }`
  );
}
