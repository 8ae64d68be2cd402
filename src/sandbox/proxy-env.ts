import type { Duplex } from 'node:stream';
import type { EnvTemplate, NetworkRoute, ProcessNetwork, ProxyEndpointName } from '../environment/types.js';

/**
 * The proxy variables a proxied child gets (docs/network.md, "What the process sees"), overriding
 * anything it was given.
 */

/** Codex's HTTP proxy family (its routing rewrites these and ALL_KEYS), plus gRPC's. */
export const HTTP_KEYS = [
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
export const ALL_KEYS = ['ALL_PROXY', 'all_proxy', 'FTP_PROXY', 'ftp_proxy'];
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

/** Every managed variable, given how to spell the HTTP URL, the ALL_PROXY URL and a literal. */
function managedVariables<V>(http: V, all: V, literal: (s: string) => V, allowLocalBinding: boolean): Record<string, V> {
  // Empty NO_PROXY: inside the namespace only the proxy is reachable, so everything, localhost
  // included, must go through it. With local binding, only loopback names bypass it (the private
  // ranges Codex lists here are unreachable from the namespace anyway).
  const noProxy = literal(allowLocalBinding ? 'localhost,127.0.0.1,::1' : '');
  const env: Record<string, V> = {};
  for (const k of HTTP_KEYS) env[k] = http;
  for (const k of ALL_KEYS) env[k] = all;
  for (const k of NO_PROXY_KEYS) env[k] = noProxy;
  env.CODEX_NETWORK_PROXY_ACTIVE = literal('1');
  env.CODEX_NETWORK_ALLOW_LOCAL_BINDING = literal(allowLocalBinding ? '1' : '0');
  env.ELECTRON_GET_USE_PROXY = literal('true');
  env.NODE_USE_ENV_PROXY = literal('1');
  return env;
}

export function proxyEnv(o: ProxyEnvOptions): Record<string, string> {
  const host = o.host ?? '127.0.0.1';
  const httpUrl = `http://${host}:${o.httpPort}`;
  const allUrl = o.socksPort !== undefined ? `socks5h://${host}:${o.socksPort}` : httpUrl;
  return managedVariables(httpUrl, allUrl, (s) => s, o.allowLocalBinding);
}

/** The route to Cordon's own proxy: its HTTP (and SOCKS5) endpoint, and every managed variable. */
export function proxyRoute(o: { enableSocks5: boolean; allowLocalBinding: boolean }): NetworkRoute {
  const http: EnvTemplate = ['http://127.0.0.1:', { port: 'http' }];
  const all: EnvTemplate = o.enableSocks5 ? ['socks5h://127.0.0.1:', { port: 'socks5' }] : http;
  return {
    endpoints: o.enableSocks5 ? ['http', 'socks5'] : ['http'],
    env: managedVariables(http, all, (s) => [s], o.allowLocalBinding),
  };
}

/** What a process's network needs of Cordon's proxy (ManagedProxy, loaded lazily by its users). */
export interface ProxyLike {
  readonly enableSocks5: boolean;
  accept(endpoint: ProxyEndpointName, stream: Duplex): void;
  listen(): Promise<{ http: number; socks5?: number }>;
  close(): void;
}

/** A process's network through Cordon's own proxy. */
export function proxiedNetwork(proxy: ProxyLike, o: { allowLocalBinding: boolean; enforce: boolean }): ProcessNetwork {
  const route = proxyRoute({ enableSocks5: proxy.enableSocks5, allowLocalBinding: o.allowLocalBinding });
  return {
    enforce: o.enforce,
    route: () => route,
    accept: (endpoint, stream) => (endpoint === 'http' || endpoint === 'socks5' ? proxy.accept(endpoint, stream) : void stream.destroy()),
    listen: async () => {
      const ports = await proxy.listen();
      return proxyEnv({ httpPort: ports.http, socksPort: ports.socks5, allowLocalBinding: o.allowLocalBinding });
    },
    close: () => proxy.close(),
  };
}
