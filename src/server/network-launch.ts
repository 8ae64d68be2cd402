import type { Logger } from 'pino';
import type { ProcessNetwork } from '../environment/types.js';
import { ErrorCode, invalidParams, networkMessages, RpcError, type StartParams } from '../protocol/index.js';
import { loopbackRoutedNetwork } from '../sandbox/loopback-routing.js';
import { proxiedNetwork } from '../sandbox/proxy-env.js';

/** Enforcement asked for without what it needs: refused before anything runs (as the core refusal). */
const unenforceable = (message: string): RpcError => new RpcError(ErrorCode.InvalidParams, message, { kind: 'sandboxUnavailable' });

import type { DeciderAnswer, DecisionEvent, OperatorNetworkPolicy, Resolve } from '../network/policy.js';
import type { Session } from './session.js';

/** The reference waits this long past the client's own budget for a decision (transport overhead). */
export const POLICY_DECISION_MARGIN_MS = 5_000;

/** How long a client has to answer about a host an operator's `network_rule(decision="prompt")` names. */
export const OPERATOR_PROMPT_TIMEOUT_MS = 60_000;

export interface NetworkLaunchContext {
  session?: Session;
  logger?: Logger;
  /** Tests map names to their own namespace's addresses. */
  resolve?: Resolve;
  trustedRanges?: string[];
  operatorNetwork?: OperatorNetworkPolicy;
  ceilingNetwork?: string;
}

/** A decider's answer, strictly: anything but `{decision:{type:allow|deny|ask}}` is a deny. */
export function parseDeciderAnswer(result: unknown): DeciderAnswer {
  const d = (result as { decision?: unknown } | null)?.decision as { type?: unknown; reason?: unknown } | undefined;
  if (!d || typeof d !== 'object') return { type: 'deny' };
  const reason = typeof d.reason === 'string' && d.reason ? d.reason : undefined;
  if (d.type === 'allow') return { type: 'allow' };
  if (d.type === 'deny' || d.type === 'ask') return reason ? { type: d.type, reason } : { type: d.type };
  return { type: 'deny' };
}

/** The process's proxy from `process/start` params, or null; fails closed on what cannot be honoured. */
export async function launchProcessNetwork(
  p: StartParams,
  processId: string,
  sandboxNetwork: string | undefined,
  ctx: NetworkLaunchContext,
): Promise<ProcessNetwork | null> {
  if (p.networkProxy && p.managedNetwork) throw invalidParams(networkMessages.mutuallyExclusive);
  if (p.networkProxy?.policyDecisionTimeoutMs === 0) throw invalidParams(networkMessages.zeroTimeout);
  const operator = ctx.operatorNetwork;
  const routed = p.managedNetwork && p.enforceManagedNetwork === true;
  if ((p.networkProxy || routed) && sandboxNetwork !== undefined && sandboxNetwork !== 'enabled')
    throw invalidParams(p.networkProxy ? networkMessages.restrictedWithProxy : networkMessages.restrictedWithManagedNetwork);
  // The operator's ceiling gives no network: the process runs with none, its request intersected
  // with the ceiling as every sandbox is (no proxy, no route: nothing is left to enforce).
  if ((p.networkProxy || routed) && ctx.ceilingNetwork === 'restricted') return null;
  // A proxy the client runs on this host: routed only when enforced (otherwise the command's
  // environment already points at it, as with the reference, and `managedNetwork` changes nothing).
  if (p.managedNetwork && routed) {
    if (operator) throw invalidParams(networkMessages.managedNetworkWithOperatorPolicy);
    return loopbackRoutedNetwork(p.managedNetwork);
  }
  let launch = p.networkProxy;
  if (!launch) {
    const networkWanted = sandboxNetwork === undefined || sandboxNetwork === 'enabled';
    if (operator && networkWanted && ctx.ceilingNetwork !== 'restricted') {
      // The operator's policy implies the proxy: a process never gets the network around it.
      launch = {
        proxy: {
          enabled: true,
          mode: operator.mode,
          domains: operator.domains,
          allowLocalBinding: operator.allowLocalBinding,
          enableSocks5: true,
          enableSocks5Udp: true,
        },
        // A prompt rule of the operator's asks the client (its answer within this, or deny).
        ...(operator.protocolRules?.some((r) => r.decision === 'prompt') ? { policyDecisionTimeoutMs: OPERATOR_PROMPT_TIMEOUT_MS } : {}),
      };
      return buildNetwork(launch, processId, ctx, true, true);
    }
    if (p.enforceManagedNetwork === true) throw unenforceable(networkMessages.enforceWithoutProxy);
    return null;
  }
  return buildNetwork(launch, processId, ctx, p.enforceManagedNetwork === true || operator !== undefined);
}

async function buildNetwork(
  launch: NonNullable<StartParams['networkProxy']>,
  processId: string,
  ctx: NetworkLaunchContext,
  enforce: boolean,
  operatorLaunch = false,
): Promise<ProcessNetwork> {
  // Loaded with the first proxied process: a server (and the CLI) that never proxies starts faster.
  const { ManagedProxy } = await import('../network/managed-proxy.js');
  const settings = launch.proxy;
  const session = ctx.session;
  const timeoutMs = launch.policyDecisionTimeoutMs;
  const decider =
    timeoutMs && session
      ? async (request: { protocol: string; host: string; port: number }): Promise<DeciderAnswer> =>
          parseDeciderAnswer(await session.request('network/policyRequest', { processId, request }, timeoutMs + POLICY_DECISION_MARGIN_MS))
      : undefined;
  const onDecision = (event: DecisionEvent): void => {
    ctx.logger?.info(
      {
        network: {
          processId,
          host: event.host,
          port: event.port,
          protocol: event.protocol,
          decision: event.decision,
          source: event.source,
          reason: event.reason,
          method: event.method,
        },
      },
      'network policy decision',
    );
    session?.notifyIfAttached('network/policyDecision', { processId, ...event });
  };
  const proxy = new ManagedProxy({
    policy: {
      mode: settings.mode ?? 'full',
      domains: settings.domains ?? {},
      allowLocalBinding: settings.allowLocalBinding ?? false,
      disabled: !settings.enabled,
      trustedRanges: ctx.trustedRanges ?? [],
      ...(ctx.operatorNetwork ? { ceiling: ctx.operatorNetwork } : {}),
      ...(operatorLaunch ? { operatorLaunch } : {}),
    },
    enableSocks5: settings.enableSocks5 ?? true,
    // Codex sends `enableSocks5Udp: true`; absent means off, as in its config.
    enableSocks5Udp: settings.enableSocks5Udp === true,
    ...(decider ? { decider } : {}),
    onDecision,
    ...(ctx.resolve ? { resolve: ctx.resolve } : {}),
  });
  return proxiedNetwork(proxy, { allowLocalBinding: settings.allowLocalBinding ?? false, enforce });
}
