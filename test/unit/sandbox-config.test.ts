import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FsEntry, PermissionProfile } from '../../src/environment/permissions.js';
import { builtinProfile } from '../../src/sandbox/builtin-profiles.js';
import { compilePermissions, PermissionsConfigError } from '../../src/sandbox/config.js';
import { intersectProfiles } from '../../src/sandbox/intersect.js';
import { deriveViews, resolveAccess, resolvePolicy } from '../../src/sandbox/resolve.js';

const fails = (toml: string, message: string | RegExp, name?: string) =>
  assert.throws(
    () => compilePermissions(toml, name, { home: '/home/u' }),
    (err: unknown) => {
      assert.ok(err instanceof PermissionsConfigError, String(err));
      if (typeof message === 'string') assert.equal(err.message, message);
      else assert.match(err.message, message);
      return true;
    },
  );

const accessOf = (profile: PermissionProfile, cwd: string, p: string) => resolveAccess(resolvePolicy(profile.fileSystem, { cwd }), p);

describe('cordon.toml permission profiles (docs/sandbox.md)', () => {
  it('compiles a profile with specials, paths, ~, scoped tables, globs, subtrees and network', () => {
    const c = compilePermissions(
      `default_permissions = "dev"
[permissions.dev]
description = "free text"
[permissions.dev.workspace_roots]
"~/code/shared" = true
"/off" = false
[permissions.dev.filesystem]
glob_scan_max_depth = 3
":minimal" = "read"
":root" = "read"
"~/notes" = "write"
"/abs/secrets" = "none"
"/abs/keys/**/*.pem" = "deny"
"/abs/tree/**" = "write"
[permissions.dev.filesystem.":workspace_roots"]
"." = "write"
"docs/**" = "write"
"**/*.env" = "deny"
[permissions.dev.network]
enabled = true
`,
      undefined,
      { home: '/home/u' },
    );
    assert.equal(c.name, 'dev');
    assert.equal(c.profile.network, 'enabled');
    assert.deepEqual(c.workspaceRoots, ['/home/u/code/shared']);
    assert.ok(c.profile.fileSystem.kind === 'restricted');
    const fs = c.profile.fileSystem as { entries: FsEntry[]; globScanMaxDepth?: number };
    assert.equal(fs.globScanMaxDepth, 3);
    const has = (e: FsEntry) =>
      assert.ok(
        fs.entries.some((x) => JSON.stringify(x) === JSON.stringify(e)),
        JSON.stringify(e),
      );
    has({ path: { type: 'path', path: '/home/u/notes' }, access: 'write' });
    has({ path: { type: 'path', path: '/abs/secrets' }, access: 'deny' });
    has({ path: { type: 'glob_pattern', pattern: '/abs/keys/**/*.pem' }, access: 'deny' });
    has({ path: { type: 'path', path: '/abs/tree' }, access: 'write' });
    has({ path: { type: 'special', kind: 'project_roots' }, access: 'write' });
    has({ path: { type: 'special', kind: 'project_roots', subpath: 'docs' }, access: 'write' });
    has({ path: { type: 'glob_pattern', pattern: 'codex-project-roots://**/*.env' }, access: 'deny' });
    has({ path: { type: 'special', kind: 'minimal' }, access: 'read' });
    const resolved = resolvePolicy(c.profile.fileSystem, { cwd: '/w' });
    assert.deepEqual(resolved.denyGlobs, ['/abs/keys/**/*.pem', '/w/**/*.env']);
  });

  it('extends built-ins and user profiles, the child winning key by key', () => {
    const c = compilePermissions(
      `[permissions.base]
extends = ":workspace"
[permissions.base.filesystem]
"/data" = "read"
[permissions.child]
extends = "base"
[permissions.child.filesystem]
"/data" = "write"
`,
      'child',
    );
    assert.equal(accessOf(c.profile, '/w', '/data/x'), 'write');
    assert.equal(accessOf(c.profile, '/w', '/w/src'), 'write');
    assert.equal(accessOf(c.profile, '/w', '/w/.git/config'), 'read');
    assert.equal(accessOf(c.profile, '/w', '/etc/passwd'), 'read');
    assert.equal(c.profile.network, 'restricted');
  });

  it('resolves the built-in profiles by name', () => {
    assert.equal(compilePermissions('', ':danger-full-access').profile.enforcement, 'disabled');
    assert.equal(accessOf(compilePermissions('', ':read-only').profile, '/w', '/w/x'), 'read');
    assert.equal(accessOf(compilePermissions('default_permissions = ":workspace"').profile, '/w', '/w/x'), 'write');
  });

  it('reports the validation errors of cordon.toml', () => {
    fails('[permissions.":x"]\n', 'permissions profile `:x` uses a reserved built-in profile prefix');
    fails('default_permissions = ":nope"\n', 'default_permissions refers to unknown built-in profile `:nope`');
    fails('default_permissions = "dev"\n', 'default_permissions requires a `[permissions]` table');
    fails('default_permissions = "dev"\n[permissions.other]\n', 'default_permissions refers to undefined profile `dev`');
    fails(
      '[permissions.a]\nextends = "b"\n[permissions.b]\nextends = "a"\n',
      'permissions profile inheritance cycle detected: a -> b -> a',
      'a',
    );
    fails('[permissions.a]\nextends = "ghost"\n', /extends undefined profile `ghost`/, 'a');
    fails('[permissions.a]\nextends = ":danger-full-access"\n', /only `:read-only` and `:workspace` can be extended/, 'a');
    fails(
      '[permissions.a.filesystem]\n"relative/path" = "read"\n',
      'filesystem path `relative/path` must be absolute, use `~/...`, or start with `:`',
      'a',
    );
    fails(
      '[permissions.a.filesystem]\n"/x/*.txt" = "read"\n',
      'filesystem glob path `/x/*.txt` only supports `deny` access; use an exact path or trailing `/**` for `write` subtree access',
      'a',
    );
    fails(
      '[permissions.a.filesystem.":workspace_roots"]\n"../x" = "read"\n',
      'filesystem subpath `../x` must be a descendant path without `.` or `..` components',
      'a',
    );
    fails('[permissions.a.filesystem.":tmpdir"]\n"x" = "read"\n', 'filesystem path `:tmpdir` does not support nested entries', 'a');
    fails('[permissions.a.filesystem]\nglob_scan_max_depth = 0\n', 'glob_scan_max_depth must be at least 1', 'a');
    fails('not toml = = =', /invalid TOML/);
  });

  it('warns about unknown special paths and profiles with no filesystem entries', () => {
    const c = compilePermissions('[permissions.a.filesystem]\n":cwd" = "write"\n', 'a');
    assert.ok(c.warnings.some((w) => w.includes('`:cwd` is not recognized')));
    assert.ok(c.warnings.some((w) => w.includes('no filesystem entries')));
  });
});

describe('profile intersection (the operator ceiling)', () => {
  const ctx = { cwd: '/w' };
  it('gives every path the lesser access, unites deny globs, and takes the lesser network', () => {
    const ceiling = builtinProfile(':workspace', { network: 'restricted' });
    const request: PermissionProfile = builtinProfile(':danger-full-access');
    const both = intersectProfiles(ceiling, ctx, request, ctx);
    for (const p of ['/w', '/w/src/x', '/tmp/x', '/etc/passwd', '/w/.git/config', '/home/u/secret']) {
      assert.equal(accessOf(both, '/w', p), accessOf(ceiling, '/w', p), p);
    }
    assert.equal(both.network, 'restricted');
    const ro = intersectProfiles(ceiling, ctx, builtinProfile(':read-only'), ctx);
    assert.equal(accessOf(ro, '/w', '/w/src'), 'read', 'a client asking for read-only cannot write at all');
    assert.equal(deriveViews(resolvePolicy(ro.fileSystem, ctx)).writableRoots.length, 0);
    const withDeny: PermissionProfile = {
      enforcement: 'managed',
      network: 'enabled',
      fileSystem: {
        kind: 'restricted',
        entries: [
          { path: { type: 'special', kind: 'root' }, access: 'write' },
          { path: { type: 'glob_pattern', pattern: '**/*.pem' }, access: 'deny' },
          { path: { type: 'path', path: '/w/private' }, access: 'deny' },
        ],
      },
    };
    const mixed = intersectProfiles(ceiling, ctx, withDeny, ctx);
    assert.equal(accessOf(mixed, '/w', '/w/private/x'), 'deny');
    assert.equal(accessOf(mixed, '/w', '/w/ok'), 'write');
    assert.equal(accessOf(mixed, '/w', '/etc'), 'read');
    assert.deepEqual(resolvePolicy(mixed.fileSystem, ctx).denyGlobs, ['/w/**/*.pem']);
    const both2 = intersectProfiles(builtinProfile(':danger-full-access'), ctx, builtinProfile(':danger-full-access'), ctx);
    assert.equal(both2.enforcement, 'disabled');
  });
});
