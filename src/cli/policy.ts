import { formatCheck, loadPolicyFiles, PolicyLoadError } from '../execpolicy/index.js';

export interface PolicyCheckOptions {
  rules: string[];
  pretty?: boolean;
  resolveHostExecutables?: boolean;
}

/**
 * `cordon policy check`: the document, exit status and error text of `codex execpolicy check`
 * for the same rules files and command (the command is judged as given, not split).
 */
export async function runPolicyCheck(command: string[], opts: PolicyCheckOptions): Promise<number> {
  const r = await policyCheck(command, opts);
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  return r.code;
}

/** What `cordon policy check` prints and returns; rules paths are read relative to `cwd`. */
export async function policyCheck(
  command: string[],
  opts: PolicyCheckOptions,
  cwd = process.cwd(),
): Promise<{ stdout: string; stderr: string; code: number }> {
  if (command.length === 0 || opts.rules.length === 0) {
    const missing = [...(opts.rules.length === 0 ? ['--rules <PATH>'] : []), ...(command.length === 0 ? ['<COMMAND>...'] : [])];
    const stderr =
      `error: the following required arguments were not provided:\n${missing.map((m) => `  ${m}\n`).join('')}\n` +
      "Usage: cordon policy check --rules <PATH> <COMMAND>...\n\nFor more information, try '--help'.\n";
    return { stdout: '', stderr, code: 2 };
  }
  try {
    const policy = await loadPolicyFiles(opts.rules, cwd);
    const evaluation = policy.check([command], { resolveHostExecutables: opts.resolveHostExecutables ?? false });
    return { stdout: `${formatCheck(evaluation, opts.pretty ?? false)}\n`, stderr: '', code: 0 };
  } catch (err) {
    if (err instanceof PolicyLoadError) return { stdout: '', stderr: err.report, code: 1 };
    throw err;
  }
}
