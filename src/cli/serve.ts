import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { parse as parseToml } from 'smol-toml';
import {
  type ApprovalPolicy,
  ExecPolicyEnforcer,
  loadRequirementsFile,
  loadRulesDirectory,
  PolicyLoadError,
  parseApprovalPolicy,
  RequirementsLoadError,
} from '../execpolicy/index.js';
import { defaultLinuxSandbox } from '../local/local-environment.js';
import { withNetworkRules } from '../network/network-rules.js';
import type { OperatorNetworkPolicy } from '../network/policy.js';
import { builtinProfile, isBuiltinProfileName } from '../sandbox/builtin-profiles.js';
import type { PermissionCeiling } from '../sandbox/ceiling.js';
import { compilePermissions } from '../sandbox/config.js';
import { CordonServer } from '../server/index.js';
import { checkedNetworkPolicy, type NetworkFlags, operatorNetworkFromFlags } from './network-flags.js';
import { readToken } from './token.js';

export interface ServeOptions extends NetworkFlags {
  listen: string;
  tokenFile?: string;
  insecureNoAuth?: boolean;
  sessionGraceMs: number;
  retainBytes: number;
  retainExitedMs: number;
  maxProcesses: number;
  logLevel: string;
  permissions?: string;
  workspace: string[];
  config?: string;
  rules?: string[];
  rulesDir?: string[];
  requirements?: string;
  approvalPolicy?: string;
}

export interface ExecPolicySources {
  /** `.rules` files that must load. */
  files: string[];
  /** Directories whose `*.rules` files are loaded, a file that does not load skipped with a warning. */
  dirs: string[];
  requirements?: string;
  approvalPolicy?: ApprovalPolicy;
}

/**
 * Where command rules come from: cordon.toml's `rules`, `rules_dir`, `requirements` and
 * `approval_policy` (paths relative to the file), then the flags (files and directories added,
 * the others replacing the file's).
 */
export async function execPolicySources(
  opts: Pick<ServeOptions, 'config' | 'rules' | 'rulesDir' | 'requirements' | 'approvalPolicy'>,
): Promise<ExecPolicySources> {
  const out: ExecPolicySources = { files: [], dirs: [] };
  if (opts.config) {
    const config = opts.config;
    const doc = parseToml(await readFile(config, 'utf8')) as Record<string, unknown>;
    const paths = (key: string, what: string, single: boolean): string[] => {
      const v = doc[key];
      if (v === undefined) return [];
      const list = single && typeof v === 'string' ? [v] : v;
      if (!Array.isArray(list) || !list.every((r) => typeof r === 'string'))
        throw new Error(`${config}: \`${key}\` must be ${single ? 'a path or ' : ''}a list of ${what}`);
      return (list as string[]).map((r) => path.resolve(path.dirname(config), r));
    };
    out.files.push(...paths('rules', '.rules file paths', false));
    out.dirs.push(...paths('rules_dir', 'directory paths', true));
    if (doc.requirements !== undefined) {
      if (typeof doc.requirements !== 'string') throw new Error(`${config}: \`requirements\` must be the path of a requirements.toml`);
      out.requirements = path.resolve(path.dirname(config), doc.requirements);
    }
    if (doc.approval_policy !== undefined) out.approvalPolicy = parseApprovalPolicy(doc.approval_policy);
  }
  out.files.push(...(opts.rules ?? []));
  out.dirs.push(...(opts.rulesDir ?? []));
  if (opts.requirements !== undefined) out.requirements = opts.requirements;
  if (opts.approvalPolicy !== undefined) out.approvalPolicy = parseApprovalPolicy(opts.approvalPolicy);
  return out;
}

/**
 * The enforcer for those sources, or undefined when there is nothing to enforce. A named rules
 * file or a requirements file that does not load throws; a directory's bad files are reported
 * through `warn`.
 */
export async function execPolicyFromSources(src: ExecPolicySources, warn: (line: string) => void): Promise<ExecPolicyEnforcer | undefined> {
  if (src.files.length === 0 && src.dirs.length === 0 && src.requirements === undefined && src.approvalPolicy === undefined)
    return undefined;
  const loaded = await loadRulesDirectory(src.dirs, src.files);
  for (const w of loaded.warnings) warn(`ignoring a rules file that does not load: ${w}`);
  let policy = loaded.policy;
  if (src.requirements !== undefined) {
    const requirements = await loadRequirementsFile(src.requirements);
    for (const w of requirements.warnings) warn(w);
    policy = policy.withOverlay(requirements.policy);
  }
  return ExecPolicyEnforcer.create(policy, src.approvalPolicy !== undefined ? { approvalPolicy: src.approvalPolicy } : {});
}

/**
 * The operator's ceiling from `--permissions/--workspace/--config`. Without flags: `:workspace`
 * rooted at the directory the server was started in, network restricted. `:danger-full-access`
 * removes the ceiling (undefined).
 */
export async function ceilingFromFlags(
  opts: { permissions?: string; workspace: string[]; config?: string },
  cwd = process.cwd(),
): Promise<{ ceiling: PermissionCeiling | undefined; warnings: string[]; network?: OperatorNetworkPolicy }> {
  let name = opts.permissions;
  let profile;
  let extraRoots: string[] = [];
  let warnings: string[] = [];
  let network: OperatorNetworkPolicy | undefined;
  if (opts.config) {
    const compiled = compilePermissions(await readFile(opts.config, 'utf8'), name);
    ({ name, profile, warnings } = compiled);
    extraRoots = compiled.workspaceRoots;
    network = compiled.network;
  } else {
    name ??= ':workspace';
    if (!isBuiltinProfileName(name))
      throw new Error(`unknown permission profile ${name}: use :read-only, :workspace, :danger-full-access, or a profile of --config`);
    profile = builtinProfile(name);
  }
  if (profile.enforcement === 'disabled') return { ceiling: undefined, warnings, ...(network ? { network } : {}) };
  const roots = [...(opts.workspace.length ? opts.workspace.map((w) => path.resolve(cwd, w)) : [cwd]), ...extraRoots];
  // A root that does not exist would be accepted and then fail every call under it: refuse it now.
  for (const root of roots) {
    const s = await stat(root).catch((err: NodeJS.ErrnoException) => err);
    if (s instanceof Error) throw new Error(`workspace ${root}: ${s.code === 'ENOENT' ? 'no such directory' : s.message}`);
    if (!s.isDirectory()) throw new Error(`workspace ${root}: not a directory`);
  }
  return {
    ceiling: { profile, cwd: roots[0] as string, workspaceRoots: roots, name: name as string },
    warnings,
    ...(network ? { network } : {}),
  };
}

function parseListen(listen: string): { host: string; port: number } | 'stdio' {
  if (listen === 'stdio' || listen === 'stdio://') return 'stdio';
  let url: URL;
  try {
    url = new URL(listen);
  } catch {
    throw new Error(`--listen must be ws://HOST:PORT or stdio, not ${listen}`);
  }
  if (url.protocol !== 'ws:') throw new Error(`--listen must be ws://HOST:PORT or stdio, not ${listen}`);
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port === '' ? 80 : Number(url.port) };
}

/** `cordon serve`: returns the exit code. */
export async function runServe(opts: ServeOptions): Promise<number> {
  const logger = pino({ level: opts.logLevel, base: undefined }, pino.destination(2));
  let where: ReturnType<typeof parseListen>;
  let token: string | undefined;
  let ceiling: PermissionCeiling | undefined;
  let execPolicy: ExecPolicyEnforcer | undefined;
  let network: OperatorNetworkPolicy | undefined;
  try {
    where = parseListen(opts.listen);
    token = opts.tokenFile ? await readToken(opts.tokenFile) : process.env.CORDON_TOKEN?.trim() || undefined;
    const fromFlags = await ceilingFromFlags(opts);
    ceiling = fromFlags.ceiling;
    network = await operatorNetworkFromFlags(opts, fromFlags.network);
    // A network policy means the network, through the proxy: the ceiling's network is enabled, and
    // every process with the network enabled is routed through a proxy with this policy.
    if (network && ceiling) ceiling = { ...ceiling, profile: { ...ceiling.profile, network: 'enabled' } };
    for (const w of fromFlags.warnings) process.stderr.write(`cordon serve: warning: ${w}\n`);
    execPolicy = await execPolicyFromSources(await execPolicySources(opts), (w) =>
      process.stderr.write(`cordon serve: warning: ${w}
`),
    );
    const networkRules = execPolicy?.policy.networkRules ?? [];
    if (networkRules.length > 0) {
      if (!network && ceiling && ceiling.profile.network !== 'enabled')
        process.stderr.write(
          `cordon serve: warning: the network_rule entries of the rules files have no effect: the permissions ceiling ${ceiling.name} gives processes no network
`,
        );
      else network = await checkedNetworkPolicy(withNetworkRules(network, networkRules) as OperatorNetworkPolicy);
    }
  } catch (err) {
    if (err instanceof PolicyLoadError) {
      // The text `codex execpolicy check` prints for the same file.
      process.stderr.write(err.report);
      return 1;
    }
    if (err instanceof RequirementsLoadError) {
      // The text Codex prints for the same requirements file.
      process.stderr.write(`cordon serve: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`cordon serve: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  if (ceiling) {
    // A ceiling is enforced by the sandbox: without one every request would be refused, so refuse
    // to start instead, saying why and what to do.
    const sandbox = defaultLinuxSandbox(process.env);
    try {
      await sandbox.probe();
    } catch (err) {
      process.stderr.write(
        `cordon serve: cannot enforce the permissions ceiling ${ceiling.name}: ${err instanceof Error ? err.message : String(err)}.\n` +
          'cordon serve: not starting. To run without any sandbox (clients may then read and write anything this user can), pass --permissions :danger-full-access explicitly.\n',
      );
      return 1;
    } finally {
      sandbox.dispose();
    }
  }
  const server = new CordonServer({
    token,
    sessionGraceMs: opts.sessionGraceMs,
    logger,
    ...(execPolicy ? { execPolicy } : {}),
    ...(network ? { network } : {}),
    environment: { retainBytesPerProcess: opts.retainBytes, retainExitedMs: opts.retainExitedMs, maxProcesses: opts.maxProcesses, ceiling },
  });
  if (ceiling) {
    process.stderr.write(
      `cordon serve: permissions ceiling ${ceiling.name}: workspace ${ceiling.workspaceRoots.join(', ')}; network ${network ? `through the managed proxy (${network.mode}; ${Object.keys(network.domains).length} domain rules)` : ceiling.profile.network}. Clients get at most this (--permissions to change it).\n`,
    );
  } else {
    process.stderr.write(
      'cordon serve: WARNING: no permissions ceiling (--permissions :danger-full-access): clients may read and write anything this user can, and use the network.\n',
    );
  }
  if (execPolicy) {
    const ap = execPolicy.options.approvalPolicy;
    process.stderr.write(
      `cordon serve: command rules: ${execPolicy.policy.prefixRules.length} prefix rules checked before every process start; ` +
        `${ap === undefined ? 'no approval policy (commands no rule matches run)' : `approval policy ${typeof ap === 'string' ? ap : 'granular'}`}.\n`,
    );
  }
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopping ??= server.close());
  const done = new Promise<number>((resolve) => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      process.once(sig, () => {
        logger.info({ signal: sig }, 'shutting down');
        void stop().then(() => resolve(0));
      });
    }
  });
  if (where === 'stdio') {
    server.warmUp();
    const served = server.serveStdio(process.stdin, process.stdout).then(async () => {
      await stop();
      return 0;
    });
    logger.info('serving on stdio');
    return Promise.race([served, done]);
  }
  try {
    const url = await server.listen({ host: where.host, port: where.port, insecureNoAuth: opts.insecureNoAuth ?? false });
    process.stdout.write(`${url}\n`);
    logger.info({ url, auth: token ? 'bearer' : 'none' }, 'listening');
    server.warmUp();
  } catch (err) {
    process.stderr.write(`cordon serve: ${err instanceof Error ? err.message : String(err)}\n`);
    await stop();
    return 1;
  }
  return done;
}
