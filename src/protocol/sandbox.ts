import { z } from 'zod';
import { ErrorCode, invalidParams, RpcError } from './errors.js';
import { describeUnexpected, serdeErrorMessage } from './validate.js';

/**
 * The `sandbox` object fs requests and `process/start` carry, in every shape clients send
 * (docs/protocol.md §8): `{permissions, cwd?, windowsSandboxLevel}` (0.124+),
 * `{sandboxPolicy, sandboxPolicyCwd?, windowsSandboxLevel}` (0.122–0.123), and the 0.142+ context
 * with `workspaceRoots`, `policyContext`, `userHomeDir`, `windowsSandboxProxySettingsMode`,
 * `useLegacyLandlock` (and `windowsSandboxPrivateDesktop`, 0.142–0.155, ignored).
 */

const ACCESS = z.enum(['read', 'write', 'deny', 'none']);

// In the order the reference lists them in its `unknown variant` error.
const SpecialPath = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('root') }),
  z.object({ kind: z.literal('minimal') }),
  z.object({ kind: z.literal('current_working_directory'), subpath: z.string().nullish() }),
  z.object({ kind: z.literal('project_roots'), subpath: z.string().nullish() }),
  z.object({ kind: z.literal('tmpdir') }),
  z.object({ kind: z.literal('slash_tmp') }),
  z.object({ kind: z.literal('unknown'), path: z.string(), subpath: z.string().nullish() }),
]);

const FsPath = z.discriminatedUnion('type', [
  z.object({ type: z.literal('path'), path: z.string() }),
  z.object({ type: z.literal('glob_pattern'), pattern: z.string() }),
  z.object({ type: z.literal('special'), value: SpecialPath }),
]);

/** `missing_path_behavior` (0.147+): `skip` is its only value; a missing path is masked either way. */
export const WireEntry = z.object({ path: FsPath, access: ACCESS, missing_path_behavior: z.enum(['skip']).nullish() });
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
    file_system: z
      .union([
        z.object({ read: z.array(z.string()).default([]), write: z.array(z.string()).default([]) }).strict(),
        z.object({ entries: z.array(WireEntry), glob_scan_max_depth: z.number().int().min(1).nullish() }).strict(),
      ])
      .nullish(),
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

const WINDOWS_LEVELS = ['disabled', 'restricted-token', 'elevated', 'mxc'] as const;
const PROXY_SETTINGS_MODES = ['reconcile', 'preserve'] as const;

/** The context fields every shape may carry; paths are as sent (plain or `file://`), checked later. */
export interface WireSandboxContext {
  cwd: string | null;
  workspaceRoots: string[] | null;
  policyContext: { cwd: string | null; workspaceRoots: string[] | null } | null;
  userHomeDir: string | null;
}

export type WireSandbox =
  | ({ shape: 'permissions'; permissions: WirePermissionProfile } & WireSandboxContext)
  | ({ shape: 'sandboxPolicy'; sandboxPolicy: WireSandboxPolicy } & WireSandboxContext);

const quoteAll = (xs: readonly string[]): string => xs.map((x) => `\`${x}\``).join(', ');

export const MXC_UNAVAILABLE = 'native MXC is unavailable on this executor';

const PolicyContext = z.object({ cwd: z.string().nullish(), workspaceRoots: z.array(z.string()).nullish() });

function parsePermissions(value: unknown): WirePermissionProfile {
  // A tagged profile gets the reference's field-level wording; the untagged legacy shapes cannot
  // say which variant was meant, so they keep serde's untagged-enum wording.
  const type = value !== null && typeof value === 'object' ? (value as { type?: unknown }).type : undefined;
  if (type === 'disabled' || type === 'external' || type === 'managed') {
    const tagged = TaggedProfile.safeParse(value);
    if (tagged.success) return tagged.data;
    throw invalidParams(serdeErrorMessage(tagged.error, value));
  }
  const profile = WirePermissionProfile.safeParse(value);
  if (!profile.success) throw invalidParams('data did not match any variant of untagged enum PermissionProfileDe');
  return profile.data;
}

/**
 * Validates a `sandbox` value; `null`/absent gives null. Errors are `-32602` in the reference's
 * words; `windowsSandboxLevel: "mxc"` is `-32602` with `data.kind: "sandboxUnavailable"` (Linux has no MXC).
 */
export function parseWireSandbox(value: unknown): WireSandbox | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) throw invalidParams('invalid type: expected struct FileSystemSandboxContext');
  const v = value as Record<string, unknown>;
  const optionalString = (key: string, from: Record<string, unknown> = v): string | null => {
    const c = from[key];
    if (c === undefined || c === null) return null;
    if (typeof c !== 'string') throw invalidParams(`invalid type: ${describeUnexpected(c)}, expected a string`);
    return c;
  };
  const context = (cwdKey: string): WireSandboxContext => {
    const roots = v.workspaceRoots;
    if (roots != null && !Array.isArray(roots)) throw invalidParams(`invalid type: ${describeUnexpected(roots)}, expected a sequence`);
    const badRoot = Array.isArray(roots) ? roots.find((r) => typeof r !== 'string') : undefined;
    if (badRoot !== undefined) throw invalidParams(`invalid type: ${describeUnexpected(badRoot)}, expected a string`);
    let policyContext: WireSandboxContext['policyContext'] = null;
    if (v.policyContext != null) {
      const parsed = PolicyContext.safeParse(v.policyContext);
      if (!parsed.success) throw invalidParams(serdeErrorMessage(parsed.error, v.policyContext));
      policyContext = { cwd: parsed.data.cwd ?? null, workspaceRoots: parsed.data.workspaceRoots ?? null };
    }
    const mode = v.windowsSandboxProxySettingsMode;
    if (mode != null && (typeof mode !== 'string' || !(PROXY_SETTINGS_MODES as readonly string[]).includes(mode))) {
      throw invalidParams(`unknown variant \`${String(mode)}\`, expected ${PROXY_SETTINGS_MODES.map((m) => `\`${m}\``).join(' or ')}`);
    }
    if (v.useLegacyLandlock != null && typeof v.useLegacyLandlock !== 'boolean')
      throw invalidParams(`invalid type: ${describeUnexpected(v.useLegacyLandlock)}, expected a boolean`);
    const level = v.windowsSandboxLevel;
    if (level === undefined) throw invalidParams('missing field `windowsSandboxLevel`');
    if (typeof level !== 'string' || !(WINDOWS_LEVELS as readonly string[]).includes(level)) {
      throw invalidParams(`unknown variant \`${String(level)}\`, expected one of ${quoteAll(WINDOWS_LEVELS)}`);
    }
    if (level === 'mxc') throw new RpcError(ErrorCode.InvalidParams, MXC_UNAVAILABLE, { kind: 'sandboxUnavailable' });
    return {
      cwd: optionalString(cwdKey),
      workspaceRoots: (roots as string[] | null | undefined) ?? null,
      policyContext,
      userHomeDir: optionalString('userHomeDir'),
    };
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
    return { shape: 'sandboxPolicy', sandboxPolicy: policy.data, ...context('sandboxPolicyCwd') };
  }
  if (!('permissions' in v)) throw invalidParams('missing field `permissions`');
  const permissions = parsePermissions(v.permissions);
  return { shape: 'permissions', permissions, ...context('cwd') };
}
