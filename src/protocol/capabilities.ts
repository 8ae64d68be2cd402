/**
 * The capability flags of `environmentInfo.capabilities` (docs/clients.md, "Capabilities"), in the
 * reference's key order. A flag tells a 0.150+ client that a method or behaviour is there; a client
 * treats an absent flag as false. Which of them Cordon sets is decided in one place:
 * server/capabilities.ts.
 */
export const CAPABILITY_NAMES = [
  'networkProxyLaunch',
  'networkProxyReviewDomains',
  'networkProxyTransparentTcp',
  'credentialMasking',
  'credentialMaskingCustomProviders',
  'capabilityDiscoverySandbox',
  'fsWatchMissing',
  'capabilityDiscoveryV2',
  'environmentConfigRead',
  'httpHeaderEnvVars',
  'sandboxedFileStreaming',
  'fileWriteStreaming',
  'shellSnapshotV2',
  'windowsMxc',
  'linuxRootWritePreservesDevices',
  'linuxApprovedRootWritePreservesRestrictions',
] as const;

export type CapabilityName = (typeof CAPABILITY_NAMES)[number];
export type Capabilities = Readonly<Record<CapabilityName, boolean>>;

/** The flags in wire order (a client may compare texts; the order is the reference's). */
export const orderedCapabilities = (caps: Capabilities): Capabilities =>
  Object.fromEntries(CAPABILITY_NAMES.map((name) => [name, caps[name]])) as Capabilities;
