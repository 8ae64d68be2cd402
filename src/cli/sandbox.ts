import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { SandboxRequest } from '../environment/permissions.js';
import { builtinProfile, isBuiltinProfileName } from '../sandbox/builtin-profiles.js';
import { compilePermissions } from '../sandbox/config.js';
import { runDoctor } from '../sandbox/doctor.js';
import { runExec } from './exec.js';

export interface SandboxCommandOptions {
  permissions?: string;
  config?: string;
  cwd: string;
  allowNetwork?: boolean;
  env: string[];
  tty?: boolean;
}

/** Resolves `--permissions` / `--config` to a sandbox request for `cwd`. */
export async function sandboxFromFlags(opts: { permissions?: string; config?: string; cwd: string; allowNetwork?: boolean }): Promise<SandboxRequest> {
  const cwd = path.resolve(opts.cwd);
  let profile;
  if (opts.config) {
    const compiled = compilePermissions(await readFile(opts.config, 'utf8'), opts.permissions);
    for (const w of compiled.warnings) process.stderr.write(`cordon: warning: ${w}\n`);
    profile = compiled.profile;
  } else {
    const name = opts.permissions ?? ':workspace';
    if (!isBuiltinProfileName(name)) throw new Error(`unknown permission profile ${name}: use :read-only, :workspace, :danger-full-access, or a profile of --config`);
    profile = builtinProfile(name);
  }
  if (opts.allowNetwork) profile = { ...profile, network: 'enabled' as const };
  return { profile, cwd };
}

/** `cordon sandbox`: runs a command locally under a profile and exits with its code. */
export async function runSandbox(command: string[], opts: SandboxCommandOptions): Promise<number> {
  let sandbox: SandboxRequest;
  try {
    sandbox = await sandboxFromFlags(opts);
  } catch (err) {
    process.stderr.write(`cordon sandbox: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  return runExec(command, { cwd: opts.cwd, env: opts.env, tty: opts.tty ?? false, sandbox, label: 'cordon sandbox' });
}

/** `cordon doctor`: prints each check and its fix; exits 1 when the sandbox cannot work. */
export async function runDoctorCommand(): Promise<number> {
  const checks = await runDoctor();
  for (const c of checks) {
    process.stdout.write(`${c.ok ? 'ok  ' : 'FAIL'}  ${c.name}: ${c.detail}\n`);
    if (!c.ok && c.fix) process.stdout.write(`      fix: ${c.fix}\n`);
  }
  const ok = checks.every((c) => c.ok || c.name === 'mount /proc in the sandbox');
  process.stdout.write(ok ? '\nThe sandbox works on this host.\n' : '\nThe sandbox cannot be used on this host until the failures above are fixed.\n');
  return ok ? 0 : 1;
}
