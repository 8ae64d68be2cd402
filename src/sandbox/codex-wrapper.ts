import path from 'node:path';
import type { SandboxRequest } from '../environment/permissions.js';
import { invalidParams } from '../protocol/errors.js';
import { parseAbsolutePath } from '../protocol/paths.js';
import { WirePermissionProfile, WireSandboxPolicy } from '../protocol/sandbox.js';
import { profileFromLegacyPolicy, profileFromWire } from './profile.js';

/** Codex's client-side sandbox wrapper: arg0 `codex-linux-sandbox` (bare or a path). */
export const isCodexSandboxWrapper = (arg0: string | null | undefined): boolean => !!arg0 && path.basename(arg0) === 'codex-linux-sandbox';

export interface UnwrappedCodexCommand {
  argv: string[];
  cwd: string | undefined;
  sandbox: SandboxRequest;
}

const VALUE_FLAGS = new Set(['--sandbox-policy-cwd', '--command-cwd', '--permission-profile', '--sandbox-policy']);

/**
 * Turns `[<client's codex>, --sandbox-policy-cwd CWD, --command-cwd CWD, --permission-profile JSON
 * (or --sandbox-policy LEGACY_JSON), --, CMD...]` into CMD and the sandbox it asks for
 * (docs/protocol.md §7.1.3), so Cordon runs CMD under its own sandbox: the paths in that argv exist
 * only on the client's machine. Unknown flags are refused rather than guessed at.
 */
export function unwrapCodexSandboxArgv(argv: string[]): UnwrappedCodexCommand {
  const flags = new Map<string, string>();
  let i = 1;
  for (; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') break;
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if (!VALUE_FLAGS.has(name))
      throw invalidParams(`unsupported codex-linux-sandbox flag ${name}: Cordon understands ${[...VALUE_FLAGS].join(', ')}`);
    const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw invalidParams(`codex-linux-sandbox flag ${name} needs a value`);
    flags.set(name, value);
  }
  const command = argv.slice(i + 1);
  if (i >= argv.length || command.length === 0) throw invalidParams('codex-linux-sandbox command is missing: expected `-- CMD ARGS...`');
  const policyCwdText = flags.get('--sandbox-policy-cwd');
  const policyCwd = policyCwdText ? parseAbsolutePath(policyCwdText) : null;
  const commandCwdText = flags.get('--command-cwd');
  let profile;
  const parseJson = (flag: string): unknown => {
    try {
      return JSON.parse(flags.get(flag) as string);
    } catch (err) {
      throw invalidParams(`invalid ${flag} JSON: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  if (flags.has('--permission-profile')) {
    const parsed = WirePermissionProfile.safeParse(parseJson('--permission-profile'));
    if (!parsed.success)
      throw invalidParams('invalid permission profile JSON: data did not match any variant of untagged enum PermissionProfileDe');
    profile = profileFromWire(parsed.data);
  } else if (flags.has('--sandbox-policy')) {
    const parsed = WireSandboxPolicy.safeParse(parseJson('--sandbox-policy'));
    if (!parsed.success) throw invalidParams(`invalid --sandbox-policy JSON: ${parsed.error.issues[0]?.message ?? 'malformed'}`);
    profile = profileFromLegacyPolicy(parsed.data);
  } else
    throw invalidParams('missing permission profile configuration: codex-linux-sandbox needs --permission-profile or --sandbox-policy');
  return { argv: command, cwd: commandCwdText ? parseAbsolutePath(commandCwdText) : undefined, sandbox: { profile, cwd: policyCwd } };
}
