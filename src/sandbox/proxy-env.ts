/**
 * The proxy variables a proxied child gets (docs/network.md, "What the process sees"), overriding
 * anything it was given.
 */

const HTTP_KEYS = [
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'http_proxy',
  'https_proxy',
  'YARN_HTTP_PROXY',
  'YARN_HTTPS_PROXY',
  'npm_config_http_proxy',
  'npm_config_https_proxy',
  'npm_config_proxy',
  'NPM_CONFIG_HTTP_PROXY',
  'NPM_CONFIG_HTTPS_PROXY',
  'NPM_CONFIG_PROXY',
  'BUNDLE_HTTP_PROXY',
  'BUNDLE_HTTPS_PROXY',
  'PIP_PROXY',
  'DOCKER_HTTP_PROXY',
  'DOCKER_HTTPS_PROXY',
  'WS_PROXY',
  'WSS_PROXY',
  'ws_proxy',
  'wss_proxy',
  // not in Codex's set, same value (gRPC ignores SOCKS)
  'GRPC_PROXY',
  'grpc_proxy',
];
const ALL_KEYS = ['ALL_PROXY', 'all_proxy', 'FTP_PROXY', 'ftp_proxy'];
/** YARN_NO_PROXY is Cordon's addition (Codex leaves it alone, so a preset value survived). */
const NO_PROXY_KEYS = ['NO_PROXY', 'no_proxy', 'npm_config_noproxy', 'NPM_CONFIG_NOPROXY', 'BUNDLE_NO_PROXY', 'YARN_NO_PROXY'];

/** Every key a proxied child's environment has set by Cordon (and that leaving the proxy removes). */
export const MANAGED_PROXY_ENV_KEYS = [
  ...HTTP_KEYS,
  ...ALL_KEYS,
  ...NO_PROXY_KEYS,
  'CODEX_NETWORK_PROXY_ACTIVE',
  'CODEX_NETWORK_ALLOW_LOCAL_BINDING',
  'ELECTRON_GET_USE_PROXY',
  'NODE_USE_ENV_PROXY',
];

export interface ProxyEnvOptions {
  httpPort: number | string;
  socksPort: number | string | undefined;
  allowLocalBinding: boolean;
  host?: string;
}

export function proxyEnv(o: ProxyEnvOptions): Record<string, string> {
  const host = o.host ?? '127.0.0.1';
  const httpUrl = `http://${host}:${o.httpPort}`;
  const allUrl = o.socksPort !== undefined ? `socks5h://${host}:${o.socksPort}` : httpUrl;
  // Empty NO_PROXY: inside the namespace only the proxy is reachable, so everything, localhost
  // included, must go through it. With local binding, only loopback names bypass it (the private
  // ranges Codex lists here are unreachable from the namespace anyway).
  const noProxy = o.allowLocalBinding ? 'localhost,127.0.0.1,::1' : '';
  const env: Record<string, string> = {};
  for (const k of HTTP_KEYS) env[k] = httpUrl;
  for (const k of ALL_KEYS) env[k] = allUrl;
  for (const k of NO_PROXY_KEYS) env[k] = noProxy;
  env.CODEX_NETWORK_PROXY_ACTIVE = '1';
  env.CODEX_NETWORK_ALLOW_LOCAL_BINDING = o.allowLocalBinding ? '1' : '0';
  env.ELECTRON_GET_USE_PROXY = 'true';
  env.NODE_USE_ENV_PROXY = '1';
  return env;
}
