import { execFile } from 'node:child_process';
import {
  accessSync,
  constants,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmdirSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import type { PermissionProfile } from '../environment/permissions.js';
import type { NetworkRoute } from '../environment/types.js';
import { BwrapPlanError, buildBwrapArgs } from './bwrap-args.js';
import { expandGlobs, GlobExpansionError } from './glob.js';
import { BridgeChannel } from './net-bridge.js';
import { BRIDGE_SOURCE } from './net-bridge-script.js';
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
  /** Variables added to the command's environment. */
  env: Record<string, string>;
  /** Files the spawner opens read-only as the child's fds 3, 4, ... (when the launch asked to pass descriptors). */
  descriptors?: string[];
  /**
   * The process group an interrupt goes to, given the spawned pid, when it is not the spawned
   * process's own: bwrap run directly dies of SIGINT, so the interrupt skips it.
   */
  interruptGroup?: (spawnedPid: number) => number | undefined;
  /** Whether bwrap created mount targets on the host for it (empty names in a project root, while it lives). */
  leavesTrace: boolean;
  /**
   * Whether the process started is bwrap itself, not setuid or setgid, whose PID namespace holds everything
   * the command starts and dies with it (so no keeper is needed to find descendants).
   */
  containsDescendants?: boolean;
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
  /** Route the command's network through this bridge (its only way out of its network namespace). */
  network?: { route: NetworkRoute; accept(endpoint: string, stream: Duplex): void } | null;
  /** For log lines and stream labels. */
  processId?: string;
  /** The spawner can open files as the child's fds 3 and up (pipes; not node-pty): bwrap then runs with no shell in front. */
  passDescriptors?: boolean;
}

/** bash's /dev/tcp connects the bridge channel before bubblewrap starts; fd 4 is then handed down. */
const BASH = '/bin/bash';

interface HostSupport {
  bwrap: string;
  disableUserns: boolean;
  mountProc: boolean;
  /**
   * A setuid or setgid bwrap (older distributions) loses the death signal its starter asked for at
   * exec. (So would one given file capabilities, which Node cannot see; the spawn helper's guard
   * still ends it should the helper die.)
   */
  setid: boolean;
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
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 127) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });

/** The first child of a process, from /proc (Linux 3.5+); undefined when it has none or is gone. */
function firstChild(pid: number): number | undefined {
  try {
    const first = readFileSync(`/proc/${pid}/task/${pid}/children`, 'latin1').split(' ')[0];
    return first ? Number(first) : undefined;
  } catch {
    return undefined;
  }
}

/** The host pid of the command bwrap runs in its PID namespace: bwrap -> the namespace's init -> the command. */
function sandboxedCommandPid(bwrapPid: number): number | undefined {
  const init = firstChild(bwrapPid);
  return init === undefined ? undefined : firstChild(init);
}

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

const PRIVATE_DIR_PREFIX = 'cordon-sandbox-';
const JOURNAL = 'mount-targets';

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes a mount target bwrap created: only an empty directory or an empty file, never anything with content. */
function removeTarget(t: string): void {
  try {
    const info = lstatSync(t);
    if (info.isDirectory()) rmdirSync(t);
    else if (info.isFile() && info.size === 0) unlinkSync(t);
  } catch {
    // gone already, or not empty: leave it
  }
}

/**
 * Cleans up after servers that ended without doing so themselves (kill -9, a crash, a power cut):
 * the private directories of this user's servers that are no longer running, and the mount targets
 * their journals list (removed only while still empty).
 */
export function sweepStalePrivateDirs(parent: string = tmpdir()): void {
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^cordon-sandbox-(\d+)-/.exec(name);
    if (!m || processAlive(Number(m[1]))) continue;
    const dir = path.join(parent, name);
    try {
      if (lstatSync(dir).uid !== process.getuid?.()) continue;
      const journal = readFileSync(path.join(dir, JOURNAL), 'utf8');
      for (const t of journal.split('\n').filter(Boolean).reverse()) removeTarget(t);
    } catch {
      // no journal: nothing was mounted
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Runs commands under bubblewrap + seccomp (docs/sandbox.md, "What the sandbox enforces"). One per
 * server: it probes the host once, and owns a private directory (`$TMPDIR/cordon-sandbox-<pid>-*`,
 * mode 0700) holding the seccomp programs and a journal of the mount targets bwrap had to create on
 * the host; that directory is itself denied inside every sandbox. It is removed when the server
 * ends, and by the next server to start when this one could not (kill -9), together with the
 * targets it lists.
 */
export class LinuxSandbox {
  private support: Promise<HostSupport> | undefined;
  private privateDir: string | undefined;
  /** The private directory's names, once made. */
  private hidden: readonly string[] = [];
  /** Mount targets bwrap created on the host, shared by live sandboxes: removed when the last one ends. */
  private readonly targets = new Map<string, { users: number; preexisting: boolean }>();

  constructor(private readonly options: LinuxSandboxOptions) {}

  private files(): { dir: string; filter: (restrictNetwork: boolean, proxied?: boolean) => string } {
    if (!this.privateDir) {
      sweepStalePrivateDirs(tmpdir());
      const dir = mkdtempSync(path.join(tmpdir(), `${PRIVATE_DIR_PREFIX}${process.pid}-`));
      for (const restrict of [true, false])
        writeFileSync(
          path.join(dir, `seccomp-${restrict ? 'net-restricted' : 'net-enabled'}.bpf`),
          buildSeccompFilter({ restrictNetwork: restrict }),
        );
      writeFileSync(path.join(dir, 'seccomp-net-proxied.bpf'), buildSeccompFilter({ restrictNetwork: true, proxied: true }));
      this.privateDir = dir;
      // Hidden by both names: the kernel's own (a symlink in $TMPDIR resolved), which is what the
      // server's direct reads compare, and the one it was made by.
      let canonical = dir;
      try {
        canonical = realpathSync(dir);
      } catch {
        // just made: it is there
      }
      this.hidden = canonical === dir ? [dir] : [dir, canonical];
      process.once('exit', this.removeOnExit); // also when the process ends without dispose()
    }
    const dir = this.privateDir;
    return { dir, filter: (r, p) => path.join(dir, `seccomp-${p ? 'net-proxied' : r ? 'net-restricted' : 'net-enabled'}.bpf`) };
  }

  /** Writes the journal of the targets this server created and has not removed yet (a few lines, synchronously). */
  private writeJournal(): void {
    if (!this.privateDir) return;
    const created = [...this.targets].filter(([, e]) => !e.preexisting).map(([t]) => t);
    try {
      writeFileSync(path.join(this.privateDir, JOURNAL), created.length ? `${created.join('\n')}\n` : '');
    } catch {
      // the directory is gone (shutting down)
    }
  }

  /** Host paths hidden inside every sandbox of this runtime: its private directory, once made. */
  hiddenPaths(): readonly string[] {
    return this.privateDir ? this.hidden : [];
  }

  /**
   * Does now what the first sandbox would otherwise wait for: the probe below, and the private
   * directory with the seccomp programs. A failure is left for that first sandbox to report.
   */
  async prepare(): Promise<void> {
    await this.probe();
    this.files();
  }

  /** Finds bwrap and checks, once, that it can build a sandbox here. Fails closed with the cause. */
  probe(): Promise<HostSupport> {
    this.support ??= (async () => {
      if (process.platform !== 'linux')
        throw new SandboxUnavailableError(`sandboxing needs Linux (this is ${process.platform}); ${DOCTOR_HINT}`);
      if (!seccompSupported())
        throw new SandboxUnavailableError(
          `sandboxing needs x86_64 or aarch64 for its seccomp filter (this is ${process.arch}); ${DOCTOR_HINT}`,
        );
      const bwrap = findBwrap(this.options.searchPath);
      if (!bwrap)
        throw new SandboxUnavailableError(
          `sandbox requested but bubblewrap (bwrap) was not found on PATH: install the bubblewrap package; ${DOCTOR_HINT}`,
        );
      const help = await run(bwrap, ['--help']);
      const setid = (statSync(bwrap).mode & 0o6000) !== 0;
      const disableUserns = help.stdout.includes('--disable-userns');
      const base = ['--ro-bind', '/', '/', '--dev', '/dev', '--unshare-user', '--unshare-pid', '--cap-drop', 'ALL'];
      const withProc = await run(bwrap, [...base, '--proc', '/proc', '--', 'true']);
      if (withProc.code === 0) return { bwrap, disableUserns, mountProc: true, setid };
      const withoutProc = await run(bwrap, [...base, '--', 'true']);
      if (withoutProc.code === 0) return { bwrap, disableUserns, mountProc: false, setid };
      throw new SandboxUnavailableError(
        `bubblewrap cannot create a sandbox on this host: ${withoutProc.stderr.trim() || `exit ${withoutProc.code}`}; ${DOCTOR_HINT}`,
      );
    })();
    return this.support;
  }

  async wrap(launch: SandboxLaunch): Promise<SandboxedCommand> {
    const support = await this.probe();
    const { dir, filter } = this.files();
    const resolved = resolvePolicy(launch.profile.fileSystem, {
      cwd: launch.policyCwd,
      workspaceRoots: launch.workspaceRoots,
      tmpdir: this.options.tmpdir,
    });
    const views = deriveViews(resolved, { protectMissingIn: [launch.policyCwd, ...(launch.workspaceRoots ?? [])] });
    if (views.unreadableGlobs.length > 0) {
      try {
        const matches = await expandGlobs(views.unreadableGlobs, {
          maxDepth: resolved.globScanMaxDepth,
          maxMatches: this.options.maxGlobMatches,
        });
        views.unreadableRoots.push(...matches);
      } catch (err) {
        if (err instanceof GlobExpansionError) throw new SandboxPreparationError(`refusing to start: ${err.message}`);
        throw err;
      }
    }
    // By its real name: bubblewrap cannot make a mount point through a symlink ($TMPDIR may be one).
    views.unreadableRoots.push(this.hidden[this.hidden.length - 1] ?? dir);
    const network = launch.network ?? undefined;
    const restrictNetwork = launch.profile.network !== 'enabled' || network !== undefined;
    // process/signal and ^C signal the whole process group, bwrap included, and bwrap dying takes
    // the sandbox down at once (SIGKILL through --die-with-parent) before the command's own
    // handler has run. So bwrap is started with INT/QUIT/TSTP ignored (below), and the command
    // gets them back to default through env(1) inside; the sandbox's init ignores them anyway
    // (the kernel's rule for a PID namespace's init). The command stays in bwrap's process group
    // (no --new-session): a terminal's ^C must reach it, and TIOCSTI/TIOCLINUX are refused by the
    // seccomp filter.
    //
    // Where the spawner can pass descriptors (pipes) and no bridge is needed, bwrap is run directly
    // instead: no shell and no env(1) in front, two execs fewer per start (docs/performance.md).
    // The command then leads a session of its own (--new-session) and an interrupt goes to its
    // group, found through /proc, not to bwrap's.
    const direct = launch.passDescriptors === true && !launch.tty && network === undefined;
    let command = direct ? launch.command : [ENV_BINARY, '--default-signal=INT,QUIT,TSTP', ...launch.command];
    let channel: BridgeChannel | undefined;
    if (network) {
      const { endpoints, env } = network.route;
      channel = new BridgeChannel(
        (index, stream) => {
          const endpoint = endpoints[index];
          if (endpoint) network.accept(endpoint, stream);
          else stream.destroy();
        },
        `sandbox:${launch.processId ?? '?'}`,
      );
      await channel.open();
      command = [process.execPath, '-e', BRIDGE_SOURCE, '--', JSON.stringify({ endpoints, env }), ...command];
    }
    let plan: ReturnType<typeof buildBwrapArgs>;
    try {
      plan = buildBwrapArgs(views, {
        command,
        cwd: launch.commandCwd,
        restrictNetwork,
        extraReadOnly: network ? [process.execPath] : [],
        mountProc: support.mountProc,
        newSession: direct,
        disableUserns: support.disableUserns,
        seccompFd: 3,
        // fd 4 carries the network bridge's channel when proxied, so the deny data moves to fd 5 then.
        denyFd: network ? 5 : 4,
      });
    } catch (err) {
      channel?.close();
      if (err instanceof BwrapPlanError) throw new SandboxPreparationError(err.message);
      throw err;
    }
    // The count and the removal below are synchronous, so no other start can slip in between a
    // last user's release and the removal of a target it is about to mount (bwrap then failed with
    // "Can't remount readonly ... No such file or directory").
    let journalChanged = false;
    // Targets another live sandbox of this server created are used by this one too when its plan
    // binds them (it saw them as existing): it holds them, or their removal at the other's end
    // would pull them from under this bwrap before it mounts them.
    const bound = new Set(plan.args);
    const held = [...new Set([...plan.syntheticTargets, ...[...this.targets.keys()].filter((t) => bound.has(t))])];
    for (const t of held) {
      const entry = this.targets.get(t);
      if (entry) entry.users++;
      else {
        const preexisting = lstatSync(t, { throwIfNoEntry: false }) !== undefined;
        this.targets.set(t, { users: 1, preexisting });
        journalChanged ||= !preexisting;
      }
    }
    // Journaled before bwrap creates them: after a kill -9 the next server removes them.
    if (journalChanged) this.writeJournal();
    // A shell opens the seccomp program as bwrap's fd 3 and /dev/null (the data of every deny mask)
    // as fd 4, ignores the job-control signals (Node's spawn cannot start a child with a signal
    // ignored), and replaces itself with bwrap (same pid). Proxied, it first connects fd 4 to the
    // bridge channel and proves itself with the token, and /dev/null goes to fd 5.
    const trap = "trap '' INT QUIT TSTP; ";
    const env = { CORDON_SANDBOX: 'bwrap', ...(restrictNetwork && !channel ? { CODEX_SANDBOX_NETWORK_DISABLED: '1' } : {}) };
    const seccomp = filter(restrictNetwork, channel !== undefined);
    const launchSpec = direct
      ? {
          file: support.bwrap,
          args: plan.args,
          env,
          descriptors: [seccomp, '/dev/null'],
          interruptGroup: sandboxedCommandPid,
          containsDescendants: !support.setid,
        }
      : channel
        ? {
            file: BASH,
            args: [
              '-c',
              `${trap}exec 4<>"/dev/tcp/127.0.0.1/$CORDON_NET_PORT" || { echo "cordon: cannot reach the network bridge" >&2; exit 125; }; printf %s "$CORDON_NET_TOKEN" >&4; unset CORDON_NET_PORT CORDON_NET_TOKEN; exec "$@" 3<"$0" 5</dev/null`,
              seccomp,
              support.bwrap,
              ...plan.args,
            ],
            env: { ...env, CORDON_NET_PORT: String(channel.port), CORDON_NET_TOKEN: channel.token },
          }
        : { file: '/bin/sh', args: ['-c', `${trap}exec "$@" 3<"$0" 4</dev/null`, seccomp, support.bwrap, ...plan.args], env };
    const leavesTrace = held.some((t) => this.targets.get(t)?.preexisting === false);
    return {
      ...launchSpec,
      leavesTrace,
      cleanup: async () => {
        channel?.close();
        let removed = false;
        for (const t of [...held].reverse()) {
          const entry = this.targets.get(t);
          if (!entry || --entry.users > 0) continue;
          this.targets.delete(t);
          if (entry.preexisting) continue;
          removeTarget(t);
          removed = true;
        }
        if (removed) this.writeJournal();
      },
    };
  }

  private readonly removeOnExit = (): void => {
    // Sandboxes still running (an exit without dispose) hold their targets until their bwrap dies
    // with this process: removing a target now would unmount its mask while the command still
    // runs. The journal stays for the next server to sweep.
    if ([...this.targets.values()].some((e) => !e.preexisting)) return;
    if (this.privateDir) rmSync(this.privateDir, { recursive: true, force: true });
    this.privateDir = undefined;
  };

  /** Removes the private directory. */
  dispose(): void {
    process.off('exit', this.removeOnExit);
    this.removeOnExit();
  }
}
