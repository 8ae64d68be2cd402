import type { OperatorNetworkPolicy, PolicyProtocol } from './policy.js';

/** What the operator's policy needs of an exec-policy `network_rule(...)` (src/execpolicy, validated). */
export interface NetworkRuleLike {
  normalizedHost: string;
  protocol: 'http' | 'https' | 'socks5_tcp' | 'socks5_udp';
  decision: 'allow' | 'deny' | 'prompt';
}

/** A rule's protocol as the proxy names what it sees: `https` is a CONNECT tunnel. */
const PROXY_PROTOCOL: Record<NetworkRuleLike['protocol'], PolicyProtocol> = {
  http: 'http',
  https: 'https_connect',
  socks5_tcp: 'socks5_tcp',
  socks5_udp: 'socks5_udp',
};

/**
 * The operator's network policy with the `network_rule`s of its `.rules` files (docs/network.md,
 * "Network rules"): a deny (or forbidden) denies the host for every protocol, as Codex's
 * protocol-less deny list does; allow and prompt hold for the rule's protocol only. The strictest
 * decision wins: deny over prompt over allow, and over the `--network-*` flags for the same host.
 * Rules make the network available only through the proxy, as the flags do.
 */
export function withNetworkRules(
  base: OperatorNetworkPolicy | undefined,
  rules: readonly NetworkRuleLike[],
): OperatorNetworkPolicy | undefined {
  if (rules.length === 0) return base;
  const domains = { ...(base?.domains ?? {}) };
  const protocolRules = [...(base?.protocolRules ?? [])];
  for (const r of rules) {
    if (r.decision === 'deny') domains[r.normalizedHost] = 'deny';
    else protocolRules.push({ host: r.normalizedHost, protocol: PROXY_PROTOCOL[r.protocol], decision: r.decision });
  }
  return {
    mode: base?.mode ?? 'full',
    domains,
    allowLocalBinding: base?.allowLocalBinding ?? false,
    trustedRanges: base?.trustedRanges ?? [],
    protocolRules,
  };
}
