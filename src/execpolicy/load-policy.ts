/** Reads and evaluates `.rules` files into one Policy, failing with the text Codex prints. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { renderStarlarkError } from './diagnostic.js';
import { Policy, type PrefixRule, ruleMatches } from './policy.js';
import { newPolicyBuilder, type PolicyBuilder, rulesBuiltins } from './rules-builtins.js';
import { debugPrefixRule, debugRuleMatch, debugString } from './rust-debug.js';
import { shlexJoin } from './shlex.js';
import { Evaluator, StarlarkEvalError, standardBuiltins } from './starlark-eval.js';
import { StarlarkSyntaxError } from './starlark-lexer.js';
import { parseModule } from './starlark-parser.js';

/** A rules file that could not be read or loaded. `message` is the whole report, as Codex prints it. */
export class PolicyLoadError extends Error {
  constructor(
    /** `failed to parse policy at <path>` / `failed to read policy at <path>` */
    readonly context: string,
    /** The underlying diagnostic (several lines for a Starlark error). */
    readonly detail: string,
  ) {
    super(`${context}\n\nCaused by:\n    ${detail.replace(/\n/g, '\n    ')}`);
  }

  /** What `codex execpolicy check` writes to stderr (exit status 1). */
  get report(): string {
    return `Error: ${this.message}\n`;
  }
}

// Rust's std::io::Error texts for the errors a read of a rules file can meet.
const IO_ERRORS: Record<string, [string, number]> = {
  ENOENT: ['No such file or directory', 2],
  EACCES: ['Permission denied', 13],
  EISDIR: ['Is a directory', 21],
  ENOTDIR: ['Not a directory', 20],
  ELOOP: ['Too many levels of symbolic links', 40],
  ENAMETOOLONG: ['File name too long', 36],
};

function ioErrorText(err: NodeJS.ErrnoException): string {
  const known = err.code ? IO_ERRORS[err.code] : undefined;
  if (known) return `${known[0]} (os error ${known[1]})`;
  return err.message;
}

function validateExamples(builder: PolicyBuilder): void {
  for (const { rules, notMatches } of builder.pending) {
    for (const example of notMatches) {
      for (const rule of rules) {
        const m = ruleMatches(rule, example);
        if (m) throw new Error(`expected example to not match rule \`${debugRuleMatch(m)}\`: ${shlexJoin(example)}`);
      }
    }
  }
  for (const { rules, matches } of builder.pending) {
    const unmatched = matches.filter((example) => !rules.some((r: PrefixRule) => ruleMatches(r, example)));
    if (unmatched.length > 0) {
      throw new Error(
        `expected every example to match at least one rule. rules: [${rules.map((r) => debugString(debugPrefixRule(r))).join(', ')}]; ` +
          `unmatched examples: [${unmatched.map((e) => debugString(shlexJoin(e))).join(', ')}]`,
      );
    }
  }
}

/** Evaluates one file's source into `builder`; `name` is how the file is named in messages. */
export function evaluateRules(builder: PolicyBuilder, name: string, src: string): void {
  const context = `failed to parse policy at ${name}`;
  const start = builder.pending.length;
  try {
    new Evaluator(new Map([...standardBuiltins(), ...rulesBuiltins(builder)])).run(parseModule(src));
  } catch (err) {
    if (err instanceof StarlarkSyntaxError) throw new PolicyLoadError(context, renderStarlarkError(src, name, err.message, err, []));
    if (err instanceof StarlarkEvalError)
      throw new PolicyLoadError(context, renderStarlarkError(src, name, err.message, err.span, err.frames));
    throw err;
  }
  try {
    validateExamples({ ...builder, pending: builder.pending.slice(start) });
  } catch (err) {
    throw new PolicyLoadError(context, (err as Error).message);
  }
}

/**
 * Loads rules files in order into one policy (as `codex execpolicy check --rules A --rules B`
 * does). Relative paths are read from `cwd`; messages name each path as given.
 */
export async function loadPolicyFiles(paths: readonly string[], cwd = process.cwd()): Promise<Policy> {
  const builder = newPolicyBuilder();
  for (const p of paths) {
    let src: string;
    try {
      src = await readFile(path.resolve(cwd, p), 'utf8');
    } catch (err) {
      throw new PolicyLoadError(`failed to read policy at ${p}`, ioErrorText(err as NodeJS.ErrnoException));
    }
    evaluateRules(builder, p, src);
  }
  return policyFrom(builder);
}

/** Evaluates rules given as text (tests, embedded policies). */
export function policyFromSource(src: string, name = 'inline.rules'): Policy {
  const builder = newPolicyBuilder();
  evaluateRules(builder, name, src);
  return policyFrom(builder);
}

function policyFrom(builder: PolicyBuilder): Policy {
  return new Policy(builder.prefixRules, builder.hostExecutables, builder.networkRules);
}
