import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { findBwrap } from './linux-sandbox.js';
import { buildSeccompFilter, seccompSupported } from './seccomp.js';

export interface DoctorCheck {
  name: string;
  ok: boolean;
  detail: string;
  /** The exact fix when not ok. */
  fix?: string;
}

const readNumber = (file: string): number | undefined => {
  try {
    return Number(readFileSync(file, 'utf8').trim());
  } catch {
    return undefined;
  }
};

const run = (file: string, args: string[]): Promise<{ code: number; stderr: string; stdout: string }> =>
  new Promise((resolve) =>
    execFile(
      '/bin/sh',
      ['-c', 'exec "$@" 3<"$0"', ...args.slice(0, 1), file, ...args.slice(1)],
      { timeout: 10_000 },
      (err, stdout, stderr) =>
        resolve({
          code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 127) : 0,
          stdout: String(stdout),
          stderr: String(stderr),
        }),
    ),
  );

function inContainer(): string | undefined {
  if (existsSync('/.dockerenv')) return 'docker';
  if (existsSync('/run/.containerenv')) return 'podman';
  try {
    const cgroup = readFileSync('/proc/1/cgroup', 'utf8');
    if (/docker|kubepods|containerd|lxc/.test(cgroup)) return 'container';
  } catch {
    // not Linux
  }
  return undefined;
}

/** `cordon doctor`: what the sandbox needs from this host, what works, and the fix for what does not. */
export async function runDoctor(searchPath: string | undefined = process.env.PATH): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  const root = process.getuid?.() === 0;
  checks.push({
    name: 'platform',
    ok: process.platform === 'linux' && seccompSupported(),
    detail: `${process.platform}/${process.arch}`,
    fix: 'the sandbox needs Linux on x86_64 or aarch64',
  });
  const bwrap = findBwrap(searchPath);
  const scratch = mkdtempSync(path.join(tmpdir(), 'cordon-doctor-'));
  const filter = path.join(scratch, 'filter.bpf');
  writeFileSync(filter, seccompSupported() ? buildSeccompFilter({ restrictNetwork: true }) : Buffer.alloc(0));
  try {
    if (!bwrap) {
      checks.push({
        name: 'bubblewrap',
        ok: false,
        detail: 'bwrap not found on PATH',
        fix: 'apt-get install -y bubblewrap   (Fedora: dnf install bubblewrap; Arch: pacman -S bubblewrap)',
      });
      return checks;
    }
    const version = await run(bwrap, ['/dev/null', '--version']);
    checks.push({ name: 'bubblewrap', ok: version.code === 0, detail: `${bwrap} ${version.stdout.trim()}`, fix: 'reinstall bubblewrap' });
    const maxNs = readNumber('/proc/sys/user/max_user_namespaces');
    const unprivClone = readNumber('/proc/sys/kernel/unprivileged_userns_clone');
    const apparmor = readNumber('/proc/sys/kernel/apparmor_restrict_unprivileged_userns');
    checks.push({
      name: 'user namespaces enabled',
      ok: maxNs !== 0 && (root || unprivClone !== 0),
      detail: `max_user_namespaces=${maxNs ?? '?'}${unprivClone !== undefined ? `, unprivileged_userns_clone=${unprivClone}` : ''}`,
      fix: 'sysctl -w user.max_user_namespaces=15000' + (unprivClone === 0 ? ' && sysctl -w kernel.unprivileged_userns_clone=1' : ''),
    });
    checks.push({
      name: 'AppArmor user-namespace restriction',
      ok: apparmor !== 1 || root,
      detail: apparmor === undefined ? 'not present' : `apparmor_restrict_unprivileged_userns=${apparmor}`,
      fix: 'sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or install an AppArmor profile allowing userns for /usr/bin/bwrap (Ubuntu 24.04+)',
    });
    const base = ['--ro-bind', '/', '/', '--dev', '/dev', '--unshare-user', '--unshare-pid', '--cap-drop', 'ALL'];
    const userns = await run(bwrap, ['/dev/null', ...base, '--', 'true']);
    const container = inContainer();
    checks.push({
      name: 'bubblewrap can create a sandbox',
      ok: userns.code === 0,
      detail: userns.code === 0 ? 'yes' : userns.stderr.trim(),
      fix: container
        ? `inside a ${container}: run the container with --security-opt seccomp=unconfined --security-opt apparmor=unconfined (or give it CAP_SYS_ADMIN), or enable user namespaces on the host`
        : 'enable user namespaces (see above)',
    });
    const proc = await run(bwrap, ['/dev/null', ...base, '--proc', '/proc', '--', 'true']);
    checks.push({
      name: 'mount /proc in the sandbox',
      ok: proc.code === 0,
      detail: proc.code === 0 ? 'yes' : `${proc.stderr.trim()} (Cordon then masks /proc with an empty tmpfs instead)`,
      fix: 'run outside a container that hides /proc (e.g. docker --security-opt systempaths=unconfined)',
    });
    const seccomp = await run(bwrap, [filter, ...base, '--seccomp', '3', '--', 'true']);
    checks.push({
      name: 'seccomp filter',
      ok: seccomp.code === 0,
      detail: seccomp.code === 0 ? 'loads' : seccomp.stderr.trim(),
      fix: 'a kernel with CONFIG_SECCOMP_FILTER, and a container runtime that allows seccomp',
    });
    const probeFile = path.join(scratch, 'written');
    const enforced = await run(bwrap, [filter, ...base, '--seccomp', '3', '--', '/bin/sh', '-c', `echo x > ${probeFile}`]);
    checks.push({
      name: 'read-only sandbox refuses a write',
      ok: enforced.code !== 0 && !existsSync(probeFile),
      detail: existsSync(probeFile) ? 'the write went through' : 'refused',
      fix: 'the sandbox is not enforcing; check the items above',
    });
    if (container) checks.push({ name: 'container', ok: true, detail: `running inside a ${container}` });
    return checks;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
