import { z } from 'zod';
import { struct, u64 } from './validate.js';

/**
 * `networkProxy.proxy` (docs/network.md, "On the wire (Codex clients)"); unknown fields (e.g. `mitm`)
 * are ignored, as the reference does.
 */
export const NetworkProxySettings = struct('NetworkProxySettings', {
  enabled: z.boolean(),
  enableSocks5: z.boolean().nullish(),
  enableSocks5Udp: z.boolean().nullish(),
  allowUpstreamProxy: z.boolean().nullish(),
  dangerouslyAllowAllUnixSockets: z.boolean().nullish(),
  mode: z.enum(['limited', 'full']).nullish(),
  domains: z.record(z.enum(['allow', 'deny'])).nullish(),
  unixSockets: z.unknown().optional(),
  allowLocalBinding: z.boolean().nullish(),
  reviewDomains: z.array(z.string()).nullish(),
  transparentTcp: z.boolean().nullish(),
  credentialMasking: z.boolean().nullish(),
});

/** `process/start.networkProxy`: launch a proxy for this process (RemoteNetworkProxyLaunchConfig). */
export const NetworkProxyLaunch = struct('RemoteNetworkProxyLaunchConfig', {
  proxy: NetworkProxySettings,
  auditMetadata: z.unknown().optional(),
  environmentId: z.string().nullish(),
  executionId: z.string().nullish(),
  policyDecisionTimeoutMs: u64().nullish(),
});
export type NetworkProxyLaunch = z.infer<typeof NetworkProxyLaunch>;

/** `process/start.managedNetwork`: a proxy already running on the executor's loopback. */
export const ManagedNetworkFacts = struct('ManagedNetworkSandboxFacts', {
  loopbackPorts: z.array(z.number().int().min(1).max(65535)),
  allowLocalBinding: z.boolean().nullish(),
  allowUnixSockets: z.array(z.string()).nullish(),
  dangerouslyAllowAllUnixSockets: z.boolean().nullish(),
});
export type ManagedNetworkFacts = z.infer<typeof ManagedNetworkFacts>;

export const networkMessages = {
  mutuallyExclusive: '`managedNetwork` sandbox facts and `networkProxy` launch config are mutually exclusive',
  zeroTimeout: 'network policy decision callback timeout must be nonzero',
  restrictedWithProxy:
    '`networkProxy` needs a sandbox whose network is `enabled` (with `restricted`, the process could not reach its proxy)',
  enforceWithoutProxy:
    '`enforceManagedNetwork` is set but there is nothing to enforce: send `networkProxy` (Cordon launches the proxy) or `managedNetwork` with the proxy variables in `env`',
  managedNetworkWithOperatorPolicy:
    "`managedNetwork` routing to the client's own proxy is refused: this server's operator routes every process's network through Cordon's proxy (send `networkProxy` instead)",
  restrictedWithManagedNetwork:
    '`managedNetwork` with `enforceManagedNetwork` needs a sandbox whose network is `enabled` (`restricted` means no network, not a routed one)',
  mitmUnsupported: 'remote exec-server network proxy does not support MITM, external CAs, credential injection, or MITM hooks',
} as const;
