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
  if (command.length === 0 || opts.rules.length === 0) {
    const missing = [...(opts.rules.length === 0 ? ['--rules <PATH>'] : []), ...(command.length === 0 ? ['<COMMAND>...'] : [])];
    process.stderr.write(
      `error: the following required arguments were not provided:\n${missing.map((m) => `  ${m}\n`).join('')}\n` +
        'Usage: cordon policy check --rules <PATH> <COMMAND>...\n\nFor more information, try \'--help\'.\n',
    );
    return 2;
  }
  try {
    const policy = await loadPolicyFiles(opts.rules);
    const evaluation = policy.check([command], { resolveHostExecutables: opts.resolveHostExecutables ?? false });
    process.stdout.write(`${formatCheck(evaluation, opts.pretty ?? false)}\n`);
    return 0;
  } catch (err) {
    if (err instanceof PolicyLoadError) {
      process.stderr.write(err.report);
      return 1;
    }
    throw err;
  }
}
