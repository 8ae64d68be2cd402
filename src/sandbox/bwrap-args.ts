import { lstatSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { isWithin, type SandboxViews } from './resolve.js';

/** What the argv builder needs to know about the disk; a fake makes the builder testable. */
export interface FsFacts {
  kind(p: string): 'file' | 'dir' | 'missing' | 'other';
  /** The path with symlinks resolved (the path itself when missing). */
  canonical(p: string): string;
}

export const hostFsFacts: FsFacts = {
  kind(p) {
    try {
      const s = lstatSync(p);
      if (s.isSymbolicLink()) {
        try {
          const t = lstatSync(realpathSync(p));
          return t.isDirectory() ? 'dir' : 'file';
        } catch {
          return 'missing';
        }
      }
      return s.isDirectory() ? 'dir' : s.isFile() ? 'file' : 'other';
    } catch {
      return 'missing';
    }
  },
  canonical(p) {
    try {
      return realpathSync(p);
    } catch {
      return p;
    }
  },
};

export interface BwrapOptions {
  command: string[];
  /** The directory the command starts in. */
  cwd: string;
  restrictNetwork: boolean;
  /** Mount a fresh /proc for the new PID namespace; when false, /proc is an empty tmpfs. */
  mountProc: boolean;
  /** Give the command a new terminal session (not for pty processes, which need their terminal). */
  newSession: boolean;
  /** bwrap supports --disable-userns (0.8+). */
  disableUserns: boolean;
  /** File descriptor of the seccomp program, as the child will see it. */
  seccompFd: number | undefined;
  /** File descriptor (as bwrap sees it) of /dev/null: bwrap copies its (empty) data into a mode-000 file bound over denied files, so no such file exists on the host. */
  denyFd: number;
  /** Host files bound read-only at their own paths after the filesystem view (the network bridge's node). */
  extraReadOnly?: string[];
}

/** The policy cannot be enforced as asked on this disk (a sandbox preparation failure). */
export class BwrapPlanError extends Error {}

/** The nearest existing ancestor of a missing path, when it is not a directory. */
function nonDirectoryAncestor(p: string, facts: FsFacts): string | undefined {
  for (let dir = path.dirname(p); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const kind = facts.kind(dir);
    if (kind === 'missing') continue;
    return kind === 'dir' ? undefined : dir;
  }
  return undefined;
}

export interface BwrapPlan {
  args: string[];
  /** Host paths bwrap creates as mount targets; remove after the run unless they existed before. */
  syntheticTargets: string[];
}

const depth = (p: string): number => (p === '/' ? 0 : p.split('/').length);
const byDepth = (a: string, b: string): number => depth(a) - depth(b) || a.localeCompare(b);

/**
 * `profile views + cwd -> bwrap argv` (docs/sandbox.md, "What the sandbox enforces"), pure but for
 * the FsFacts it is given. Later mounts shadow earlier ones: base view, /dev, deny ancestors of
 * writable roots, writable roots with their read-only carve-outs and protected metadata masks, then
 * the remaining denies.
 */
export function buildBwrapArgs(views: SandboxViews, options: BwrapOptions, facts: FsFacts = hostFsFacts): BwrapPlan {
  const args: string[] = ['--die-with-parent'];
  const synthetic: string[] = [];
  if (options.newSession) args.push('--new-session');

  const readAll = views.fullRead || views.readableRoots.includes('/');
  if (readAll) args.push('--ro-bind', '/', '/');
  else {
    args.push('--tmpfs', '/');
    for (const root of [...views.readableRoots].sort(byDepth)) {
      if (facts.kind(root) === 'missing') continue;
      const real = facts.canonical(root);
      args.push('--ro-bind', real, real);
      if (real !== root) args.push('--symlink', real, root);
    }
  }
  args.push('--dev', '/dev');

  const writable = views.fullWrite
    ? [{ root: '/', readOnlySubpaths: [] as string[], protectedMissingNames: [] as string[] }]
    : views.writableRoots.filter((w) => facts.kind(w.root) === 'dir' || facts.kind(w.root) === 'file');
  const writableReal = writable.map((w) => facts.canonical(w.root));
  const denies = [...new Set(views.unreadableRoots)].sort(byDepth);

  const denyMask = (p: string): void => void args.push('--perms', '000', '--ro-bind-data', String(options.denyFd), p);
  const mask = (p: string, insideWritable: boolean): void => {
    const kind = facts.kind(p);
    if (kind === 'dir') {
      const holdsWritable = writableReal.some((w) => w !== p && isWithin(w, p));
      args.push('--perms', holdsWritable ? '111' : '000', '--tmpfs', p);
      if (!holdsWritable) args.push('--remount-ro', p);
    } else if (kind === 'file' || kind === 'other') {
      denyMask(p);
    } else if (insideWritable) {
      // Keep a denied name from being created and then read: an unreadable empty file holds its place.
      // Below a file nothing can hold the place, and the command could replace the file with a
      // directory and create the name: refuse rather than run without the deny.
      const blocker = nonDirectoryAncestor(p, facts);
      if (blocker)
        throw new BwrapPlanError(
          `cannot enforce the deny entry ${p}: ${blocker} is a file in a writable root, so the path could be created`,
        );
      denyMask(p);
      synthetic.push(p);
    }
  };

  // Deny roots that contain a writable root are masked first, so the writable root can be reopened inside.
  const ancestorDenies = denies.filter((d) => writableReal.some((w) => w !== d && isWithin(w, d)));
  for (const d of ancestorDenies) mask(facts.canonical(d), false);

  for (const [i, w] of writable
    .map((w, i) => [i, w] as const)
    .sort((a, b) => byDepth(writableReal[a[0]] as string, writableReal[b[0]] as string))) {
    const real = writableReal[i] as string;
    if (real === '/') args.push('--bind', '/', '/', '--dev', '/dev');
    else args.push('--bind', real, real);
    const remap = (p: string): string => (isWithin(p, w.root) ? path.join(real, path.relative(w.root, p)) : facts.canonical(p));
    for (const sub of w.readOnlySubpaths.map(remap).sort(byDepth)) {
      if (denies.some((d) => isWithin(sub, d))) continue;
      if (facts.kind(sub) === 'missing') continue;
      const subReal = facts.canonical(sub);
      args.push('--ro-bind', subReal, subReal);
    }
    for (const name of w.protectedMissingNames) {
      const p = path.join(real, name);
      const kind = facts.kind(p);
      if (kind === 'file') denyMask(p);
      else args.push('--perms', '555', '--tmpfs', p, '--remount-ro', p);
      if (kind === 'missing') synthetic.push(p);
    }
    for (const d of denies) {
      if (ancestorDenies.includes(d)) continue;
      const dReal = remap(d);
      if (isWithin(dReal, real) && dReal !== real) mask(dReal, true);
    }
  }

  for (const d of denies) {
    if (ancestorDenies.includes(d)) continue;
    if (writable.some((w, i) => isWithin(d, w.root) || isWithin(facts.canonical(d), writableReal[i] as string))) continue;
    mask(facts.canonical(d), false);
  }
  for (const d of ancestorDenies) args.push('--remount-ro', facts.canonical(d));

  for (const f of options.extraReadOnly ?? []) {
    const real = facts.canonical(f);
    args.push('--ro-bind', real, real);
  }

  args.push('--unshare-user', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try');
  if (options.restrictNetwork) args.push('--unshare-net');
  if (options.disableUserns) args.push('--disable-userns');
  if (options.mountProc) args.push('--proc', '/proc');
  else args.push('--tmpfs', '/proc');
  args.push('--cap-drop', 'ALL');
  if (options.seccompFd !== undefined) args.push('--seccomp', String(options.seccompFd));
  args.push('--chdir', facts.canonical(options.cwd));
  args.push('--', ...options.command);
  return { args, syntheticTargets: synthetic };
}
