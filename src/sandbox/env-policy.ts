import type { EnvPolicy } from '../protocol/process.js';

/** Variables `inherit: "core"` keeps from the server's environment (the reference's Unix list). */
export const CORE_ENV_VARS = ['PATH', 'SHELL', 'TMPDIR', 'TEMP', 'TMP', 'HOME', 'LANG', 'LC_ALL', 'LC_CTYPE', 'LOGNAME', 'USER'] as const;

export const DEFAULT_EXCLUDES = ['*KEY*', '*SECRET*', '*TOKEN*'] as const;

/**
 * Case-insensitive wildcard with only `*` and `?`, as the reference's env patterns. Glob libraries
 * give `[`, `{` and `!` meanings that env patterns do not have, so this is written out.
 */
export function wildcardToRegExp(pattern: string): RegExp {
  let source = '';
  for (const ch of pattern) {
    if (ch === '*') source += '.*';
    else if (ch === '?') source += '.';
    else source += ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, 'is');
}

const matcher = (patterns: readonly string[]): ((name: string) => boolean) => {
  const res = patterns.map(wildcardToRegExp);
  return (name) => res.some((re) => re.test(name));
};

/**
 * The child's environment (docs/protocol.md §7.1.1): without a policy exactly `env`; with one, the
 * server's environment filtered by the policy, then `env` on top, unfiltered.
 */
export function buildChildEnv(
  env: Record<string, string>,
  policy: EnvPolicy | null | undefined,
  serverEnv: Readonly<Record<string, string | undefined>>,
): Record<string, string> {
  if (!policy) return { ...env };
  const out = new Map<string, string>();
  const source = Object.entries(serverEnv).filter((e): e is [string, string] => typeof e[1] === 'string');
  if (policy.inherit === 'all') for (const [k, v] of source) out.set(k, v);
  else if (policy.inherit === 'core') {
    const core = new Set<string>(CORE_ENV_VARS);
    for (const [k, v] of source) if (core.has(k)) out.set(k, v);
  }
  if (!policy.ignoreDefaultExcludes) {
    const isDefaultExcluded = matcher(DEFAULT_EXCLUDES);
    for (const k of [...out.keys()]) if (isDefaultExcluded(k)) out.delete(k);
  }
  if (policy.exclude.length > 0) {
    const isExcluded = matcher(policy.exclude);
    for (const k of [...out.keys()]) if (isExcluded(k)) out.delete(k);
  }
  for (const [k, v] of Object.entries(policy.set)) out.set(k, v);
  if (policy.includeOnly.length > 0) {
    const isIncluded = matcher(policy.includeOnly);
    for (const k of [...out.keys()]) if (!isIncluded(k)) out.delete(k);
  }
  for (const [k, v] of Object.entries(env)) out.set(k, v);
  return Object.fromEntries(out);
}
