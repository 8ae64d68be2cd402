import { homedir } from 'node:os';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import type { Access, FsEntry, PermissionProfile, SpecialKind } from '../environment/permissions.js';
import { builtinProfile, isBuiltinProfileName } from './builtin-profiles.js';
import { hasGlobMeta } from './glob.js';

/** A `cordon.toml` problem, naming the exact key (docs/sandbox.md). */
export class PermissionsConfigError extends Error {}

type Table = Record<string, unknown>;
const isTable = (v: unknown): v is Table => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

export interface CompiledProfile {
  name: string;
  profile: PermissionProfile;
  /** Extra workspace roots from `[permissions.NAME.workspace_roots]`. */
  workspaceRoots: string[];
  /** `[permissions.NAME.network]` keys for the managed proxy, when any is set (docs/network.md). */
  network?: { mode: 'full' | 'limited'; domains: Record<string, 'allow' | 'deny'>; allowLocalBinding: boolean; trustedRanges: string[] };
  warnings: string[];
}

const SPECIALS: Record<string, SpecialKind> = {
  ':root': 'root',
  ':minimal': 'minimal',
  ':workspace_roots': 'project_roots',
  ':project_roots': 'project_roots',
  ':tmpdir': 'tmpdir',
  ':slash_tmp': 'slash_tmp',
};

/** Built-in parents, expanded to the TOML they stand for. */
const BUILTIN_TOML: Record<string, Table> = {
  ':read-only': { filesystem: { ':root': 'read' } },
  ':workspace': {
    filesystem: {
      ':root': 'read',
      ':workspace_roots': { '.': 'write', '.git': 'read', '.agents': 'read', '.codex': 'read' },
      ':slash_tmp': 'write',
      ':tmpdir': 'write',
    },
  },
};

function deepMerge(parent: Table, child: Table): Table {
  const out: Table = { ...parent };
  for (const [k, v] of Object.entries(child)) out[k] = isTable(v) && isTable(out[k]) ? deepMerge(out[k] as Table, v) : v;
  return out;
}

function parseAccess(value: unknown, key: string): Access {
  if (value === 'read' || value === 'write' || value === 'deny') return value;
  if (value === 'none') return 'deny';
  throw new PermissionsConfigError(
    `filesystem path \`${key}\` has invalid access ${JSON.stringify(value)}: expected "read", "write" or "deny"`,
  );
}

function expandHome(p: string, home: string): string {
  if (p === '~') return home;
  if (p.startsWith('~/')) return path.join(home, p.slice(2));
  return p;
}

function checkSubpath(sub: string): void {
  const parts = sub.split('/');
  if (sub === '' || path.isAbsolute(sub) || parts.some((c) => c === '.' || c === '..' || c === '')) {
    throw new PermissionsConfigError(`filesystem subpath \`${sub}\` must be a descendant path without \`.\` or \`..\` components`);
  }
}

/** One `key = access` rule at an absolute base, with the glob rules of `cordon.toml` (docs/sandbox.md). */
function pathRule(full: string, key: string, access: Access, into: FsEntry[], warnings: string[]): void {
  if (hasGlobMeta(full)) {
    if (access === 'deny') return void into.push({ path: { type: 'glob_pattern', pattern: full }, access });
    if (full.endsWith('/**') && !hasGlobMeta(full.slice(0, -3)))
      return void into.push({ path: { type: 'path', path: full.slice(0, -3) }, access });
    warnings.push(`filesystem glob path \`${key}\` only supports \`deny\` access`);
    throw new PermissionsConfigError(
      `filesystem glob path \`${key}\` only supports \`deny\` access; use an exact path or trailing \`/**\` for \`write\` subtree access`,
    );
  }
  into.push({ path: { type: 'path', path: full }, access });
}

function compileFilesystem(fs: Table, home: string, warnings: string[]): { entries: FsEntry[]; depth: number | undefined } {
  const entries: FsEntry[] = [];
  let depth: number | undefined;
  for (const key of Object.keys(fs).sort()) {
    const value = fs[key];
    if (key === 'glob_scan_max_depth') {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 1)
        throw new PermissionsConfigError('glob_scan_max_depth must be at least 1');
      depth = value;
      continue;
    }
    if (key.startsWith(':')) {
      const kind = SPECIALS[key];
      if (!kind) warnings.push(`Configured filesystem path \`${key}\` is not recognized by this version of Cordon and will be ignored`);
      if (isTable(value)) {
        if (kind && kind !== 'project_roots')
          throw new PermissionsConfigError(`filesystem path \`${key}\` does not support nested entries`);
        for (const sub of Object.keys(value).sort()) {
          const access = parseAccess(value[sub], `${key}/${sub}`);
          if (!kind) continue;
          if (sub === '.') entries.push({ path: { type: 'special', kind }, access });
          else if (hasGlobMeta(sub)) {
            if (access !== 'deny') {
              if (sub.endsWith('/**') && !hasGlobMeta(sub.slice(0, -3))) {
                checkSubpath(sub.slice(0, -3));
                entries.push({ path: { type: 'special', kind, subpath: sub.slice(0, -3) }, access });
                continue;
              }
              throw new PermissionsConfigError(
                `filesystem glob path \`${sub}\` only supports \`deny\` access; use an exact path or trailing \`/**\` for \`write\` subtree access`,
              );
            }
            entries.push({ path: { type: 'glob_pattern', pattern: `codex-project-roots://${sub}` }, access });
          } else {
            checkSubpath(sub);
            entries.push({ path: { type: 'special', kind, subpath: sub }, access });
          }
        }
        continue;
      }
      const access = parseAccess(value, key);
      if (kind) entries.push({ path: { type: 'special', kind }, access });
      continue;
    }
    const full = expandHome(key, home);
    if (!path.isAbsolute(full))
      throw new PermissionsConfigError(`filesystem path \`${key}\` must be absolute, use \`~/...\`, or start with \`:\``);
    if (isTable(value)) {
      for (const sub of Object.keys(value).sort()) {
        const access = parseAccess(value[sub], `${key}/${sub}`);
        if (sub === '.') pathRule(full, key, access, entries, warnings);
        else {
          if (!hasGlobMeta(sub)) checkSubpath(sub);
          pathRule(path.join(full, sub), `${key}/${sub}`, access, entries, warnings);
        }
      }
      continue;
    }
    pathRule(path.normalize(full), key, parseAccess(value, key), entries, warnings);
  }
  return { entries, depth };
}

/**
 * Compiles `[permissions.NAME]` of a `cordon.toml` (the format of docs/sandbox.md, "Writing your
 * own: `cordon.toml`") into a PermissionProfile. `name` defaults to `default_permissions`; built-in
 * names (`:read-only`, `:workspace`, `:danger-full-access`) need no table.
 */
export function compilePermissions(configText: string, name?: string, options: { home?: string } = {}): CompiledProfile {
  let doc: Table;
  try {
    doc = parseToml(configText) as Table;
  } catch (err) {
    throw new PermissionsConfigError(`invalid TOML: ${err instanceof Error ? err.message : String(err)}`);
  }
  const home = options.home ?? homedir();
  const selected = name ?? (typeof doc.default_permissions === 'string' ? doc.default_permissions : ':read-only');
  const permissions = doc.permissions;
  if (permissions !== undefined && !isTable(permissions)) throw new PermissionsConfigError('`permissions` must be a table');
  for (const key of Object.keys(permissions ?? {})) {
    if (key.startsWith(':')) throw new PermissionsConfigError(`permissions profile \`${key}\` uses a reserved built-in profile prefix`);
  }
  if (selected.startsWith(':')) {
    if (!isBuiltinProfileName(selected))
      throw new PermissionsConfigError(`default_permissions refers to unknown built-in profile \`${selected}\``);
    return { name: selected, profile: builtinProfile(selected), workspaceRoots: [], warnings: [] };
  }
  if (!permissions) throw new PermissionsConfigError('default_permissions requires a `[permissions]` table');
  if (!isTable(permissions[selected])) throw new PermissionsConfigError(`default_permissions refers to undefined profile \`${selected}\``);

  // Resolve `extends`, child -> parent, then merge parent first so the child wins key by key.
  const chain: string[] = [];
  let merged: Table = {};
  const layers: Table[] = [];
  for (let current: string | undefined = selected; current !== undefined; ) {
    if (chain.includes(current))
      throw new PermissionsConfigError(`permissions profile inheritance cycle detected: ${[...chain, current].join(' -> ')}`);
    chain.push(current);
    let table: Table;
    if (current.startsWith(':')) {
      const builtin = BUILTIN_TOML[current];
      if (!builtin)
        throw new PermissionsConfigError(
          `permissions profile \`${chain[chain.length - 2]}\` extends unsupported built-in profile \`${current}\`: only \`:read-only\` and \`:workspace\` can be extended`,
        );
      table = builtin;
    } else {
      const t = permissions[current];
      if (!isTable(t))
        throw new PermissionsConfigError(`permissions profile \`${chain[chain.length - 2]}\` extends undefined profile \`${current}\``);
      table = t;
    }
    layers.unshift(table);
    current = typeof table.extends === 'string' ? table.extends : undefined;
  }
  for (const layer of layers) {
    const { description: _d, extends: _e, ...rest } = layer;
    merged = deepMerge(merged, rest);
  }
  const warnings: string[] = [];
  const fsTable = isTable(merged.filesystem) ? merged.filesystem : {};
  const { entries, depth } = compileFilesystem(fsTable, home, warnings);
  if (entries.length === 0)
    warnings.push(`permissions profile \`${selected}\` has no filesystem entries: filesystem access stays restricted`);
  const network = isTable(merged.network) && merged.network.enabled === true ? 'enabled' : 'restricted';
  const roots = isTable(merged.workspace_roots)
    ? Object.entries(merged.workspace_roots)
        .filter(([, enabled]) => enabled === true)
        .map(([p]) => expandHome(p, home))
    : [];
  const netTable = isTable(merged.network) ? merged.network : {};
  let proxyPolicy: CompiledProfile['network'];
  if (['domains', 'mode', 'allow_local_binding', 'trusted_ranges'].some((k) => netTable[k] !== undefined)) {
    const mode = netTable.mode ?? 'full';
    if (mode !== 'full' && mode !== 'limited')
      throw new PermissionsConfigError(`network.mode must be "full" or "limited", not ${JSON.stringify(mode)}`);
    const domains: Record<string, 'allow' | 'deny'> = {};
    if (netTable.domains !== undefined && !isTable(netTable.domains))
      throw new PermissionsConfigError('network.domains must be a table of pattern = "allow" | "deny"');
    for (const [pattern, decision] of Object.entries((netTable.domains as Table | undefined) ?? {})) {
      if (decision !== 'allow' && decision !== 'deny')
        throw new PermissionsConfigError(`network.domains.${JSON.stringify(pattern)} must be "allow" or "deny"`);
      domains[pattern] = decision;
    }
    const trusted = netTable.trusted_ranges ?? [];
    if (!Array.isArray(trusted) || trusted.some((t) => typeof t !== 'string'))
      throw new PermissionsConfigError('network.trusted_ranges must be a list of CIDR strings');
    if (netTable.allow_local_binding !== undefined && typeof netTable.allow_local_binding !== 'boolean')
      throw new PermissionsConfigError('network.allow_local_binding must be a boolean');
    proxyPolicy = { mode, domains, allowLocalBinding: netTable.allow_local_binding === true, trustedRanges: trusted as string[] };
  }
  return {
    ...(proxyPolicy ? { network: proxyPolicy } : {}),
    name: selected,
    profile: {
      enforcement: 'managed',
      network,
      fileSystem: { kind: 'restricted', entries, ...(depth ? { globScanMaxDepth: depth } : {}) },
    },
    workspaceRoots: roots,
    warnings,
  };
}
