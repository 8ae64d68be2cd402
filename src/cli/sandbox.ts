import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { SandboxRequest } from '../environment/permissions.js';
import type { OperatorNetworkPolicy } from '../network/policy.js';
import { builtinProfile, isBuiltinProfileName } from '../sandbox/builtin-profiles.js';
import { compilePermissions } from '../sandbox/config.js';
import { runDoctor } from '../sandbox/doctor.js';
import { runExec } from './exec.js';
import { type NetworkFlags, operatorNetworkFromFlags } from './network-flags.js';

export interface SandboxCommandOptions extends NetworkFlags {
  permissions?: string;
  config?: string;
  cwd: string;
  allowNetwork?: boolean;
  env: string[];
  tty?: boolean;
}

/** Resolves `--permissions` / `--config` to a sandbox request for `cwd`. */
export async function sandboxFromFlags(opts: {
  permissions?: string;
  config?: string;
  cwd: string;
  allowNetwork?: boolean;
}): Promise<SandboxRequest & { network?: OperatorNetworkPolicy }> {
  const cwd = path.resolve(opts.cwd);
  let profile;
  let network: OperatorNetworkPolicy | undefined;
  if (opts.config) {
    const compiled = compilePermissions(await readFile(opts.config, 'utf8'), opts.permissions);
    for (const w of compiled.warnings) process.stderr.write(`cordon: warning: ${w}\n`);
    profile = compiled.profile;
    network = compiled.network;
  } else {
    const name = opts.permissions ?? ':workspace';
    if (!isBuiltinProfileName(name))
      throw new Error(`unknown permission profile ${name}: use :read-only, :workspace, :danger-full-access, or a profile of --config`);
    profile = builtinProfile(name);
  }
  if (opts.allowNetwork) profile = { ...profile, network: 'enabled' as const };
  return { profile, cwd, ...(network ? { network } : {}) };
}

/** `cordon sandbox`: runs a command locally under a profile and exits with its code. */
export async function runSandbox(command: string[], opts: SandboxCommandOptions): Promise<number> {
  let sandbox: SandboxRequest;
  let network: OperatorNetworkPolicy | undefined;
  try {
    const fromFlags = await sandboxFromFlags(opts);
    network = await operatorNetworkFromFlags(opts, fromFlags.network);
    sandbox = { profile: network ? { ...fromFlags.profile, network: 'enabled' } : fromFlags.profile, cwd: fromFlags.cwd };
  } catch (err) {
    process.stderr.write(`cordon sandbox: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  return runExec(command, {
    cwd: opts.cwd,
    env: opts.env,
    tty: opts.tty ?? false,
    sandbox,
    label: 'cordon sandbox',
    ...(network ? { network } : {}),
  });
}

/** `cordon doctor`: prints each check and its fix; exits 1 when the sandbox cannot work. */
export async function runDoctorCommand(): Promise<number> {
  const checks = await runDoctor();
  for (const c of checks) {
    process.stdout.write(`${c.ok ? 'ok  ' : 'FAIL'}  ${c.name}: ${c.detail}\n`);
    if (!c.ok && c.fix) process.stdout.write(`      fix: ${c.fix}\n`);
  }
  const ok = checks.every((c) => c.ok || c.name === 'mount /proc in the sandbox');
  process.stdout.write(
    ok ? '\nThe sandbox works on this host.\n' : '\nThe sandbox cannot be used on this host until the failures above are fixed.\n',
  );
  return ok ? 0 : 1;
}
