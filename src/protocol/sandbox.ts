import { z } from 'zod';
import { invalidParams } from './errors.js';

/**
 * The `sandbox` object fs requests (and Cordon's process/start) carry, in both shapes clients send
 * (PROTOCOL.md §10): `{permissions, cwd?, windowsSandboxLevel}` (0.124+) and
 * `{sandboxPolicy, sandboxPolicyCwd?, windowsSandboxLevel}` (0.122–0.123).
 */

const ACCESS = z.enum(['read', 'write', 'deny', 'none']);

const SpecialPath = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('root') }),
  z.object({ kind: z.literal('minimal') }),
  z.object({ kind: z.literal('tmpdir') }),
  z.object({ kind: z.literal('slash_tmp') }),
  z.object({ kind: z.literal('project_roots'), subpath: z.string().nullish() }),
  z.object({ kind: z.literal('current_working_directory'), subpath: z.string().nullish() }),
  z.object({ kind: z.literal('unknown'), path: z.string(), subpath: z.string().nullish() }),
]);

const FsPath = z.discriminatedUnion('type', [
  z.object({ type: z.literal('path'), path: z.string() }),
  z.object({ type: z.literal('glob_pattern'), pattern: z.string() }),
  z.object({ type: z.literal('special'), value: SpecialPath }),
]);

export const WireEntry = z.object({ path: FsPath, access: ACCESS });
export type WireEntry = z.infer<typeof WireEntry>;

const Network = z.enum(['restricted', 'enabled']);

const TaggedProfile = z.discriminatedUnion('type', [
  z.object({ type: z.literal('disabled') }),
  z.object({ type: z.literal('external'), network: Network.default('restricted') }),
  z.object({
    type: z.literal('managed'),
    network: Network.default('restricted'),
    file_system: z.discriminatedUnion('type', [
      z.object({ type: z.literal('unrestricted') }),
      z.object({
        type: z.literal('restricted'),
        entries: z.array(WireEntry).default([]),
        glob_scan_max_depth: z.number().int().min(1).nullish(),
      }),
    ]),
  }),
]);

const LegacyProfile = z
  .object({
    network: z.object({ enabled: z.boolean().nullish() }).strict().nullish(),
    file_system: z.union([
      z.object({ read: z.array(z.string()).default([]), write: z.array(z.string()).default([]) }).strict(),
      z.object({ entries: z.array(WireEntry), glob_scan_max_depth: z.number().int().min(1).nullish() }).strict(),
    ]).nullish(),
  })
  .strict();

export const WirePermissionProfile = z.union([TaggedProfile, LegacyProfile]);
export type WirePermissionProfile = z.infer<typeof WirePermissionProfile>;

export const WireSandboxPolicy = z.discriminatedUnion('type', [
  z.object({ type: z.literal('danger-full-access') }),
  z.object({ type: z.literal('read-only'), network_access: z.boolean().nullish() }),
  z.object({ type: z.literal('external-sandbox'), network_access: Network.nullish() }),
  z.object({
    type: z.literal('workspace-write'),
    writable_roots: z.array(z.string()).nullish(),
    network_access: z.boolean().nullish(),
    exclude_tmpdir_env_var: z.boolean().nullish(),
    exclude_slash_tmp: z.boolean().nullish(),
  }),
]);
export type WireSandboxPolicy = z.infer<typeof WireSandboxPolicy>;

const WINDOWS_LEVELS = ['disabled', 'restricted-token', 'elevated'] as const;

export type WireSandbox =
  | { shape: 'permissions'; permissions: WirePermissionProfile; cwd: string | null }
  | { shape: 'sandboxPolicy'; sandboxPolicy: WireSandboxPolicy; cwd: string | null };

const quoteAll = (xs: readonly string[]): string => xs.map((x) => `\`${x}\``).join(', ');

/** Validates a `sandbox` value; `null`/absent gives null. Errors are `-32602` in the reference's words. */
export function parseWireSandbox(value: unknown): WireSandbox | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) throw invalidParams('invalid type: expected struct FileSystemSandboxContext');
  const v = value as Record<string, unknown>;
  const level = v.windowsSandboxLevel;
  const checkLevel = (): void => {
    if (level === undefined) throw invalidParams('missing field `windowsSandboxLevel`');
    if (typeof level !== 'string' || !(WINDOWS_LEVELS as readonly string[]).includes(level)) {
      throw invalidParams(`unknown variant \`${String(level)}\`, expected one of ${quoteAll(WINDOWS_LEVELS)}`);
    }
  };
  const cwdOf = (key: string): string | null => {
    const c = v[key];
    if (c === undefined || c === null) return null;
    if (typeof c !== 'string') throw invalidParams(`invalid type: expected a path for \`${key}\``);
    return c;
  };
  if ('sandboxPolicy' in v && !('permissions' in v)) {
    const policy = WireSandboxPolicy.safeParse(v.sandboxPolicy);
    if (!policy.success) {
      const type = (v.sandboxPolicy as { type?: unknown } | null)?.type;
      throw invalidParams(
        typeof type === 'string' && !['danger-full-access', 'read-only', 'external-sandbox', 'workspace-write'].includes(type)
          ? `unknown variant \`${type}\`, expected one of \`danger-full-access\`, \`read-only\`, \`external-sandbox\`, \`workspace-write\``
          : `invalid sandboxPolicy: ${policy.error.issues[0]?.message ?? 'malformed'}`,
      );
    }
    checkLevel();
    return { shape: 'sandboxPolicy', sandboxPolicy: policy.data, cwd: cwdOf('sandboxPolicyCwd') };
  }
  if (!('permissions' in v)) throw invalidParams('missing field `permissions`');
  const profile = WirePermissionProfile.safeParse(v.permissions);
  if (!profile.success) throw invalidParams('data did not match any variant of untagged enum PermissionProfileDe');
  checkLevel();
  return { shape: 'permissions', permissions: profile.data, cwd: cwdOf('cwd') };
}
