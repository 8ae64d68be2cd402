import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';

/** Glob metacharacters (docs/sandbox.md, "Writing your own: `cordon.toml`"). */
const META = /[*?[\]]/;

export const hasGlobMeta = (p: string): boolean => META.test(p);

/**
 * Git-style glob (literal separator): `*` and `?` never cross `/`, `**` as a whole component spans
 * directories (zero or more), `[...]` is a class, and an unclosed `[` is a literal `[`.
 */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i] as string;
    if (ch === '*') {
      if (glob[i + 1] === '*') {
        const atStart = i === 0 || glob[i - 1] === '/';
        const atEnd = i + 2 === glob.length || glob[i + 2] === '/';
        if (atStart && atEnd) {
          if (i + 2 === glob.length) re += '.*';
          else {
            re += '(?:.*/)?';
            i += 2; // also consume the following '/'
            continue;
          }
          i += 1;
          continue;
        }
      }
      re += '[^/]*';
    } else if (ch === '?') re += '[^/]';
    else if (ch === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close === -1) re += '\\[';
      else {
        let body = glob.slice(i + 1, close);
        const negate = body.startsWith('!') || body.startsWith('^');
        if (negate) body = body.slice(1);
        re += `[${negate ? '^' : ''}${body.replace(/\\/g, '\\\\').replace(/]/g, '\\]')}]`;
        i = close;
      }
    } else re += ch.replace(/[.+^${}()|\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's');
}

export class GlobExpansionError extends Error {}

export interface GlobExpansionOptions {
  /** Directory levels below the search root to scan; undefined = no cap. */
  maxDepth?: number;
  /** More matches than this is an error (fail closed). */
  maxMatches: number;
}

/** The static part of an absolute glob up to its last `/` before the first metacharacter. */
export function globSearchRoot(glob: string): string {
  const first = glob.search(META);
  if (first === -1) return path.dirname(glob);
  const prefix = glob.slice(0, first);
  return prefix.slice(0, prefix.lastIndexOf('/')) || '/';
}

/**
 * Expands absolute deny globs against the disk now (docs/sandbox.md, "What the sandbox enforces"):
 * files, directories and symlinks that match, without following symlinked directories. Too-broad
 * roots (`/`) are skipped; an unreadable directory or too many matches is an error, so a deny never
 * silently weakens.
 */
export async function expandGlobs(globs: string[], options: GlobExpansionOptions): Promise<string[]> {
  const matches = new Set<string>();
  for (const glob of globs) {
    const root = globSearchRoot(glob);
    if (root === '/' || root === '') continue;
    let rootInfo;
    try {
      rootInfo = await lstat(root);
    } catch {
      continue;
    }
    if (!rootInfo.isDirectory()) continue;
    const re = globToRegExp(glob);
    const walk = async (dir: string, depth: number): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') return; // vanished while we walked: nothing to hide there
        throw new GlobExpansionError(`deny-read glob scan failed for ${dir}: ${(err as Error).message}`);
      }
      for (const e of entries) {
        const full = path.join(dir, e.name);
        if (re.test(full)) {
          matches.add(full);
          if (matches.size > options.maxMatches) {
            throw new GlobExpansionError(`deny-read glob expansion for ${root} matched more than ${options.maxMatches} paths`);
          }
        }
        if (e.isDirectory() && (options.maxDepth === undefined || depth < options.maxDepth)) await walk(full, depth + 1);
      }
    };
    await walk(root, 1);
  }
  return [...matches].sort();
}
