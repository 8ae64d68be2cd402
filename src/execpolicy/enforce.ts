/**
 * Enforcing an exec policy before a process starts: the verdict for an argv, and what to do with
 * it. Wire-agnostic: asking a human goes through the `ask` callback the caller provides.
 */
import { checkDocument } from './check-output.js';
import type { Evaluation, Policy, RuleMatch } from './policy.js';
import { ShellSplitter } from './shell-split.js';
import { shlexJoin } from './shlex.js';

/** What a prompt asks about. */
export interface ExecPolicyQuestion {
  /** The process the start would create, when the caller knows it. */
  processId?: string;
  argv: string[];
  /** The commands judged (a split shell script gives several). */
  commands: string[][];
  /** The matches, in `codex execpolicy check`'s shape. */
  evaluation: unknown;
  /** Codex's wording: `` `cmd` requires approval: <justification> `` or `` `cmd` requires approval by policy ``. */
  reason: string;
}

export interface ExecPolicyAnswer {
  allow: boolean;
  reason?: string;
}

/** Asks someone (the client) about a `prompt` verdict; undefined when nobody can be asked. */
export type ExecPolicyAsk = (question: ExecPolicyQuestion) => Promise<ExecPolicyAnswer>;

export class ExecPolicyRefusal extends Error {}

export interface Verdict {
  commands: string[][];
  unsplittableScript: boolean;
  evaluation: Evaluation;
}

export class ExecPolicyEnforcer {
  private constructor(
    readonly policy: Policy,
    private readonly splitter: ShellSplitter,
  ) {}

  static async create(policy: Policy): Promise<ExecPolicyEnforcer> {
    return new ExecPolicyEnforcer(policy, await ShellSplitter.create());
  }

  /** Judges an argv as Codex's core does: shell scripts split, absolute paths resolved via host_executable. */
  judge(argv: readonly string[]): Verdict {
    const { commands, unsplittableScript } = this.splitter.commandsFor(argv);
    return { commands, unsplittableScript, evaluation: this.policy.check(commands, { resolveHostExecutables: true }) };
  }

  /** Resolves when `argv` may run; throws ExecPolicyRefusal (its message says why) when it may not. */
  async enforce(argv: readonly string[], ask: ExecPolicyAsk | undefined, processId?: string): Promise<void> {
    const verdict = this.judge(argv);
    const { decision, matchedRules } = verdict.evaluation;
    const cmd = shlexJoin(argv);
    if (decision === undefined || decision === 'allow') return;
    if (decision === 'forbidden') throw new ExecPolicyRefusal(forbiddenReason(cmd, matchedRules));
    const prompting = matchedRules.find((m) => m.decision === 'prompt' && m.justification !== undefined);
    const reason = prompting ? `\`${cmd}\` requires approval: ${prompting.justification}` : `\`${cmd}\` requires approval by policy`;
    if (!ask)
      throw new ExecPolicyRefusal(
        `${reason}, but the client cannot be asked (it did not declare capabilities.execPolicyPrompt at initialize)`,
      );
    let answer: ExecPolicyAnswer;
    try {
      answer = await ask({
        ...(processId !== undefined ? { processId } : {}),
        argv: [...argv],
        commands: verdict.commands,
        evaluation: checkDocument(verdict.evaluation),
        reason,
      });
    } catch (err) {
      throw new ExecPolicyRefusal(`${reason}, and no approval came: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!answer.allow) throw new ExecPolicyRefusal(`\`${cmd}\` rejected by the client${answer.reason ? `: ${answer.reason}` : ''}`);
  }
}

/** Codex's text: the most specific forbidding rule's justification, else the prefix it forbids. */
function forbiddenReason(cmd: string, matches: RuleMatch[]): string {
  const forbidding = matches.filter((m) => m.decision === 'forbidden');
  const withReason = forbidding
    .filter((m) => m.justification !== undefined)
    .sort((a, b) => b.matchedPrefix.length - a.matchedPrefix.length)[0];
  if (withReason) return `\`${cmd}\` rejected: ${withReason.justification}`;
  const longest = forbidding.sort((a, b) => b.matchedPrefix.length - a.matchedPrefix.length)[0] as RuleMatch;
  return `\`${cmd}\` rejected: policy forbids commands starting with \`${longest.matchedPrefix.join(' ')}\``;
}
