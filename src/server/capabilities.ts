import { type Capabilities, orderedCapabilities } from '../protocol/capabilities.js';

/**
 * What this server advertises in `environmentInfo.capabilities` (names and meanings:
 * protocol/capabilities.ts, docs/clients.md). A flag is true only when the method or behaviour it
 * announces is implemented and covered by test/capabilities.test.ts: a 0.171 client calls what is
 * advertised, and a call that then fails breaks its work. One line per flag, so turning one on is a
 * one-line change next to its test case.
 */
export const CORDON_CAPABILITIES: Capabilities = orderedCapabilities({
  // process/start `networkProxy`: a per-process proxy, enforced through the sandbox bridge (docs/network.md).
  networkProxyLaunch: true,
  networkProxyReviewDomains: false,
  networkProxyTransparentTcp: false,
  credentialMasking: false,
  credentialMaskingCustomProviders: false,
  capabilityDiscoverySandbox: false,
  fsWatchMissing: true,
  capabilityDiscoveryV2: false,
  environmentConfigRead: true,
  httpHeaderEnvVars: true,
  sandboxedFileStreaming: true,
  fileWriteStreaming: true,
  shellSnapshotV2: false,
  // Linux only: there is no Windows MXC sandbox here.
  windowsMxc: false,
  // With `root: write` bubblewrap gives the process a fresh minimal /dev, not the host's.
  linuxRootWritePreservesDevices: false,
  linuxApprovedRootWritePreservesRestrictions: false,
});
