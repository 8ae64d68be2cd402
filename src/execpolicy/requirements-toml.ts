/**
 * An operator's `requirements.toml` `[rules]` table (Codex's managed command rules), read into a
 * policy laid over the `.rules` files. Only `[rules]` is read; other tables are Codex client
 * settings. Error texts are Codex 0.171.0's, measured with the file at /etc/codex/requirements.toml.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseToml } from 'smol-toml';
import { type Decision, type PatternToken, Policy, type PrefixRule } from './policy.js';

/** A requirements file that cannot be used; `message` is the whole text. */
export class RequirementsLoadError extends Error {}

type Table = Record<string, unknown>;

const isTable = (v: unknown): v is Table => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date);

function typeText(v: unknown): string {
  if (typeof v === 'string') return `string ${JSON.stringify(v)}`;
  if (typeof v === 'boolean') return `boolean \`${v}\``;
  if (typeof v === 'number' || typeof v === 'bigint') return Number.isInteger(Number(v)) ? `integer \`${v}\`` : `floating point \`${v}\``;
  if (Array.isArray(v)) return 'sequence';
  if (v instanceof Date) return 'datetime';
  return 'map';
}

/** Serde's shape errors, as Codex prints them: the problem, then the field path without list indices. */
class ShapeError extends Error {
  constructor(problem: string, where: string) {
    super(`${problem}\nin \`${where}\``);
  }
}

const DECISIONS: Record<string, Decision | 'allow-refused'> = {
  allow: 'allow-refused',
  prompt: 'prompt',
  // Codex's managed-only decision: ask a human, never an automatic reviewer. Cordon has no
  // automatic reviewer, so it is `prompt`.
  'prompt-user': 'prompt',
  forbidden: 'forbidden',
};

function invalid(message: string): never {
  throw new RulesError(message);
}

class RulesError extends Error {}

function tokenOf(raw: unknown, rule: number, index: number, warnings: string[]): PatternToken {
  if (!isTable(raw))
    throw new ShapeError(
      `invalid type: ${typeText(raw)}, expected struct RequirementsExecPolicyPatternTokenToml`,
      'rules.prefix_rules.pattern',
    );
  for (const k of Object.keys(raw))
    if (k !== 'token' && k !== 'any_of') warnings.push(`\`rules.prefix_rules.${rule}.pattern.${index}.${k}\` is ignored.`);
  const { token, any_of: anyOf } = raw;
  if (token !== undefined && typeof token !== 'string')
    throw new ShapeError(`invalid type: ${typeText(token)}, expected a string`, 'rules.prefix_rules.pattern.token');
  if (anyOf !== undefined && (!Array.isArray(anyOf) || !anyOf.every((a) => typeof a === 'string')))
    throw new ShapeError(`invalid type: ${typeText(anyOf)}, expected a sequence of strings`, 'rules.prefix_rules.pattern.any_of');
  const bad = (reason: string): never =>
    invalid(`rules prefix_rule at index ${rule} has an invalid pattern token at index ${index}: ${reason}`);
  if (token !== undefined && anyOf !== undefined) return bad('set either token or any_of, not both');
  if (token !== undefined) return token.trim() === '' ? bad('token cannot be empty') : { single: token };
  if (anyOf === undefined) return bad('set either token or any_of');
  const alts = anyOf as string[];
  if (alts.length === 0) return bad('any_of cannot be empty');
  if (alts.some((a) => a.trim() === '')) return bad('any_of cannot include empty tokens');
  return { alts };
}

function rulesFrom(rules: Table, warnings: string[]): PrefixRule[] {
  for (const k of Object.keys(rules)) if (k !== 'prefix_rules') warnings.push(`\`rules.${k}\` is ignored.`);
  const list = rules.prefix_rules;
  if (list === undefined) throw new ShapeError('missing field `prefix_rules`', 'rules');
  if (!Array.isArray(list)) throw new ShapeError(`invalid type: ${typeText(list)}, expected a sequence`, 'rules.prefix_rules');
  // Shapes first (serde reads the whole file before Codex checks a rule).
  for (const [i, raw] of list.entries()) {
    if (!isTable(raw))
      throw new ShapeError(`invalid type: ${typeText(raw)}, expected struct RequirementsExecPolicyPrefixRuleToml`, 'rules.prefix_rules');
    if (raw.pattern === undefined) throw new ShapeError('missing field `pattern`', 'rules.prefix_rules');
    if (!Array.isArray(raw.pattern))
      throw new ShapeError(`invalid type: ${typeText(raw.pattern)}, expected a sequence`, 'rules.prefix_rules.pattern');
    const d = raw.decision;
    if (d !== undefined && (typeof d !== 'string' || !(d in DECISIONS)))
      throw new ShapeError(
        typeof d === 'string'
          ? `unknown variant \`${d}\`, expected one of \`allow\`, \`prompt\`, \`prompt-user\`, \`forbidden\``
          : `invalid type: ${typeText(d)}, expected a string`,
        'rules.prefix_rules.decision',
      );
    if (raw.justification !== undefined && typeof raw.justification !== 'string')
      throw new ShapeError(`invalid type: ${typeText(raw.justification)}, expected a string`, 'rules.prefix_rules.justification');
    for (const k of Object.keys(raw))
      if (!['pattern', 'decision', 'justification'].includes(k)) warnings.push(`\`rules.prefix_rules.${i}.${k}\` is ignored.`);
  }
  if (list.length === 0) invalid('rules prefix_rules cannot be empty');
  const out: PrefixRule[] = [];
  for (const [i, raw] of (list as Table[]).entries()) {
    const justification = raw.justification as string | undefined;
    if (justification !== undefined && justification.trim() === '') invalid(`rules prefix_rule at index ${i} has an empty justification`);
    const pattern = raw.pattern as unknown[];
    if (pattern.length === 0) invalid(`rules prefix_rule at index ${i} has an empty pattern`);
    const tokens = pattern.map((t, j) => tokenOf(t, i, j, warnings));
    const decision = raw.decision === undefined ? undefined : DECISIONS[raw.decision as string];
    if (decision === 'allow-refused')
      invalid(
        `rules prefix_rule at index ${i} has decision 'allow', which is not permitted in requirements.toml: Codex merges these rules with other config and uses the most restrictive result (use 'prompt', 'prompt-user', or 'forbidden')`,
      );
    if (decision === undefined) invalid(`rules prefix_rule at index ${i} is missing a decision`);
    const [head, ...rest] = tokens as [PatternToken, ...PatternToken[]];
    for (const first of 'single' in head ? [head.single] : head.alts)
      out.push({ first, rest, decision: decision as Decision, justification: justification ?? null });
  }
  return out;
}

/**
 * The policy of a requirements file's text (`name` is how the file is named in messages), and
 * warnings for keys it ignores. A file without `[rules]` gives an empty policy.
 */
export function requirementsPolicyFromToml(text: string, name: string): { policy: Policy; warnings: string[] } {
  let doc: Table;
  try {
    doc = parseToml(text) as Table;
  } catch (err) {
    throw new RequirementsLoadError(`failed to parse requirements layer ${name}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const warnings: string[] = [];
  if (doc.rules === undefined) return { policy: Policy.empty(), warnings };
  try {
    if (!isTable(doc.rules))
      throw new ShapeError(`invalid type: ${typeText(doc.rules)}, expected struct RequirementsExecPolicyToml`, 'rules');
    const rules = rulesFrom(doc.rules, warnings);
    return { policy: new Policy(rules, new Map(), []), warnings: warnings.map((w) => `requirements (${name}): ${w}`) };
  } catch (err) {
    if (err instanceof ShapeError) throw new RequirementsLoadError(`failed to parse requirements layer ${name}: ${err.message}`);
    if (err instanceof RulesError) throw new RequirementsLoadError(`invalid rules in requirements (set by ${name}): ${err.message}`);
    throw err;
  }
}

/** Reads an operator's requirements file. */
export async function loadRequirementsFile(file: string): Promise<{ policy: Policy; warnings: string[] }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new RequirementsLoadError(`failed to read requirements file ${file}: ${(err as Error).message}`);
  }
  return requirementsPolicyFromToml(text, file);
}
