/**
 * What Codex's controller requires before it runs one command, given its exec policy and its
 * approval policy (NETWORK.md §3.6, measured against Codex 0.171.0): forbidden (with its exact
 * text), needs approval (with the amendment a user could accept), or run. Rules decide the
 * commands they match; the others get Codex's heuristics: a dangerous command is forbidden under
 * `never` and asked about otherwise; `untrusted` asks about everything no rule allows. A pure
 * function of its inputs: the caller decides what to do with the answer.
 */
import { type DangerousCommandMatch, dangerousCommandMatch } from './dangerous-command.js';
import { type Decision, type Policy, type RuleMatch, strictest } from './policy.js';
import type { ShellSplitter } from './shell-split.js';
import { shlexJoin } from './shlex.js';

/** Codex's `AskForApproval` (`untrusted` is Codex's `UnlessTrusted`; 0.171's config no longer accepts it). */
export type ApprovalPolicy = 'never' | 'on-request' | 'untrusted' | { granular: GranularApproval };

export interface GranularApproval {
  /** Whether a heuristic (sandbox) prompt may be shown; false turns it into a refusal. */
  sandboxApproval: boolean;
  /** Whether a `prompt` rule may be shown; false turns it into a refusal. */
  rules: boolean;
}

export interface RequirementInput {
  /** The argv as the client sent it; `bash -lc` scripts are split as Codex splits them. */
  argv: readonly string[];
  approvalPolicy: ApprovalPolicy;
  /** The file-system sandbox the command would run in (`external`: another sandbox enforces it). */
  fileSystem: 'restricted' | 'unrestricted' | 'external';
  /** The call asks to run with more than the sandbox grants (Codex's `require_escalated`). */
  requestsSandboxOverride?: boolean;
  /** `ignore`: allow rules and amendments are not honoured (Codex's `IgnoreForCyberModel`). Default `honor`. */
  prefixRules?: 'honor' | 'ignore';
  /** The prefix rule the model proposed for this call (Codex's `prefix_rule` tool argument). */
  proposedPrefixRule?: readonly string[];
}

export type ExecRequirement =
  | { kind: 'forbidden'; reason: string }
  /** `reason` only when a `prompt` rule drove the decision (Codex has none for heuristic prompts). */
  | { kind: 'needsApproval'; reason?: string; proposedAmendment?: string[] }
  /** `bypassSandbox`: every command was allowed by an explicit rule (Codex would then run it unsandboxed). */
  | { kind: 'skip'; bypassSandbox: boolean; proposedAmendment?: string[] };

/** A match: a rule's, or Codex's heuristic for a command no rule matched. */
export type RequirementMatch = { rule: RuleMatch } | { heuristic: { command: string[]; decision: Decision } };

export interface RequirementResult {
  requirement: ExecRequirement;
  /** The commands judged (a split shell script gives several). */
  commands: string[][];
  matches: RequirementMatch[];
}

const NEVER_REASON = 'approval required by policy, but AskForApproval is set to Never';
const GRANULAR_SANDBOX_REASON = 'approval required by policy, but AskForApproval::Granular.sandbox_approval is false';
const GRANULAR_RULES_REASON = 'approval required by policy rule, but AskForApproval::Granular.rules is false';
const FORCED_RM_REASON = 'rm -f style commands are not permitted. Use a safer approach';

/**
 * Prefixes never proposed as an amendment (exact length match): allowing them would allow any
 * script or program they run. Codex 0.171.0's list.
 */
export const BANNED_AMENDMENT_PREFIXES: readonly (readonly string[])[] = [
  ...['/bin/bash', '/bin/sh', '/bin/zsh'].flatMap((s) => [[s], [s, '-c'], [s, '-lc']]),
  ...['bash', 'sh', 'zsh'].flatMap((s) => [[s], [s, '-c'], [s, '-lc']]),
  ['Rscript'],
  ['bun'],
  ['bun', '-e'],
  ['bun', 'run'],
  ...['cmd', 'cmd.exe'].flatMap((s) => [[s], [s, '/c'], [s, '/k']]),
  ['dash'],
  ['dash', '-c'],
  ['deno'],
  ['deno', 'eval'],
  ['env'],
  ['fish'],
  ['fish', '-c'],
  ['git'],
  ...['julia', 'lua', 'node', 'nodejs', 'perl', 'ruby'].flatMap((s) => [[s], [s, '-e']]),
  ['ksh'],
  ['ksh', '-c'],
  ['npm', 'run'],
  ['pnpm', 'run'],
  ['yarn', 'run'],
  ['osascript'],
  ['php'],
  ['php', '-r'],
  ...['powershell', 'powershell.exe'].flatMap((s) => [[s], [s, '-Command'], [s, '-EncodedCommand'], [s, '-File'], [s, '-c']]),
  ...[['pwsh'], ...['-Command', '-EncodedCommand', '-File', '-c', '-e', '-ec', '-f'].map((f) => ['pwsh', f])],
  ['py'],
  ['py', '-3'],
  ['pypy'],
  ['pypy3'],
  ...['python', 'python3'].flatMap((s) => [[s], [s, '-'], [s, '-c']]),
  ['pythonw'],
  ['pyw'],
  ['rm'],
  ['sudo'],
];

export function isBannedAmendment(prefix: readonly string[]): boolean {
  return BANNED_AMENDMENT_PREFIXES.some((b) => b.length === prefix.length && b.every((t, i) => t === prefix[i]));
}

/** Codex's decision for a command no rule matched. */
function unmatchedDecision(input: RequirementInput, dangerous: DangerousCommandMatch | undefined): Decision {
  const policy = input.approvalPolicy;
  if (dangerous) return policy === 'never' ? 'forbidden' : 'prompt';
  if (policy === 'never') return 'allow';
  if (policy === 'untrusted') return 'prompt';
  // on-request and granular: the sandbox protects, unless the call asks to leave it.
  return input.fileSystem === 'restricted' && input.requestsSandboxOverride === true ? 'prompt' : 'allow';
}

/** Why a prompt cannot be shown under this approval policy, or undefined when it can. */
function promptRejection(policy: ApprovalPolicy, ruleDriven: boolean): string | undefined {
  if (policy === 'never') return NEVER_REASON;
  if (typeof policy === 'string') return undefined;
  if (ruleDriven) return policy.granular.rules ? undefined : GRANULAR_RULES_REASON;
  return policy.granular.sandboxApproval ? undefined : GRANULAR_SANDBOX_REASON;
}

/** The most specific match: the longest prefix, the last of equally long ones (Codex's `max_by_key`). */
function mostSpecific(matches: readonly RuleMatch[]): RuleMatch | undefined {
  let best: RuleMatch | undefined;
  for (const m of matches) if (!best || m.matchedPrefix.length >= best.matchedPrefix.length) best = m;
  return best;
}

/** Codex's refusal text for a `forbidden` verdict of rules (`dangerous`: the heuristic's finding, if no rule forbade). */
export function forbiddenReason(cmd: string, matches: readonly RuleMatch[], dangerous?: DangerousCommandMatch): string {
  const top = mostSpecific(matches.filter((m) => m.decision === 'forbidden'));
  if (top?.justification !== undefined) return `\`${cmd}\` rejected: ${top.justification}`;
  if (top) return `\`${cmd}\` rejected: policy forbids commands starting with \`${shlexJoin(top.matchedPrefix)}\``;
  return `\`${cmd}\` rejected: ${dangerous === 'forcedRm' ? FORCED_RM_REASON : 'blocked by policy'}`;
}

/** Codex's reason for a `prompt` verdict of rules; undefined when no rule prompted. */
export function promptReason(cmd: string, matches: readonly RuleMatch[]): string | undefined {
  const top = mostSpecific(matches.filter((m) => m.decision === 'prompt'));
  if (!top) return undefined;
  return top.justification !== undefined ? `\`${cmd}\` requires approval: ${top.justification}` : `\`${cmd}\` requires approval by policy`;
}

export function execRequirement(basePolicy: Policy, splitter: ShellSplitter, input: RequirementInput): RequirementResult {
  const honor = (input.prefixRules ?? 'honor') === 'honor';
  const policy = honor ? basePolicy : basePolicy.withoutAllowRules();
  const { commands } = splitter.commandsFor(input.argv);
  const literal = (argv: readonly string[]): string[][] | null => splitter.literalCommands(argv);
  const dangerous = new Map<string[], DangerousCommandMatch | undefined>();
  const dangerOf = (c: string[]): DangerousCommandMatch | undefined => {
    if (!dangerous.has(c)) dangerous.set(c, dangerousCommandMatch(c, literal));
    return dangerous.get(c);
  };
  const options = { resolveHostExecutables: true };
  const judge = (p: Policy, c: string[]): RequirementMatch[] => {
    const rules = p.matchesFor(c, options);
    if (rules.length > 0) return rules.map((rule) => ({ rule }));
    return [{ heuristic: { command: c, decision: unmatchedDecision(input, dangerOf(c)) } }];
  };
  const matches = commands.flatMap((c) => judge(policy, c));
  const decisionOf = (m: RequirementMatch): Decision => ('rule' in m ? m.rule.decision : m.heuristic.decision);
  const decision = strictest(matches.map(decisionOf)) as Decision;
  const ruleMatches = matches.flatMap((m) => ('rule' in m ? [m.rule] : []));
  const heuristics = matches.flatMap((m) => ('heuristic' in m ? [m.heuristic] : []));
  const cmd = shlexJoin(input.argv);
  const heuristicDanger = (d: Decision): DangerousCommandMatch | undefined => {
    for (const h of heuristics) {
      const danger = h.decision === d ? dangerOf(h.command) : undefined;
      if (danger) return danger;
    }
    return undefined;
  };

  // The model's proposed rule, if it is acceptable and would let every command run.
  let requested: string[] | undefined;
  const proposal = input.proposedPrefixRule;
  if (honor && proposal && proposal.length > 0 && !isBannedAmendment(proposal) && ruleMatches.length === 0) {
    const amended = policy.withAllowPrefixes([proposal]);
    if (commands.every((c) => strictest(judge(amended, c).map(decisionOf)) === 'allow')) requested = [...proposal];
  }

  let requirement: ExecRequirement;
  if (decision === 'forbidden') {
    requirement = { kind: 'forbidden', reason: forbiddenReason(cmd, ruleMatches, heuristicDanger('forbidden')) };
  } else if (decision === 'prompt') {
    const prompting = ruleMatches.filter((m) => m.decision === 'prompt');
    const ruleDriven = prompting.length > 0;
    const rejection = promptRejection(input.approvalPolicy, ruleDriven);
    if (rejection !== undefined) {
      const forcedRm = !ruleDriven && heuristicDanger('prompt') === 'forcedRm';
      requirement = { kind: 'forbidden', reason: forcedRm ? FORCED_RM_REASON : rejection };
    } else {
      const reason = promptReason(cmd, ruleMatches);
      const derived = honor && !ruleDriven ? heuristics.find((h) => h.decision === 'prompt')?.command : undefined;
      const proposedAmendment = requested ?? (derived ? [...derived] : undefined);
      requirement = {
        kind: 'needsApproval',
        ...(reason !== undefined ? { reason } : {}),
        ...(proposedAmendment ? { proposedAmendment } : {}),
      };
    }
  } else {
    const bypassSandbox = commands.every((c) => policy.matchesFor(c, options).some((m) => m.decision === 'allow'));
    // Codex proposes the first heuristically allowed command when no rule matched at all (for a later
    // "run outside the sandbox" prompt).
    const derived = honor && ruleMatches.length === 0 ? heuristics.find((h) => h.decision === 'allow')?.command : undefined;
    requirement = { kind: 'skip', bypassSandbox, ...(derived ? { proposedAmendment: [...derived] } : {}) };
  }
  return { requirement, commands, matches };
}

/**
 * An approval policy as written in cordon.toml or on the command line: `never`, `on-request`,
 * `untrusted`, or `{granular = {sandbox_approval = …, rules = …}}` (both default to true).
 */
export function parseApprovalPolicy(value: unknown): ApprovalPolicy {
  if (value === 'never' || value === 'on-request' || value === 'untrusted') return value;
  if (value !== null && typeof value === 'object' && 'granular' in value) {
    const g = (value as { granular: unknown }).granular;
    if (g !== null && typeof g === 'object') {
      const flag = (k: string): boolean => {
        const v = (g as Record<string, unknown>)[k];
        if (v === undefined) return true;
        if (typeof v !== 'boolean') throw new Error(`approval policy granular.${k} must be true or false`);
        return v;
      };
      return { granular: { sandboxApproval: flag('sandbox_approval'), rules: flag('rules') } };
    }
  }
  throw new Error(`approval policy must be never, on-request, untrusted or {granular = {...}}, not ${JSON.stringify(value)}`);
}
