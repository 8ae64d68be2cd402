import { existsSync, lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Access, FileSystemPolicy } from '../environment/permissions.js';

/** Where special paths point (docs/sandbox.md, "Profiles"). */
export interface ResolveContext {
  cwd: string;
  /** Workspace (project) roots; `:workspace_roots` expands to each. Defaults to [cwd]. */
  workspaceRoots?: string[];
  /** `$TMPDIR` of the server, for `:tmpdir`. */
  tmpdir?: string | undefined;
  /** Reports ignored entries (unknown special paths). */
  warn?: (message: string) => void;
}

export interface ResolvedEntry {
  path: string;
  access: Access;
}

/** A deny glob relative to every workspace root (a `:workspace_roots` scoped table in `cordon.toml`). */
export const PROJECT_ROOTS_GLOB = 'codex-project-roots://';

/** Kept read-only under every writable root (0.171 adds `.aws` to the `.git`/`.agents`/`.codex` carve-outs). */
export const PROTECTED_METADATA_NAMES = ['.git', '.agents', '.codex', '.aws', '.cordon'] as const;

export const PLATFORM_DEFAULT_READ_ROOTS = ['/bin', '/sbin', '/usr', '/etc', '/lib', '/lib64', '/nix/store', '/run/current-system/sw'];

const RANK: Record<Access, number> = { read: 0, write: 1, deny: 2 };

const components = (p: string): number => (p === '/' ? 0 : p.split('/').length - 1);

/** Whether `ancestor` is `p` or a path-component prefix of it. */
export const isWithin = (p: string, ancestor: string): boolean =>
  p === ancestor || ancestor === '/' || p.startsWith(ancestor.endsWith('/') ? ancestor : `${ancestor}/`);

const isDir = (p: string): boolean => {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
};

/** A policy's entries with special paths made absolute; globs are kept apart. */
export interface ResolvedPolicy {
  kind: FileSystemPolicy['kind'];
  entries: ResolvedEntry[];
  denyGlobs: string[];
  includePlatformDefaults: boolean;
  globScanMaxDepth: number | undefined;
  cwd: string;
}

export function resolvePolicy(policy: FileSystemPolicy, ctx: ResolveContext): ResolvedPolicy {
  const cwd = path.resolve(ctx.cwd);
  if (policy.kind !== 'restricted')
    return { kind: policy.kind, entries: [], denyGlobs: [], includePlatformDefaults: false, globScanMaxDepth: undefined, cwd };
  const roots = (ctx.workspaceRoots?.length ? ctx.workspaceRoots : [cwd]).map((r) => path.resolve(cwd, r));
  const entries: ResolvedEntry[] = [];
  const denyGlobs: string[] = [];
  let includePlatformDefaults = false;
  const add = (p: string, access: Access): void => void entries.push({ path: path.resolve(cwd, p), access });
  for (const e of policy.entries) {
    const p = e.path;
    if (p.type === 'path') add(p.path, e.access);
    else if (p.type === 'glob_pattern') {
      const relativeToRoots = p.pattern.startsWith(PROJECT_ROOTS_GLOB) ? p.pattern.slice(PROJECT_ROOTS_GLOB.length) : undefined;
      if (e.access === 'deny' && relativeToRoots !== undefined) for (const r of roots) denyGlobs.push(path.join(r, relativeToRoots));
      else if (e.access === 'deny') denyGlobs.push(path.isAbsolute(p.pattern) ? p.pattern : path.join(cwd, p.pattern));
      else ctx.warn?.(`glob pattern ${p.pattern} is only supported with deny access; ignored`);
    } else {
      switch (p.kind) {
        case 'root':
          add('/', e.access);
          break;
        case 'minimal':
          if (e.access !== 'deny') includePlatformDefaults = true;
          break;
        case 'project_roots':
          for (const r of roots) add(p.subpath ? path.join(r, p.subpath) : r, e.access);
          break;
        case 'tmpdir':
          if (ctx.tmpdir && path.isAbsolute(ctx.tmpdir)) add(ctx.tmpdir, e.access);
          break;
        case 'slash_tmp':
          if (isDir('/tmp')) add('/tmp', e.access);
          break;
        case 'unknown':
          ctx.warn?.('an unknown special filesystem path is not recognized by this version and will be ignored');
          break;
      }
    }
  }
  return {
    kind: 'restricted',
    entries,
    denyGlobs: [...new Set(denyGlobs)].sort(),
    includePlatformDefaults,
    globScanMaxDepth: policy.globScanMaxDepth,
    cwd,
  };
}

/** Most specific entry wins; deny > write > read on ties; nothing matching = deny (docs/sandbox.md, "Profiles"). */
export function resolveAccess(policy: ResolvedPolicy, target: string): Access {
  if (policy.kind !== 'restricted') return 'write';
  const abs = path.resolve(policy.cwd, target);
  let best: ResolvedEntry | undefined;
  for (const e of policy.entries) {
    if (!isWithin(abs, e.path)) continue;
    if (
      !best ||
      components(e.path) > components(best.path) ||
      (components(e.path) === components(best.path) && RANK[e.access] > RANK[best.access])
    )
      best = e;
  }
  return best?.access ?? 'deny';
}

export interface WritableRoot {
  root: string;
  /** Paths under the root that stay read-only (metadata, narrower read entries). */
  readOnlySubpaths: string[];
  /** Metadata names that must not be created under the root when missing. */
  protectedMissingNames: string[];
}

export interface SandboxViews {
  fullRead: boolean;
  fullWrite: boolean;
  readableRoots: string[];
  writableRoots: WritableRoot[];
  unreadableRoots: string[];
  unreadableGlobs: string[];
}

/** The `gitdir:` target of a `.git` file, resolved against its directory. */
function gitdirPointer(dotGit: string): string | undefined {
  try {
    const m = /^gitdir:\s*(.+)$/m.exec(readFileSync(dotGit, 'utf8'));
    return m ? path.resolve(path.dirname(dotGit), (m[1] as string).trim()) : undefined;
  } catch {
    return undefined;
  }
}

const dedupe = (xs: string[]): string[] => [...new Set(xs)];

/** Whether a proper ancestor of `dir` holds a git repository (`.git` directory or `gitdir:` file). */
function insideGitRepository(dir: string): boolean {
  for (let d = path.dirname(dir); ; d = path.dirname(d)) {
    const dotGit = path.join(d, '.git');
    if (existsSync(path.join(dotGit, 'HEAD')) || gitdirPointer(dotGit)) return true;
    if (d === '/') return false;
  }
}

export interface DeriveOptions {
  /**
   * The writable roots under which missing protected metadata names are masked (a mask needs an
   * empty mount target on the host for as long as the sandbox lives): the project roots. Elsewhere
   * (/tmp, $TMPDIR, other writable roots) a missing name is left unmasked. Default: every root.
   */
  protectMissingIn?: readonly string[];
}

/** The views that drive bubblewrap (docs/sandbox.md, "What the sandbox enforces"). */
export function deriveViews(policy: ResolvedPolicy, options: DeriveOptions = {}): SandboxViews {
  if (policy.kind !== 'restricted') {
    return {
      fullRead: true,
      fullWrite: true,
      readableRoots: ['/'],
      writableRoots: [{ root: '/', readOnlySubpaths: [], protectedMissingNames: [] }],
      unreadableRoots: [],
      unreadableGlobs: [],
    };
  }
  const hasDeny = policy.entries.some((e) => e.access === 'deny') || policy.denyGlobs.length > 0;
  const rootReadable = policy.entries.some((e) => e.path === '/' && e.access !== 'deny');
  const fullRead = rootReadable && !hasDeny;
  const writtenPaths = new Set(policy.entries.filter((e) => e.access === 'write').map((e) => e.path));
  const rootWrite = writtenPaths.has('/');
  const narrowing =
    policy.entries.some((e) => e.access === 'deny' || (e.access === 'read' && !writtenPaths.has(e.path))) || policy.denyGlobs.length > 0;
  const fullWrite = rootWrite && !narrowing;

  const readableRoots = fullRead
    ? ['/']
    : dedupe([
        ...policy.entries.filter((e) => e.access !== 'deny' && resolveAccess(policy, e.path) !== 'deny').map((e) => e.path),
        ...(policy.includePlatformDefaults ? PLATFORM_DEFAULT_READ_ROOTS.filter((p) => existsSync(p)) : []),
      ]);

  const writableRoots: WritableRoot[] = [];
  if (!fullWrite) {
    for (const root of dedupe(
      policy.entries.filter((e) => e.access === 'write' && resolveAccess(policy, e.path) === 'write').map((e) => e.path),
    )) {
      const readOnly: string[] = [];
      const protectedMissing: string[] = [];
      for (const name of PROTECTED_METADATA_NAMES) {
        const p = path.join(root, name);
        const explicitlyWritable = policy.entries.some((e) => e.access === 'write' && isWithin(e.path, p));
        if (explicitlyWritable) continue;
        // An empty file or directory is treated as missing: it may be the mount target a concurrent
        // sandbox left for the same mask, and it holds nothing to protect.
        let exists = false;
        try {
          const info = lstatSync(p);
          exists = info.isDirectory() ? readdirSync(p).length > 0 : !(info.isFile() && info.size === 0);
        } catch {
          exists = false;
        }
        if (exists) {
          readOnly.push(p);
          if (name === '.git') {
            const pointer = gitdirPointer(p);
            if (pointer && existsSync(pointer)) readOnly.push(pointer);
          }
        } else if (options.protectMissingIn && !options.protectMissingIn.some((r) => path.resolve(r) === root)) {
          // Not a project root: no mount target in /tmp or other shared directories.
        } else if (!(name === '.git' && insideGitRepository(root))) {
          // A missing .git under a parent repository stays unmasked, or git would stop finding that repository.
          protectedMissing.push(name);
        }
      }
      for (const e of policy.entries) {
        if (e.path !== root && isWithin(e.path, root) && e.access === 'read' && resolveAccess(policy, e.path) === 'read')
          readOnly.push(e.path);
      }
      writableRoots.push({ root, readOnlySubpaths: dedupe(readOnly), protectedMissingNames: protectedMissing });
    }
  }

  const unreadableRoots = dedupe(
    policy.entries.filter((e) => e.access === 'deny' && e.path !== '/' && resolveAccess(policy, e.path) === 'deny').map((e) => e.path),
  );
  return { fullRead, fullWrite, readableRoots, writableRoots, unreadableRoots, unreadableGlobs: policy.denyGlobs };
}
