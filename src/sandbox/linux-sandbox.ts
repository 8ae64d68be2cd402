import { execFile } from 'node:child_process';
import { accessSync, chmodSync, constants, lstatSync, mkdtempSync, rmdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { PermissionProfile } from '../environment/permissions.js';
import { buildBwrapArgs } from './bwrap-args.js';
import { expandGlobs, GlobExpansionError } from './glob.js';
import { deriveViews, resolvePolicy } from './resolve.js';
import { buildSeccompFilter, seccompSupported } from './seccomp.js';

export class SandboxUnavailableError extends Error {}
/** The sandbox exists on this host but could not be prepared for this request (e.g. too many deny-glob matches). */
export class SandboxPreparationError extends SandboxUnavailableError {}

/** GNU env, whose --default-signal restores signals bwrap was started with ignored (tty processes). */
const ENV_BINARY = '/usr/bin/env';

export const DOCTOR_HINT = 'run `cordon doctor` for the cause and the fix';

/** A command rewritten to run inside the sandbox. */
export interface SandboxedCommand {
  file: string;
  args: string[];
  /** A file to open read-only as the command's fd 3 (the seccomp program), when `file` is bwrap itself. */
  fd3?: string;
  /** Variables added to the command's environment. */
  env: Record<string, string>;
  /** Removes what bwrap created on the host; call once the process is gone. */
  cleanup(): Promise<void>;
}

export interface SandboxLaunch {
  profile: PermissionProfile;
  /** The cwd special paths resolve against (the sandbox's cwd, else the command's). */
  policyCwd: string;
  commandCwd: string;
  command: string[];
  tty: boolean;
  workspaceRoots?: string[];
}

interface HostSupport {
  bwrap: string;
  disableUserns: boolean;
  mountProc: boolean;
}

export interface LinuxSandboxOptions {
  /** PATH used to find bwrap. */
  searchPath: string | undefined;
  /** `$TMPDIR` for the `:tmpdir` special path. */
  tmpdir: string | undefined;
  maxGlobMatches: number;
}

const run = (file: string, args: string[]): Promise<{ code: number; stderr: string; stdout: string }> =>
  new Promise((resolve) => {
    execFile(file, args, { timeout: 10_000, maxBuffer: 64 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 127) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });

export function findBwrap(searchPath: string | undefined): string | undefined {
  for (const dir of (searchPath ?? '/usr/local/bin:/usr/bin:/bin').split(':')) {
    if (!dir) continue;
    const candidate = path.join(dir, 'bwrap');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

/**
 * Runs commands under bubblewrap + seccomp (SANDBOX.md §4). One per server: it probes the host
 * once, and owns a private directory holding the seccomp programs and the mode-000 file bound over
 * denied files; that directory is itself denied inside every sandbox.
 */
export class LinuxSandbox {
  private support: Promise<HostSupport> | undefined;
  private privateDir: string | undefined;
  /** Mount targets bwrap created on the host, shared by live sandboxes: removed when the last one ends. */
  private readonly targets = new Map<string, { users: number; preexisting: boolean }>();

  constructor(private readonly options: LinuxSandboxOptions) {}

  private files(): { dir: string; denyFile: string; filter: (restrictNetwork: boolean) => string } {
    if (!this.privateDir) {
      const dir = mkdtempSync(path.join(tmpdir(), 'cordon-sandbox-'));
      const denyFile = path.join(dir, 'denied');
      writeFileSync(denyFile, '');
      chmodSync(denyFile, 0o000);
      for (const restrict of [true, false]) writeFileSync(path.join(dir, `seccomp-${restrict ? 'net-restricted' : 'net-enabled'}.bpf`), buildSeccompFilter({ restrictNetwork: restrict }));
      this.privateDir = dir;
      process.once('exit', this.removeOnExit); // also when the process ends without dispose()
    }
    const dir = this.privateDir;
    return { dir, denyFile: path.join(dir, 'denied'), filter: (r) => path.join(dir, `seccomp-${r ? 'net-restricted' : 'net-enabled'}.bpf`) };
  }

  /** Host paths hidden inside every sandbox of this runtime: its private directory, once made. */
  hiddenPaths(): readonly string[] {
    return this.privateDir ? [this.privateDir] : [];
  }

  /** Finds bwrap and checks, once, that it can build a sandbox here. Fails closed with the cause. */
  probe(): Promise<HostSupport> {
    this.support ??= (async () => {
      if (process.platform !== 'linux') throw new SandboxUnavailableError(`sandboxing needs Linux (this is ${process.platform}); ${DOCTOR_HINT}`);
      if (!seccompSupported()) throw new SandboxUnavailableError(`sandboxing needs x86_64 or aarch64 for its seccomp filter (this is ${process.arch}); ${DOCTOR_HINT}`);
      const bwrap = findBwrap(this.options.searchPath);
      if (!bwrap) throw new SandboxUnavailableError(`sandbox requested but bubblewrap (bwrap) was not found on PATH: install the bubblewrap package; ${DOCTOR_HINT}`);
      const help = await run(bwrap, ['--help']);
      const disableUserns = help.stdout.includes('--disable-userns');
      const base = ['--ro-bind', '/', '/', '--dev', '/dev', '--unshare-user', '--unshare-pid', '--cap-drop', 'ALL'];
      const withProc = await run(bwrap, [...base, '--proc', '/proc', '--', 'true']);
      if (withProc.code === 0) return { bwrap, disableUserns, mountProc: true };
      const withoutProc = await run(bwrap, [...base, '--', 'true']);
      if (withoutProc.code === 0) return { bwrap, disableUserns, mountProc: false };
      throw new SandboxUnavailableError(`bubblewrap cannot create a sandbox on this host: ${withoutProc.stderr.trim() || `exit ${withoutProc.code}`}; ${DOCTOR_HINT}`);
    })();
    return this.support;
  }

  async wrap(launch: SandboxLaunch): Promise<SandboxedCommand> {
    const support = await this.probe();
    const { dir, denyFile, filter } = this.files();
    const resolved = resolvePolicy(launch.profile.fileSystem, { cwd: launch.policyCwd, workspaceRoots: launch.workspaceRoots, tmpdir: this.options.tmpdir });
    const views = deriveViews(resolved);
    if (views.unreadableGlobs.length > 0) {
      try {
        const matches = await expandGlobs(views.unreadableGlobs, { maxDepth: resolved.globScanMaxDepth, maxMatches: this.options.maxGlobMatches });
        views.unreadableRoots.push(...matches);
      } catch (err) {
        if (err instanceof GlobExpansionError) throw new SandboxPreparationError(`refusing to start: ${err.message}`);
        throw err;
      }
    }
    views.unreadableRoots.push(dir);
    const restrictNetwork = launch.profile.network !== 'enabled';
    const plan = buildBwrapArgs(views, {
      // On a terminal, ^C signals the whole foreground process group, bwrap included, and bwrap dying
      // takes the sandbox down. So bwrap is started with INT/QUIT/TSTP ignored (below), and the
      // command gets them back to default through env(1) inside.
      command: launch.tty ? [ENV_BINARY, '--default-signal=INT,QUIT,TSTP', ...launch.command] : launch.command,
      cwd: launch.commandCwd,
      restrictNetwork,
      mountProc: support.mountProc,
      newSession: !launch.tty,
      disableUserns: support.disableUserns,
      seccompFd: 3,
      denyFile,
    });
    // The count and the removal below are synchronous, so no other start can slip in between a
    // last user's release and the removal of a target it is about to mount (bwrap then failed with
    // "Can't remount readonly ... No such file or directory").
    for (const t of plan.syntheticTargets) {
      const entry = this.targets.get(t);
      if (entry) entry.users++;
      else this.targets.set(t, { users: 1, preexisting: lstatSync(t, { throwIfNoEntry: false }) !== undefined });
    }
    // On pipes the spawner opens the seccomp program as bwrap's fd 3. A terminal's spawner cannot
    // pass descriptors, so there a shell opens it, ignores the job-control signals, and replaces
    // itself with bwrap (same pid).
    return {
      ...(launch.tty
        ? { file: '/bin/sh', args: ['-c', `trap '' INT QUIT TSTP; exec "$@" 3<"$0"`, filter(restrictNetwork), support.bwrap, ...plan.args] }
        : { file: support.bwrap, args: plan.args, fd3: filter(restrictNetwork) }),
      env: { CORDON_SANDBOX: 'bwrap', ...(restrictNetwork ? { CODEX_SANDBOX_NETWORK_DISABLED: '1' } : {}) },
      cleanup: async () => {
        for (const t of [...plan.syntheticTargets].reverse()) {
          const entry = this.targets.get(t);
          if (!entry || --entry.users > 0) continue;
          this.targets.delete(t);
          if (entry.preexisting) continue;
          try {
            const info = lstatSync(t);
            if (info.isDirectory()) rmdirSync(t);
            else if (info.size === 0) unlinkSync(t);
          } catch {
            // gone already, or not empty: leave it
          }
        }
      },
    };
  }

  private readonly removeOnExit = (): void => {
    if (this.privateDir) rmSync(this.privateDir, { recursive: true, force: true });
    this.privateDir = undefined;
  };

  /** Removes the private directory. */
  dispose(): void {
    process.off('exit', this.removeOnExit);
    this.removeOnExit();
  }
}
