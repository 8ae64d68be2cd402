import { lookup } from 'node:dns/promises';
import {
  canonicalIp,
  classifyAddress,
  type IpAddress,
  inRanges,
  isMetadataAddress,
  parseCidrs,
  parseIpLiteral,
  unwrapAddress,
} from './address.js';
import { type DomainPattern, normalizeHost, parseDomainPattern, patternMatches } from './domain-pattern.js';

export type NetworkMode = 'full' | 'limited';
export type DomainDecision = 'allow' | 'deny';
export type PolicyProtocol = 'http' | 'https_connect' | 'socks5_tcp' | 'socks5_udp';

export interface NetworkPolicyConfig {
  mode: NetworkMode;
  /** Pattern -> allow | deny (domain-pattern.ts). Deny wins. */
  domains: Record<string, DomainDecision>;
  /** Local literals and names resolving to local/private addresses may be reached (Codex `allow_local_binding`). */
  allowLocalBinding: boolean;
  /** CIDR ranges of private addresses an operator trusts (an intranet); loopback, link-local and metadata never. */
  trustedRanges?: string[];
  /** `proxy.enabled: false`: every request is refused (`proxy_disabled`). */
  disabled?: boolean;
  /**
   * The operator's policy (`cordon serve --network-*`, cordon.toml): a limit the client's policy
   * cannot widen. Its deny list and mode apply; with an allow list, a host outside it is refused
   * without asking anyone; local binding needs both to allow it.
   */
  ceiling?: OperatorNetworkPolicy;
  /**
   * The process's proxy is the operator's own (not a client's launch): the operator's protocol
   * rules allow hosts here too, and its decider is asked only about hosts a prompt rule names.
   */
  operatorLaunch?: boolean;
}

export interface OperatorNetworkPolicy {
  mode: NetworkMode;
  domains: Record<string, DomainDecision>;
  allowLocalBinding: boolean;
  trustedRanges: string[];
  /**
   * Exec-policy `network_rule`s that allow a host, or ask the client about it, for one protocol
   * only (network-rules.ts; their denials are in `domains`, for every protocol).
   */
  protocolRules?: ProtocolRule[];
}

/** A host allowed, or to be asked about, for one protocol as the proxy sees it. */
export interface ProtocolRule {
  host: string;
  protocol: PolicyProtocol;
  decision: 'allow' | 'prompt';
}

/** Resolves a name to addresses, once per request; injectable (tests map names to their own namespace). */
export type Resolve = (host: string) => Promise<string[]>;

export const systemResolve: Resolve = async (host) => (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

export interface DeciderRequest {
  protocol: PolicyProtocol;
  host: string;
  port: number;
}

/** A decider's answer (the wire's `decision` object). Anything else counts as deny. */
export type DeciderAnswer = { type: 'allow' } | { type: 'deny' | 'ask'; reason?: string };

/** Asked only about allow-list misses (`not_allowed`); must settle (a timeout is its own job). */
export type Decider = (request: DeciderRequest) => Promise<DeciderAnswer>;

export type DecisionSource = 'baseline_policy' | 'mode_guard' | 'decider';

/** One evaluated request: the 11 fields of `network/policyDecision` besides `processId`. */
export interface DecisionEvent {
  timestamp: string;
  scope: 'domain' | 'non_domain';
  decision: 'allow' | 'deny' | 'ask';
  source: DecisionSource;
  reason: string;
  protocol: PolicyProtocol;
  host: string;
  port: number;
  method?: string;
  client?: string;
  policyOverride: boolean;
}

export interface PolicyRequest {
  protocol: PolicyProtocol;
  /** As requested; normalised here. */
  host: string;
  port: number;
  method?: string;
  client?: string;
}

export type Verdict =
  | { allowed: true; host: string; addresses: string[] }
  | { allowed: false; host: string; reason: string; decision: 'deny' | 'ask'; source: DecisionSource };

export interface NetworkPolicyHooks {
  resolve?: Resolve;
  decider?: Decider;
  onDecision?: (event: DecisionEvent) => void;
}

const LIMITED_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

const isLocalName = (host: string): boolean => host === 'localhost' || host.endsWith('.localhost');

/**
 * The decision pipeline (docs/network.md): method guard, deny list, local literals, allow list or
 * decider, then one resolution whose every address is checked; the addresses returned are exactly
 * the ones the caller may dial (never look the name up again).
 */
export class NetworkPolicy {
  private readonly allow: DomainPattern[] = [];
  private readonly deny: DomainPattern[] = [];
  private readonly trusted: Array<[IpAddress, number]>;
  private readonly resolve: Resolve;
  private readonly ceilingAllow: DomainPattern[] = [];
  private readonly ceilingDeny: DomainPattern[] = [];
  private readonly ruleAllow: Array<{ pattern: DomainPattern; protocol: PolicyProtocol }> = [];
  private readonly rulePrompt: Array<{ pattern: DomainPattern; protocol: PolicyProtocol }> = [];

  constructor(
    readonly config: NetworkPolicyConfig,
    private readonly hooks: NetworkPolicyHooks = {},
  ) {
    for (const [pattern, decision] of Object.entries(config.domains)) this.addDomainRule(pattern, decision);
    for (const [pattern, decision] of Object.entries(config.ceiling?.domains ?? {}))
      (decision === 'allow' ? this.ceilingAllow : this.ceilingDeny).push(parseDomainPattern(pattern));
    for (const r of config.ceiling?.protocolRules ?? [])
      (r.decision === 'allow' ? this.ruleAllow : this.rulePrompt).push({ pattern: parseDomainPattern(r.host), protocol: r.protocol });
    this.trusted = parseCidrs([...(config.trustedRanges ?? []), ...(config.ceiling?.trustedRanges ?? [])]);
    this.resolve = hooks.resolve ?? systemResolve;
  }

  /** Adds a rule to the live policy (exec-policy `network_rule`s, an approval remembered). */
  addDomainRule(pattern: string, decision: DomainDecision): void {
    if (decision !== 'allow' && decision !== 'deny')
      throw new Error(`invalid domain decision ${JSON.stringify(decision)} for ${pattern}: expected allow or deny`);
    (decision === 'allow' ? this.allow : this.deny).push(parseDomainPattern(pattern));
  }

  get hasDecider(): boolean {
    return this.hooks.decider !== undefined;
  }

  private emit(
    req: PolicyRequest,
    host: string,
    e: Pick<DecisionEvent, 'scope' | 'decision' | 'source' | 'reason'> & { policyOverride?: boolean },
  ): void {
    this.hooks.onDecision?.({
      timestamp: new Date().toISOString(),
      scope: e.scope,
      decision: e.decision,
      source: e.source,
      reason: e.reason,
      protocol: req.protocol,
      host,
      port: req.port,
      ...(req.method !== undefined ? { method: req.method } : {}),
      ...(req.client !== undefined ? { client: req.client } : {}),
      policyOverride: e.policyOverride ?? false,
    });
  }

  private refuse(
    req: PolicyRequest,
    host: string,
    scope: DecisionEvent['scope'],
    source: DecisionSource,
    reason: string,
    decision: 'deny' | 'ask' = 'deny',
  ): Verdict {
    this.emit(req, host, { scope, decision, source, reason });
    return { allowed: false, host, reason, decision, source };
  }

  async check(req: PolicyRequest): Promise<Verdict> {
    const host = normalizeHost(req.host);
    const ceiling = this.config.ceiling;
    const mode = ceiling?.mode === 'limited' ? 'limited' : this.config.mode;
    const allowLocalBinding = this.config.allowLocalBinding && (ceiling ? ceiling.allowLocalBinding : true);
    if (this.config.disabled) return this.refuse(req, host, 'non_domain', 'baseline_policy', 'proxy_disabled');

    // The method is judged first, so nobody is asked about a request that would be refused anyway.
    if (mode === 'limited') {
      if (req.protocol === 'https_connect') return this.refuse(req, host, 'non_domain', 'mode_guard', 'mitm_required');
      if (req.protocol !== 'http' || !LIMITED_METHODS.has((req.method ?? '').toUpperCase())) {
        return this.refuse(req, host, 'non_domain', 'mode_guard', 'method_not_allowed');
      }
    }
    if (this.deny.some((p) => patternMatches(p, host, req.port)) || this.ceilingDeny.some((p) => patternMatches(p, host, req.port))) {
      return this.refuse(req, host, 'domain', 'baseline_policy', 'denied');
    }
    // Protocol rules (exec-policy network_rule) match a host for their protocol only; prompt beats allow.
    const ruleMatches = (rules: typeof this.ruleAllow): boolean =>
      rules.some((r) => r.protocol === req.protocol && patternMatches(r.pattern, host, req.port));
    const prompted = ruleMatches(this.rulePrompt);
    const ruleAllowed = !prompted && ruleMatches(this.ruleAllow);
    const operatorAllowList = this.ceilingAllow.length > 0 || this.ruleAllow.length > 0;
    if (operatorAllowList && !prompted && !ruleAllowed && !this.ceilingAllow.some((p) => patternMatches(p, host, req.port))) {
      return this.refuse(req, host, 'domain', 'baseline_policy', 'not_allowed');
    }

    const literal = parseIpLiteral(host);
    const listedExactly = this.allow.some((p) => p.kind === 'exact' && p.host === host && patternMatches(p, host, req.port));
    const reachable = (addr: IpAddress): boolean => {
      const a = unwrapAddress(addr);
      const cls = classifyAddress(a);
      if (cls === 'public') return true;
      if (cls === 'private' && inRanges(a, this.trusted)) return true;
      if (isMetadataAddress(a)) return false;
      return allowLocalBinding;
    };
    if (!listedExactly && ((literal && !reachable(literal)) || (!literal && isLocalName(host) && !allowLocalBinding))) {
      return this.refuse(req, host, 'domain', 'baseline_policy', 'not_allowed_local');
    }

    let override = false;
    const allowed =
      !prompted && ((this.config.operatorLaunch === true && ruleAllowed) || this.allow.some((p) => patternMatches(p, host, req.port)));
    if (!allowed) {
      const decider = this.hooks.decider;
      if (!decider || (this.config.operatorLaunch === true && !prompted))
        return this.refuse(req, host, 'domain', 'baseline_policy', 'not_allowed');
      let answer: DeciderAnswer | undefined;
      try {
        answer = await decider({ protocol: req.protocol, host, port: req.port });
      } catch {
        answer = undefined;
      }
      if (answer?.type !== 'allow') {
        const reason =
          (answer?.type === 'deny' || answer?.type === 'ask') && typeof answer.reason === 'string' && answer.reason
            ? answer.reason
            : 'not_allowed';
        return this.refuse(req, host, 'domain', 'decider', reason, answer?.type === 'ask' ? 'ask' : 'deny');
      }
      override = true;
    }

    // Resolve once; what survives the check is what gets dialled.
    let resolved: IpAddress[];
    if (literal) resolved = [literal];
    else if (isLocalName(host)) resolved = [parseIpLiteral('127.0.0.1') as IpAddress];
    else {
      try {
        resolved = (await this.resolve(host)).map((a) => parseIpLiteral(a)).filter((a): a is IpAddress => a !== undefined);
      } catch {
        resolved = [];
      }
    }
    const addresses = listedExactly && (literal || isLocalName(host)) ? resolved : resolved.filter(reachable);
    if (addresses.length === 0 && (resolved.length > 0 || !allowLocalBinding)) {
      return this.refuse(req, host, 'domain', override ? 'decider' : 'baseline_policy', 'not_allowed_local');
    }
    this.emit(req, host, {
      scope: 'domain',
      decision: 'allow',
      source: override ? 'decider' : 'baseline_policy',
      reason: override ? 'not_allowed' : 'allow',
      policyOverride: override,
    });
    return { allowed: true, host, addresses: addresses.map((a) => canonicalIp(unwrapAddress(a))) };
  }
}
