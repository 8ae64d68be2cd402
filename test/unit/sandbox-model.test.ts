import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { FileSystemPolicy, FsEntry } from '../../src/environment/permissions.js';
import { BwrapPlanError, buildBwrapArgs, type FsFacts } from '../../src/sandbox/bwrap-args.js';
import { globSearchRoot, globToRegExp } from '../../src/sandbox/glob.js';
import { grantsFullFileAccess, profileFromLegacyPolicy, profileFromWire } from '../../src/sandbox/profile.js';
import { deriveViews, resolveAccess, resolvePolicy } from '../../src/sandbox/resolve.js';
import { buildSeccompFilter, evaluateSeccomp, SECCOMP } from '../../src/sandbox/seccomp.js';

const special = (
  kind: 'root' | 'project_roots' | 'slash_tmp' | 'tmpdir' | 'minimal' | 'unknown',
  access: FsEntry['access'],
  subpath?: string,
): FsEntry => ({
  path: { type: 'special', kind, ...(subpath ? { subpath } : {}) },
  access,
});
const exact = (p: string, access: FsEntry['access']): FsEntry => ({ path: { type: 'path', path: p }, access });
const restricted = (entries: FsEntry[]): FileSystemPolicy => ({ kind: 'restricted', entries });

describe('permission resolution (docs/sandbox.md, "Profiles")', () => {
  it('resolve_access_with_cwd_uses_most_specific_entry', () => {
    const p = resolvePolicy(
      restricted([
        special('project_roots', 'write'),
        exact('/w/docs', 'read'),
        exact('/w/docs/private', 'deny'),
        exact('/w/docs/private/public', 'write'),
      ]),
      { cwd: '/w' },
    );
    assert.equal(resolveAccess(p, '/w'), 'write');
    assert.equal(resolveAccess(p, '/w/docs'), 'read');
    assert.equal(resolveAccess(p, '/w/docs/private'), 'deny');
    assert.equal(resolveAccess(p, '/w/docs/private/public'), 'write');
    assert.equal(resolveAccess(p, '/w/docs/private/public/x'), 'write');
    assert.equal(resolveAccess(p, '/elsewhere'), 'deny', 'restricted policies deny by default');
    assert.equal(resolveAccess(p, 'docs'), 'read', 'relative paths join the cwd');
  });

  it('file_system_access_mode_orders_by_conflict_precedence: deny > write > read on ties', () => {
    const p = resolvePolicy(restricted([exact('/a', 'read'), exact('/a', 'write')]), { cwd: '/' });
    assert.equal(resolveAccess(p, '/a/x'), 'write');
    const q = resolvePolicy(restricted([exact('/a', 'write'), exact('/a', 'deny'), exact('/a', 'read')]), { cwd: '/' });
    assert.equal(resolveAccess(q, '/a'), 'deny');
  });

  it('resolves special paths: root, project roots (with subpath, per workspace root), tmpdir, slash_tmp; ignores unknown with a warning', () => {
    const warnings: string[] = [];
    const p = resolvePolicy(
      restricted([
        special('root', 'read'),
        special('project_roots', 'write'),
        special('project_roots', 'read', '.git'),
        special('tmpdir', 'write'),
        special('slash_tmp', 'write'),
        special('unknown', 'write'),
      ]),
      { cwd: '/w', workspaceRoots: ['/w', '/x'], tmpdir: '/custom-tmp', warn: (m) => warnings.push(m) },
    );
    assert.deepEqual(
      p.entries.map((e) => `${e.path}:${e.access}`),
      ['/:read', '/w:write', '/x:write', '/w/.git:read', '/x/.git:read', '/custom-tmp:write', '/tmp:write'],
    );
    assert.equal(warnings.length, 1);
    const noTmp = resolvePolicy(restricted([special('tmpdir', 'write')]), { cwd: '/w', tmpdir: 'relative' });
    assert.deepEqual(noTmp.entries, [], 'a relative TMPDIR is ignored');
  });

  it('unrestricted and external policies grant write everywhere', () => {
    for (const kind of ['unrestricted', 'external-sandbox'] as const)
      assert.equal(resolveAccess(resolvePolicy({ kind }, { cwd: '/' }), '/etc/passwd'), 'write');
  });
});

describe('derived views', () => {
  it('root_write_with_read_only_child_is_not_full_disk_write, same_specificity_write_override_keeps_full_disk_write_access', () => {
    const v = deriveViews(resolvePolicy(restricted([special('root', 'write'), exact('/docs', 'read')]), { cwd: '/' }));
    assert.equal(v.fullWrite, false);
    const w = deriveViews(
      resolvePolicy(restricted([special('root', 'write'), exact('/docs', 'read'), exact('/docs', 'write')]), { cwd: '/' }),
    );
    assert.equal(w.fullWrite, true);
    assert.equal(grantsFullFileAccess(restricted([special('root', 'write'), exact('/docs', 'read'), exact('/docs', 'write')])), true);
    assert.equal(grantsFullFileAccess(restricted([special('root', 'write'), exact('/docs', 'read')])), false);
  });

  it('duplicate_root_deny_prevents_full_disk_write_access; root_deny_does_not_materialize_as_unreadable_root', () => {
    const v = deriveViews(resolvePolicy(restricted([special('root', 'write'), special('root', 'deny')]), { cwd: '/' }));
    assert.equal(v.fullWrite, false);
    assert.equal(v.fullRead, false);
    assert.deepEqual(v.unreadableRoots, []);
  });

  it('any deny, even a glob, disables full read', () => {
    const v = deriveViews(
      resolvePolicy(restricted([special('root', 'read'), { path: { type: 'glob_pattern', pattern: '**/*.env' }, access: 'deny' }]), {
        cwd: '/w',
      }),
    );
    assert.equal(v.fullRead, false);
    assert.deepEqual(v.unreadableGlobs, ['/w/**/*.env']);
  });

  it('writable roots carry protected metadata (existing as read-only, missing as protected names)', () => {
    const dir = mkdtempSync('/tmp/cordon-views-');
    try {
      mkdirSync(`${dir}/repo/.git`, { recursive: true });
      writeFileSync(`${dir}/repo/.git/HEAD`, 'ref: x');
      mkdirSync(`${dir}/repo/sub`);
      const v = deriveViews(
        resolvePolicy(restricted([special('root', 'read'), special('project_roots', 'write'), exact(`${dir}/repo/docs`, 'read')]), {
          cwd: `${dir}/repo`,
        }),
      );
      const root = v.writableRoots.find((w) => w.root === `${dir}/repo`);
      assert.ok(root);
      assert.deepEqual(root.readOnlySubpaths.sort(), [`${dir}/repo/.git`, `${dir}/repo/docs`].sort());
      assert.deepEqual(root.protectedMissingNames, ['.agents', '.codex', '.aws', '.cordon']);
      const sub = deriveViews(
        resolvePolicy(restricted([special('root', 'read'), special('project_roots', 'write')]), { cwd: `${dir}/repo/sub` }),
      );
      assert.ok(!sub.writableRoots[0]?.protectedMissingNames.includes('.git'), 'a missing .git under a parent repository is not masked');
      writeFileSync(`${dir}/repo/sub/.git`, `gitdir: ../.git\n`);
      const pointer = deriveViews(
        resolvePolicy(restricted([special('root', 'read'), special('project_roots', 'write')]), { cwd: `${dir}/repo/sub` }),
      );
      assert.ok(pointer.writableRoots[0]?.readOnlySubpaths.includes(`${dir}/repo/.git`), 'gitdir: pointers are protected too');
      const explicit = deriveViews(
        resolvePolicy(
          restricted([special('root', 'read'), special('project_roots', 'write'), special('project_roots', 'write', '.codex')]),
          { cwd: `${dir}/repo` },
        ),
      );
      assert.ok(!explicit.writableRoots[0]?.protectedMissingNames.includes('.codex'), 'an explicit write rule lifts the protection');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('legacy and tagged profiles', () => {
  it('converts legacy SandboxPolicy per docs/protocol.md §8', () => {
    assert.equal(profileFromLegacyPolicy({ type: 'danger-full-access' }).enforcement, 'disabled');
    assert.equal(profileFromLegacyPolicy({ type: 'external-sandbox', network_access: 'enabled' }).network, 'enabled');
    const ro = profileFromLegacyPolicy({ type: 'read-only' });
    assert.deepEqual(ro.fileSystem, { kind: 'restricted', entries: [special('root', 'read')] });
    const ww = profileFromLegacyPolicy({
      type: 'workspace-write',
      writable_roots: ['/extra'],
      exclude_slash_tmp: true,
      network_access: true,
    });
    assert.equal(ww.network, 'enabled');
    assert.ok(
      ww.fileSystem.kind === 'restricted' && !ww.fileSystem.entries.some((e) => e.path.type === 'special' && e.path.kind === 'slash_tmp'),
    );
    assert.ok(
      ww.fileSystem.kind === 'restricted' &&
        ww.fileSystem.entries.some((e) => e.path.type === 'path' && e.path.path === '/extra' && e.access === 'write'),
    );
  });

  it('accepts none as deny and current_working_directory as project_roots; builds the legacy untagged form', () => {
    const p = profileFromWire({
      type: 'managed',
      network: 'restricted',
      file_system: {
        type: 'restricted',
        entries: [{ path: { type: 'special', value: { kind: 'current_working_directory' } }, access: 'none' }],
      },
    });
    assert.deepEqual(p.fileSystem, { kind: 'restricted', entries: [special('project_roots', 'deny')] });
    const legacy = profileFromWire({ network: { enabled: true }, file_system: { read: ['/r'], write: ['/w'] } });
    assert.equal(legacy.network, 'enabled');
    assert.deepEqual(legacy.fileSystem, { kind: 'restricted', entries: [exact('/r', 'read'), exact('/w', 'write')] });
  });
});

describe('git-style globs', () => {
  it('glob_patterns_do_not_cross_path_separators; globstar spans directories; unclosed classes are literal', () => {
    assert.ok(globToRegExp('/w/*.env').test('/w/.env'));
    assert.ok(!globToRegExp('/w/*.env').test('/w/sub/a.env'));
    assert.ok(globToRegExp('/w/**/*.env').test('/w/a.env'));
    assert.ok(globToRegExp('/w/**/*.env').test('/w/x/y/a.env'));
    assert.ok(globToRegExp('/w/**').test('/w/x/y'));
    assert.ok(!globToRegExp('/w/?.txt').test('/w/ab.txt'));
    assert.ok(globToRegExp('/w/[ab].txt').test('/w/b.txt'));
    assert.ok(globToRegExp('/w/[!ab].txt').test('/w/c.txt'));
    assert.ok(globToRegExp('/w/[ab.txt').test('/w/[ab.txt'), 'an unclosed [ is literal');
    assert.equal(globSearchRoot('/w/sub/**/*.pem'), '/w/sub');
    assert.equal(globSearchRoot('/**/*.pem'), '/');
  });
});

describe('seccomp filter', () => {
  const arch = SECCOMP.ARCHES.x64!;
  const nr = (name: string) => arch.nr[name] as number;
  const call = (filter: Buffer, name: string, args: number[] = []) => evaluateSeccomp(filter, { arch: arch.audit, nr: nr(name), args });
  const EPERM = SECCOMP.RET_ERRNO | SECCOMP.EPERM;

  it('always refuses ptrace, io_uring, mount, bpf, keyrings and new user namespaces; allows the rest', () => {
    const f = buildSeccompFilter({ restrictNetwork: false, arch: 'x64' });
    for (const name of [
      'ptrace',
      'io_uring_setup',
      'io_uring_enter',
      'mount',
      'umount2',
      'pivot_root',
      'bpf',
      'keyctl',
      'add_key',
      'process_vm_readv',
      'setns',
    ]) {
      assert.equal(call(f, name), EPERM, name);
    }
    assert.equal(call(f, 'unshare', [0x10000000]), EPERM, 'unshare(CLONE_NEWUSER)');
    assert.equal(call(f, 'clone', [0x10000000 | 17]), EPERM, 'clone(CLONE_NEWUSER)');
    assert.equal(call(f, 'clone', [0x01200011]), SECCOMP.RET_ALLOW, 'plain fork-style clone');
    assert.equal(call(f, 'clone3'), SECCOMP.RET_ERRNO | SECCOMP.ENOSYS);
    assert.equal(call(f, 'socket', [2]), SECCOMP.RET_ALLOW, 'AF_INET allowed with the network enabled');
    assert.equal(evaluateSeccomp(f, { arch: arch.audit, nr: 0 }), SECCOMP.RET_ALLOW, 'read');
    assert.equal(evaluateSeccomp(f, { arch: 0x40000003, nr: 0 }), SECCOMP.RET_KILL_PROCESS, 'another ABI is killed');
    assert.equal(evaluateSeccomp(f, { arch: arch.audit, nr: 0x40000000 + 1 }), EPERM, 'x32 syscalls are refused');
  });

  it("refuses the ioctls TIOCSTI and TIOCLINUX (by the request's low 32 bits, as the kernel reads it); other ioctls pass", () => {
    for (const restrictNetwork of [false, true]) {
      const f = buildSeccompFilter({ restrictNetwork, arch: 'x64' });
      assert.equal(call(f, 'ioctl', [0, SECCOMP.TIOCSTI]), EPERM, 'TIOCSTI');
      assert.equal(call(f, 'ioctl', [0, SECCOMP.TIOCLINUX]), EPERM, 'TIOCLINUX');
      assert.equal(call(f, 'ioctl', [0, 2 ** 32 + SECCOMP.TIOCSTI]), EPERM, 'TIOCSTI with high bits set');
      assert.equal(call(f, 'ioctl', [0, 0x5413]), SECCOMP.RET_ALLOW, 'TIOCGWINSZ');
      assert.equal(call(f, 'ioctl', [0, 0x5401]), SECCOMP.RET_ALLOW, 'TCGETS');
    }
    const arm = SECCOMP.ARCHES.arm64!;
    const f = buildSeccompFilter({ restrictNetwork: false, arch: 'arm64' });
    assert.equal(evaluateSeccomp(f, { arch: arm.audit, nr: arm.nr.ioctl as number, args: [0, SECCOMP.TIOCSTI] }), EPERM, 'arm64 TIOCSTI');
  });

  it('with the network restricted, only AF_UNIX sockets and socketpairs, and no connect/bind/listen', () => {
    const f = buildSeccompFilter({ restrictNetwork: true, arch: 'x64' });
    assert.equal(call(f, 'socket', [2]), EPERM);
    assert.equal(call(f, 'socket', [10]), EPERM);
    assert.equal(call(f, 'socket', [1]), SECCOMP.RET_ALLOW);
    assert.equal(call(f, 'socketpair', [1]), SECCOMP.RET_ALLOW);
    assert.equal(call(f, 'socketpair', [2]), EPERM);
    for (const name of ['connect', 'bind', 'listen', 'accept4', 'sendmmsg']) assert.equal(call(f, name), EPERM, name);
    for (const name of ['getsockname', 'getsockopt', 'shutdown'])
      assert.equal(call(f, name), SECCOMP.RET_ALLOW, `${name} on held sockets (stdio)`);
    assert.equal(call(f, 'sendto', [3, 0, 10, 0, 0]), SECCOMP.RET_ALLOW, 'send() on a connected socket');
    assert.equal(call(f, 'sendto', [3, 0, 10, 0, 0x7fff1234]), EPERM, 'sendto with a destination');
    assert.equal(f.length % 8, 0);
  });
});

describe('bubblewrap argv (pure)', () => {
  const facts = (dirs: string[], files: string[] = []): FsFacts => ({
    kind: (p) => (dirs.includes(p) ? 'dir' : files.includes(p) ? 'file' : 'missing'),
    canonical: (p) => p,
  });
  const opts = {
    command: ['cmd', 'arg'],
    cwd: '/w',
    restrictNetwork: true,
    mountProc: true,
    newSession: true,
    disableUserns: true,
    seccompFd: 3,
    denyFd: 4,
  };

  it('builds the workspace-write view: read-only root, writable workspace, metadata carve-outs, namespaces, caps dropped', () => {
    const views = deriveViews(
      resolvePolicy(restricted([special('root', 'read'), special('project_roots', 'write'), exact('/w/secret', 'deny')]), {
        cwd: '/nonexistent-w',
      }),
    );
    views.writableRoots = [{ root: '/w', readOnlySubpaths: ['/w/.git'], protectedMissingNames: ['.codex'] }];
    views.unreadableRoots = ['/w/secret', '/w/private'];
    const { args, syntheticTargets } = buildBwrapArgs(views, opts, facts(['/w', '/w/.git', '/w/private'], ['/w/secret']));
    const text = args.join(' ');
    assert.ok(
      text.startsWith(
        '--die-with-parent --new-session --ro-bind / / --dev /dev --bind /w /w --ro-bind /w/.git /w/.git --perms 555 --tmpfs /w/.codex --remount-ro /w/.codex',
      ),
      text,
    );
    assert.ok(text.includes('--perms 000 --ro-bind-data 4 /w/secret'));
    assert.ok(text.includes('--perms 000 --tmpfs /w/private --remount-ro /w/private'));
    assert.ok(text.includes('--unshare-user --unshare-pid --unshare-ipc'));
    assert.ok(text.includes('--unshare-net --disable-userns --proc /proc --cap-drop ALL --seccomp 3 --chdir /w -- cmd arg'));
    assert.deepEqual(syntheticTargets, ['/w/.codex']);
    assert.ok(text.indexOf('--bind /w /w') < text.indexOf('/w/secret'), 'denies come after the writable bind they live in');
  });

  it('restricted reads bind only the readable roots on a tmpfs; no network unshare when enabled; no /proc mount falls back to a tmpfs', () => {
    const views = deriveViews(resolvePolicy(restricted([exact('/usr', 'read'), exact('/w', 'write')]), { cwd: '/w' }));
    views.writableRoots = views.writableRoots.map((w) => ({ ...w, protectedMissingNames: [] }));
    const { args } = buildBwrapArgs(views, { ...opts, restrictNetwork: false, mountProc: false, newSession: false }, facts(['/usr', '/w']));
    const text = args.join(' ');
    assert.ok(text.startsWith('--die-with-parent --tmpfs / --ro-bind /usr /usr --ro-bind /w /w --dev /dev --bind /w /w'), text);
    assert.ok(!text.includes('--unshare-net'));
    assert.ok(!text.includes('--new-session'));
    assert.ok(text.includes('--tmpfs /proc'));
  });

  it('a deny below a file of a writable root is refused (the file could become a directory); a missing one below a directory is held', () => {
    const views = deriveViews(
      resolvePolicy(restricted([special('root', 'read'), exact('/w', 'write'), exact('/w/e/x', 'deny')]), { cwd: '/w' }),
    );
    views.writableRoots = views.writableRoots.map((w) => ({ ...w, readOnlySubpaths: [], protectedMissingNames: [] }));
    assert.throws(
      () => buildBwrapArgs(views, opts, facts(['/w'], ['/w/e'])),
      (err: unknown) => err instanceof BwrapPlanError && /\/w\/e is a file/.test(err.message),
    );
    const { syntheticTargets } = buildBwrapArgs(views, opts, facts(['/w', '/w/e']));
    assert.deepEqual(syntheticTargets, ['/w/e/x']);
  });

  it('a denied directory holding a writable root stays traversable and the root is reopened inside it', () => {
    const views = deriveViews(
      resolvePolicy(restricted([special('root', 'read'), exact('/home', 'deny'), exact('/home/u/w', 'write')]), { cwd: '/home/u/w' }),
    );
    views.writableRoots = views.writableRoots.map((w) => ({ ...w, readOnlySubpaths: [], protectedMissingNames: [] }));
    const { args } = buildBwrapArgs(views, opts, facts(['/home', '/home/u/w']));
    const text = args.join(' ');
    assert.ok(text.includes('--perms 111 --tmpfs /home --bind /home/u/w /home/u/w'), text);
    assert.ok(text.indexOf('--remount-ro /home') > text.indexOf('--bind /home/u/w'), text);
  });
});
