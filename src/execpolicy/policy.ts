/** The exec policy loaded from `.rules` files, and how a command is judged against it. */
import path from 'node:path';

export type Decision = 'allow' | 'prompt' | 'forbidden';

export type PatternToken = { single: string } | { alts: string[] };

export interface PrefixRule {
  /** The program (first token); a rule whose first element had alternatives becomes one rule per alternative. */
  first: string;
  rest: PatternToken[];
  decision: Decision;
  justification: string | null;
}

export interface RuleMatch {
  matchedPrefix: string[];
  decision: Decision;
  /** The absolute program path that matched a rule written for its basename. */
  resolvedProgram?: string;
  justification?: string;
}

export type NetworkProtocol = 'http' | 'https' | 'socks5_tcp' | 'socks5_udp';

/** A `network_rule(...)`, as written (validated): the managed-network proxy consumes these. */
export interface NetworkRule {
  /** As written. */
  host: string;
  /** Lower-cased, without a trailing dot. */
  normalizedHost: string;
  protocol: NetworkProtocol;
  /** Codex accepts `allow`, `deny`, `prompt` and `forbidden`; `forbidden` means `deny`. */
  decision: 'allow' | 'deny' | 'prompt';
  justification: string | null;
}

export interface Evaluation {
  matchedRules: RuleMatch[];
  /** The strictest decision among the matches; absent when nothing matched. */
  decision?: Decision;
}

export interface MatchOptions {
  /** Let an absolute program path match rules written for its basename (gated by `host_executable`). */
  resolveHostExecutables: boolean;
}

const RANK: Record<Decision, number> = { allow: 0, prompt: 1, forbidden: 2 };

export function strictest(decisions: Iterable<Decision>): Decision | undefined {
  let best: Decision | undefined;
  for (const d of decisions) if (best === undefined || RANK[d] > RANK[best]) best = d;
  return best;
}

export function ruleMatches(rule: PrefixRule, command: readonly string[]): RuleMatch | null {
  if (command[0] !== rule.first || command.length < 1 + rule.rest.length) return null;
  for (let i = 0; i < rule.rest.length; i++) {
    const token = rule.rest[i] as PatternToken;
    const arg = command[i + 1] as string;
    if ('single' in token ? token.single !== arg : !token.alts.includes(arg)) return null;
  }
  const m: RuleMatch = { matchedPrefix: [rule.first, ...command.slice(1, 1 + rule.rest.length)], decision: rule.decision };
  if (rule.justification !== null) m.justification = rule.justification;
  return m;
}

export class Policy {
  constructor(
    readonly prefixRules: readonly PrefixRule[],
    /** `host_executable` name → the absolute paths allowed to stand for it (a later definition replaces an earlier one). */
    readonly hostExecutables: ReadonlyMap<string, readonly string[]>,
    readonly networkRules: readonly NetworkRule[],
  ) {}

  static empty(): Policy {
    return new Policy([], new Map(), []);
  }

  /** This policy with `prefix_rule(pattern=prefix, decision="allow")` added for each prefix (an accepted amendment). */
  withAllowPrefixes(prefixes: ReadonlyArray<readonly string[]>): Policy {
    const added = prefixes
      .filter((p) => p.length > 0)
      .map(
        (p): PrefixRule => ({
          first: p[0] as string,
          rest: p.slice(1).map((single) => ({ single })),
          decision: 'allow',
          justification: null,
        }),
      );
    return added.length === 0 ? this : new Policy([...this.prefixRules, ...added], this.hostExecutables, this.networkRules);
  }

  /** This policy without its `allow` prefix rules (Codex's policy for a model whose prefix rules are not honoured). */
  withoutAllowRules(): Policy {
    return new Policy(
      this.prefixRules.filter((r) => r.decision !== 'allow'),
      this.hostExecutables,
      this.networkRules,
    );
  }

  /** This policy with `overlay`'s rules added after its own (managed requirements over `.rules` files). */
  withOverlay(overlay: Policy): Policy {
    return new Policy([...this.prefixRules, ...overlay.prefixRules], new Map([...this.hostExecutables, ...overlay.hostExecutables]), [
      ...this.networkRules,
      ...overlay.networkRules,
    ]);
  }

  /** Every rule matching one command, in rule order. */
  matchesFor(command: readonly string[], options: MatchOptions): RuleMatch[] {
    const program = command[0];
    if (program === undefined) return [];
    const exact = this.matchProgram(program, command);
    if (exact.length > 0 || !options.resolveHostExecutables || !path.isAbsolute(program)) return exact;
    const base = path.basename(program);
    const allowed = this.hostExecutables.get(base);
    if (allowed && !allowed.includes(program)) return [];
    return this.matchProgram(base, [base, ...command.slice(1)]).map((m) => withResolved(m, program));
  }

  /** Judges commands (a split script gives several): all matches, and the strictest decision. */
  check(commands: ReadonlyArray<readonly string[]>, options: MatchOptions): Evaluation {
    const matchedRules = commands.flatMap((c) => this.matchesFor(c, options));
    const decision = strictest(matchedRules.map((m) => m.decision));
    return decision === undefined ? { matchedRules } : { matchedRules, decision };
  }

  private matchProgram(program: string, command: readonly string[]): RuleMatch[] {
    const out: RuleMatch[] = [];
    for (const rule of this.prefixRules) {
      if (rule.first !== program) continue;
      const m = ruleMatches(rule, command);
      if (m) out.push(m);
    }
    return out;
  }
}

function withResolved(m: RuleMatch, program: string): RuleMatch {
  const out: RuleMatch = { matchedPrefix: m.matchedPrefix, decision: m.decision, resolvedProgram: program };
  if (m.justification !== undefined) out.justification = m.justification;
  return out;
}
