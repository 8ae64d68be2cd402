/**
 * Enforcing an exec policy before a process starts: the verdict for an argv, and what to do with
 * it. Wire-agnostic: asking a human goes through the `ask` callback the caller provides.
 */
import type { ExecPolicyRequestParams } from '../protocol/exec-policy.js';
import { checkDocument } from './check-output.js';
import type { Evaluation, Policy } from './policy.js';
import { type ApprovalPolicy, execRequirement, forbiddenReason, promptReason, type RequirementResult } from './requirement.js';
import { ShellSplitter } from './shell-split.js';
import { shlexJoin } from './shlex.js';

/** What a prompt asks about: the params of `execPolicy/request`. */
export type ExecPolicyQuestion = ExecPolicyRequestParams;

export interface ExecPolicyAnswer {
  allow: boolean;
  reason?: string;
  /** Allow, and add the question's `proposedAmendment` as an allow rule for the rest of the session. */
  acceptAmendment?: boolean;
}

/** Asks someone (the client) about a `prompt` verdict; undefined when nobody can be asked. */
export type ExecPolicyAsk = (question: ExecPolicyQuestion) => Promise<ExecPolicyAnswer>;

export class ExecPolicyRefusal extends Error {}

export interface Verdict {
  commands: string[][];
  unsplittableScript: boolean;
  evaluation: Evaluation;
}

export interface EnforcerOptions {
  /**
   * Apply Codex's per-call requirement (heuristics for unmatched commands, approval-policy
   * refusals, amendments) instead of the rules alone. Unset: rules alone.
   */
  approvalPolicy?: ApprovalPolicy;
}

/** Who is starting the process: amendments accepted in a session apply to that session only. */
export interface EnforceContext {
  processId?: string;
  /** Any object standing for the session (its identity keys the accepted amendments). */
  session?: object;
  /** Whether the process runs under a file-system sandbox. */
  sandboxed?: boolean;
}

/** What a permitted start learned. */
export interface EnforceOutcome {
  /** Codex would run this command outside its sandbox (every part explicitly allowed); Cordon never does. */
  bypassSandbox?: boolean;
}

/** Amendments one session may accept; later ones are not remembered (the start itself still runs). */
const MAX_SESSION_AMENDMENTS = 1024;

export class ExecPolicyEnforcer {
  /** Per session: the prefix rules its client accepted as amendments. */
  private readonly amendments = new WeakMap<object, { prefixes: string[][]; policy: Policy }>();

  private constructor(
    readonly policy: Policy,
    private readonly splitter: ShellSplitter,
    readonly options: EnforcerOptions,
  ) {}

  static async create(policy: Policy, options: EnforcerOptions = {}): Promise<ExecPolicyEnforcer> {
    return new ExecPolicyEnforcer(policy, await ShellSplitter.create(), options);
  }

  /** The policy a session's starts are judged by: the loaded one plus the amendments it accepted. */
  policyFor(session: object | undefined): Policy {
    return (session && this.amendments.get(session)?.policy) ?? this.policy;
  }

  /** Codex's requirement for `argv` under the configured approval policy (undefined without one). */
  requirement(argv: readonly string[], context: EnforceContext = {}): RequirementResult | undefined {
    const approvalPolicy = this.options.approvalPolicy;
    if (approvalPolicy === undefined) return undefined;
    return execRequirement(this.policyFor(context.session), this.splitter, {
      argv,
      approvalPolicy,
      fileSystem: context.sandboxed === false ? 'unrestricted' : 'restricted',
    });
  }

  private accept(session: object, prefix: string[]): void {
    const prefixes = this.amendments.get(session)?.prefixes ?? [];
    const known = prefixes.some((p) => p.length === prefix.length && p.every((t, i) => t === prefix[i]));
    // Bounded: a client accepting without end would otherwise grow the session's policy without end.
    if (known || prefixes.length >= MAX_SESSION_AMENDMENTS) return;
    const next = [...prefixes, prefix];
    this.amendments.set(session, { prefixes: next, policy: this.policy.withAllowPrefixes(next) });
  }

  /** Judges an argv as Codex's core does: shell scripts split, absolute paths resolved via host_executable. */
  judge(argv: readonly string[]): Verdict {
    const { commands, unsplittableScript } = this.splitter.commandsFor(argv);
    return { commands, unsplittableScript, evaluation: this.policy.check(commands, { resolveHostExecutables: true }) };
  }

  /** Resolves when `argv` may run; throws ExecPolicyRefusal (its message says why) when it may not. */
  async enforce(argv: readonly string[], ask: ExecPolicyAsk | undefined, context: EnforceContext | string = {}): Promise<EnforceOutcome> {
    const ctx: EnforceContext = typeof context === 'string' ? { processId: context } : context;
    const cmd = shlexJoin(argv);
    let reason: string;
    let proposedAmendment: string[] | undefined;
    let commands: string[][];
    const result = this.requirement(argv, ctx);
    if (result) {
      const { requirement } = result;
      if (requirement.kind === 'forbidden') throw new ExecPolicyRefusal(requirement.reason);
      if (requirement.kind === 'skip') return { bypassSandbox: requirement.bypassSandbox };
      reason = requirement.reason ?? `\`${cmd}\` requires approval under the approval policy ${policyName(this.options.approvalPolicy)}`;
      proposedAmendment = requirement.proposedAmendment;
      commands = result.commands;
    } else {
      const verdict = this.judge(argv);
      commands = verdict.commands;
      const { decision, matchedRules } = verdict.evaluation;
      if (decision === undefined || decision === 'allow') return {};
      if (decision === 'forbidden') throw new ExecPolicyRefusal(forbiddenReason(cmd, matchedRules));
      reason = promptReason(cmd, matchedRules) as string;
    }
    if (!ask)
      throw new ExecPolicyRefusal(
        `${reason}, but the client cannot be asked (it did not declare capabilities.execPolicyPrompt at initialize)`,
      );
    let answer: ExecPolicyAnswer;
    try {
      answer = await ask({
        ...(ctx.processId !== undefined ? { processId: ctx.processId } : {}),
        argv: [...argv],
        commands,
        evaluation: checkDocument(this.policyFor(ctx.session).check(commands, { resolveHostExecutables: true })),
        reason,
        ...(proposedAmendment ? { proposedAmendment } : {}),
      });
    } catch (err) {
      throw new ExecPolicyRefusal(`${reason}, and no approval came: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!answer.allow) throw new ExecPolicyRefusal(`\`${cmd}\` rejected by the client${answer.reason ? `: ${answer.reason}` : ''}`);
    if (answer.acceptAmendment === true && proposedAmendment && ctx.session) this.accept(ctx.session, proposedAmendment);
    return {};
  }
}

function policyName(p: ApprovalPolicy | undefined): string {
  return typeof p === 'object' ? 'granular' : String(p);
}
