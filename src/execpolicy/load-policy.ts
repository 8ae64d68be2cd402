/** Reads and evaluates `.rules` files into one Policy, failing with the text Codex prints. */
import { readdir, readFile } from 'node:fs/promises';
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
    /** The file as named in messages, and the 1-based line the problem is on, when known. */
    readonly where?: { file: string; line?: number },
  ) {
    super(`${context}\n\nCaused by:\n    ${detail.replace(/\n/g, '\n    ')}`);
  }

  /**
   * The one-line form Codex shows for a rules file it skips:
   * `<path>:<line>: <message> (problem is on or around line <line>)`.
   */
  get display(): string {
    const lines = this.detail.split('\n');
    const message = lines.find((l) => l.trimStart().startsWith('error: ')) ?? (lines[0] ?? '').trim();
    const file = this.where?.file ?? this.context;
    const line = this.where?.line;
    return line === undefined ? `${file}: ${message}` : `${file}:${line}: ${message} (problem is on or around line ${line})`;
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

/** A `match`/`not_match` example that contradicts its rule; `site` is the rule's call. */
class ExampleError extends Error {
  constructor(
    message: string,
    readonly site: number,
  ) {
    super(message);
  }
}

function validateExamples(builder: PolicyBuilder): void {
  for (const { rules, notMatches, site } of builder.pending) {
    for (const example of notMatches) {
      for (const rule of rules) {
        const m = ruleMatches(rule, example);
        if (m) throw new ExampleError(`expected example to not match rule \`${debugRuleMatch(m)}\`: ${shlexJoin(example)}`, site);
      }
    }
  }
  for (const { rules, matches, site } of builder.pending) {
    const unmatched = matches.filter((example) => !rules.some((r: PrefixRule) => ruleMatches(r, example)));
    if (unmatched.length > 0) {
      throw new ExampleError(
        `expected every example to match at least one rule. rules: [${rules.map((r) => debugString(debugPrefixRule(r))).join(', ')}]; ` +
          `unmatched examples: [${unmatched.map((e) => debugString(shlexJoin(e))).join(', ')}]`,
        site,
      );
    }
  }
}

/** Evaluates one file's source into `builder`; `name` is how the file is named in messages. */
export function evaluateRules(builder: PolicyBuilder, name: string, src: string): void {
  const context = `failed to parse policy at ${name}`;
  const start = builder.pending.length;
  const at = (offset: number): { file: string; line: number } => ({ file: name, line: lineOf(src, offset) });
  try {
    new Evaluator(new Map([...standardBuiltins(), ...rulesBuiltins(builder)])).run(parseModule(src));
  } catch (err) {
    if (err instanceof StarlarkSyntaxError)
      throw new PolicyLoadError(context, renderStarlarkError(src, name, err.message, err, []), at(err.start));
    if (err instanceof StarlarkEvalError)
      throw new PolicyLoadError(context, renderStarlarkError(src, name, err.message, err.span, err.frames), at(err.span.start));
    throw err;
  }
  try {
    validateExamples({ ...builder, pending: builder.pending.slice(start) });
  } catch (err) {
    if (err instanceof ExampleError) throw new PolicyLoadError(context, err.message, at(err.site));
    throw err;
  }
}

/**
 * Loads rules files in order into one policy (as `codex execpolicy check --rules A --rules B`
 * does). Relative paths are read from `cwd`; messages name each path as given.
 */
export async function loadPolicyFiles(paths: readonly string[], cwd = process.cwd()): Promise<Policy> {
  const builder = newPolicyBuilder();
  for (const p of paths) evaluateRules(builder, p, await readRules(p, cwd));
  return policyFrom(builder);
}

/** The 1-based line of an offset (one past the last line for an error at the very end). */
function lineOf(src: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < src.length; i++) if (src[i] === '\n') line++;
  return line;
}

export interface RulesDirectory {
  policy: Policy;
  /** The files loaded, in order. */
  loaded: string[];
  /** One line per file skipped because it does not load (Codex's display form). */
  warnings: string[];
}

/**
 * Loads every `*.rules` regular file of each directory (sorted by path, as Codex loads
 * `~/.codex/rules`), then the named `files`. A directory's file that does not load is skipped
 * whole, with a warning, and the others still apply; a named file that does not load is an error.
 * A missing directory has no rules; one that cannot be listed, or a file that cannot be read, is
 * an error (as in Codex).
 */
export async function loadRulesDirectory(
  dirs: readonly string[],
  files: readonly string[] = [],
  cwd = process.cwd(),
): Promise<RulesDirectory> {
  const builder = newPolicyBuilder();
  const warnings: string[] = [];
  const loaded: string[] = [];
  for (const dir of dirs) await loadDirectory(builder, dir, cwd, loaded, warnings);
  for (const p of files) {
    evaluateRules(builder, p, await readRules(p, cwd));
    loaded.push(p);
  }
  return { policy: policyFrom(builder), loaded, warnings };
}

async function loadDirectory(builder: PolicyBuilder, dir: string, cwd: string, loaded: string[], warnings: string[]): Promise<void> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(path.resolve(cwd, dir), { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new PolicyLoadError(`failed to read rules files from ${dir}`, ioErrorText(err as NodeJS.ErrnoException));
  }
  const files = entries
    .filter((e) => e.isFile() && path.extname(e.name) === '.rules')
    .map((e) => path.join(dir, e.name))
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  for (const file of files) {
    const src = await readRules(file, cwd, 'failed to read rules file');
    const mark = snapshot(builder);
    try {
      evaluateRules(builder, file, src);
      loaded.push(file);
    } catch (err) {
      if (!(err instanceof PolicyLoadError)) throw err;
      mark.restore();
      warnings.push(err.display);
    }
  }
}

/** Undoes whatever a file that failed half-way added to the builder. */
function snapshot(b: PolicyBuilder): { restore(): void } {
  const lengths = [b.prefixRules.length, b.networkRules.length, b.pending.length] as const;
  const hosts = new Map(b.hostExecutables);
  return {
    restore() {
      b.prefixRules.length = lengths[0];
      b.networkRules.length = lengths[1];
      b.pending.length = lengths[2];
      b.hostExecutables.clear();
      for (const [k, v] of hosts) b.hostExecutables.set(k, v);
    },
  };
}

async function readRules(p: string, cwd: string, what = 'failed to read policy at'): Promise<string> {
  try {
    return await readFile(path.resolve(cwd, p), 'utf8');
  } catch (err) {
    throw new PolicyLoadError(`${what} ${p}`, ioErrorText(err as NodeJS.ErrnoException));
  }
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
