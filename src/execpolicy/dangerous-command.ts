/**
 * Codex's dangerous-command classifier, used for commands no rule matches: a forced `rm` (a
 * `-…f…` flag or `--force` anywhere before `--`), also behind `sudo`, `env [-i] [NAME=value]…`,
 * a `trap` action, and anywhere a `bash`/`sh`/`zsh -c` script literally spells one (in loops,
 * substitutions, subshells, nested shells). Measured against Codex 0.171.0: `git reset --hard`,
 * `git clean -fdx`, `rm -r x`, `echo 'rm -rf x'`, `cmd=rm; $cmd -rf x`, `xargs rm -rf`,
 * `find -exec rm -rf`, `sudo -u root rm -rf x`, `env -u X rm -rf x` and `time rm -rf x` are
 * not flagged.
 */
import path from 'node:path';

export type DangerousCommandMatch = 'forcedRm' | 'other';

/** Extracts the literal commands of a shell script argv (ShellSplitter.literalCommands). */
export type LiteralCommands = (argv: readonly string[]) => string[][] | null;

/** Wrappers nested deeper than this are reported dangerous rather than followed. */
const MAX_WRAPPER_DEPTH = 8;

export function dangerousCommandMatch(command: readonly string[], literal: LiteralCommands, depth = 0): DangerousCommandMatch | undefined {
  if (depth > MAX_WRAPPER_DEPTH) return 'other';
  const direct = directMatch(command, literal, depth);
  if (direct) return direct;
  for (const inner of literal(command) ?? []) {
    const m = dangerousCommandMatch(inner, literal, depth + 1);
    if (m) return m;
  }
  return undefined;
}

function directMatch(command: readonly string[], literal: LiteralCommands, depth: number): DangerousCommandMatch | undefined {
  const first = command[0];
  if (first === undefined) return undefined;
  switch (path.basename(first)) {
    case 'rm':
      return forcesRemoval(command.slice(1)) ? 'forcedRm' : undefined;
    case 'sudo':
      return dangerousCommandMatch(command.slice(1), literal, depth + 1);
    case 'env': {
      let i = 1;
      for (; i < command.length; i++) {
        const arg = command[i] as string;
        if (arg === '--') {
          i++;
          break;
        }
        const eq = arg.indexOf('=');
        const assignment = eq > 0 && !arg.startsWith('-');
        if (arg !== '-i' && arg !== '--ignore-environment' && !assignment) break;
      }
      return dangerousCommandMatch(command.slice(i), literal, depth + 1);
    }
    case 'trap': {
      const at = command[1] === '--' ? 2 : 1;
      const action = command[at];
      if (action === undefined || action.startsWith('-')) return undefined;
      return dangerousCommandMatch(['sh', '-c', action], literal, depth + 1);
    }
    default:
      return undefined;
  }
}

function forcesRemoval(args: readonly string[]): boolean {
  for (const arg of args) {
    if (arg === '--') return false;
    if (arg === '--force') return true;
    if (arg.startsWith('-') && !arg.startsWith('--') && arg.includes('f')) return true;
  }
  return false;
}
