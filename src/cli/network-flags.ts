import type { OperatorNetworkPolicy } from '../network/policy.js';

/** The `--network-*` flags of `serve`, `exec` and `sandbox`. */
export interface NetworkFlags {
  networkAllow?: string[];
  networkDeny?: string[];
  networkMode?: string;
  networkAllowLocalBinding?: boolean;
  networkTrustedRange?: string[];
}

/**
 * The operator's network policy from cordon.toml's `[permissions.NAME.network]` and the
 * `--network-*` flags (flags add to the file), or undefined when neither says anything.
 */
export async function operatorNetworkFromFlags(
  opts: NetworkFlags,
  fromConfig: OperatorNetworkPolicy | undefined,
): Promise<OperatorNetworkPolicy | undefined> {
  const flagged =
    (opts.networkAllow?.length ?? 0) + (opts.networkDeny?.length ?? 0) + (opts.networkTrustedRange?.length ?? 0) > 0 ||
    opts.networkMode !== undefined ||
    opts.networkAllowLocalBinding === true;
  if (!flagged && !fromConfig) return undefined;
  const mode = opts.networkMode ?? fromConfig?.mode ?? 'full';
  if (mode !== 'full' && mode !== 'limited') throw new Error(`--network-mode must be full or limited, not ${mode}`);
  const domains: Record<string, 'allow' | 'deny'> = { ...(fromConfig?.domains ?? {}) };
  for (const d of opts.networkAllow ?? []) domains[d] = 'allow';
  for (const d of opts.networkDeny ?? []) domains[d] = 'deny';
  const policy: OperatorNetworkPolicy = {
    mode,
    domains,
    allowLocalBinding: opts.networkAllowLocalBinding === true || fromConfig?.allowLocalBinding === true,
    trustedRanges: [...(fromConfig?.trustedRanges ?? []), ...(opts.networkTrustedRange ?? [])],
  };
  return checkedNetworkPolicy(policy);
}

/** Every pattern and range is checked now, so a typo stops the server instead of a request. */
export async function checkedNetworkPolicy(policy: OperatorNetworkPolicy): Promise<OperatorNetworkPolicy> {
  const { NetworkPolicy } = await import('../network/policy.js');
  new NetworkPolicy({ ...policy, ceiling: policy });
  return policy;
}
