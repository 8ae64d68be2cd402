import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { EnvTemplate, NetworkRoute, ProcessNetwork } from '../environment/types.js';
import { ErrorCode, RpcError } from '../protocol/index.js';
import { ALL_KEYS, HTTP_KEYS } from './proxy-env.js';

/**
 * `managedNetwork` routing (docs/network.md, "A proxy the client runs"): the client's proxy already
 * listens on this host's loopback, its address is in the proxy variables of the command's
 * environment, and `loopbackPorts` names the ports it may use. The bridge gets one endpoint per
 * distinct proxy address; each variable is rewritten to the endpoint's port inside the namespace,
 * keeping its scheme, credentials and path. Connections are relayed to the host port unjudged: the
 * client's proxy is the policy.
 */

/** The variables rewritten: Codex's set, plus gRPC's (part of Cordon's proxy family). */
export const ROUTED_KEYS: readonly string[] = [...HTTP_KEYS, ...ALL_KEYS];

/** scheme://user:pass@host:port/rest, every part but the host optional. */
const PROXY_URL = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)?([^@/?#]*@)?(\[[^\]/]*\]|[^:/?#@[\]]*)(?::(\d{1,5}))?([/?#].*)?$/;

/** The host the client's proxy listens on, by the spelling in a variable; anything else is refused. */
const LOOPBACK_HOSTS: Record<string, string> = { '127.0.0.1': '127.0.0.1', localhost: '127.0.0.1', '[::1]': '::1' };

const refuse = (message: string): RpcError => new RpcError(ErrorCode.InvalidParams, message, { kind: 'sandboxUnavailable' });

export interface LoopbackRouteFacts {
  loopbackPorts: readonly number[];
}

interface Endpoint {
  name: string;
  host: string;
  port: number;
}

/** The route for a command with this environment, or an RpcError saying why there is none. */
export function loopbackRoute(
  facts: LoopbackRouteFacts,
  env: Readonly<Record<string, string>>,
): { route: NetworkRoute; endpoints: Map<string, Endpoint> } {
  const allowed = new Set(facts.loopbackPorts);
  const endpoints = new Map<string, Endpoint>();
  const templates: Record<string, EnvTemplate> = {};
  for (const key of ROUTED_KEYS) {
    const value = env[key];
    if (value === undefined || value === '') continue;
    const m = PROXY_URL.exec(value);
    const host = m ? LOOPBACK_HOSTS[(m[3] ?? '').toLowerCase()] : undefined;
    if (!m || !host)
      throw refuse(
        `managedNetwork: ${key}=${JSON.stringify(value)} is not a proxy on this host's loopback (127.0.0.1, localhost or [::1] with a port); inside the sandbox it could not be reached`,
      );
    const port = m[4] === undefined ? Number.NaN : Number(m[4]);
    if (!allowed.has(port))
      throw refuse(
        `managedNetwork: ${key}=${JSON.stringify(value)} names ${Number.isNaN(port) ? 'no port' : `port ${port}`}, which is not in loopbackPorts [${[...allowed].join(', ')}]`,
      );
    const id = `${host}:${port}`;
    let endpoint = endpoints.get(id);
    if (!endpoint) {
      endpoint = { name: `loopback-${endpoints.size}`, host, port };
      endpoints.set(id, endpoint);
    }
    templates[key] = [`${(m[1] ?? '').toLowerCase()}${m[2] ?? ''}127.0.0.1:`, { port: endpoint.name }, m[5] ?? ''];
  }
  if (endpoints.size === 0)
    throw refuse(
      `managedNetwork with enforceManagedNetwork needs the proxy's address in the command's environment (${['HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY'].join(', ')}, …): none is set, so the command would have no network at all`,
    );
  const byName = new Map([...endpoints.values()].map((e) => [e.name, e]));
  return { route: { endpoints: [...byName.keys()], env: templates }, endpoints: byName };
}

/** A process whose only way out is the client's own proxy on this host's loopback. */
export function loopbackRoutedNetwork(facts: LoopbackRouteFacts): ProcessNetwork {
  if (facts.loopbackPorts.length === 0)
    throw refuse('managedNetwork.loopbackPorts is empty: with enforceManagedNetwork, name the ports of the proxy the command may use');
  let targets = new Map<string, Endpoint>();
  const live = new Set<Duplex>();
  let closed = false;
  return {
    enforce: true,
    route: (env) => {
      const { route, endpoints } = loopbackRoute(facts, env);
      targets = endpoints;
      return route;
    },
    accept: (name, stream) => {
      const target = targets.get(name);
      if (!target || closed) return void stream.destroy();
      const upstream = net.connect({ host: target.host, port: target.port });
      live.add(stream);
      const drop = (): void => {
        live.delete(stream);
        stream.destroy();
        upstream.destroy();
      };
      upstream.setNoDelay(true);
      upstream.once('error', drop);
      stream.once('error', drop);
      stream.once('close', drop);
      upstream.once('close', drop);
      stream.pipe(upstream);
      upstream.pipe(stream);
    },
    // Not enforced, the reference leaves the environment alone: it already points at the proxy.
    listen: async () => ({}),
    close: () => {
      closed = true;
      for (const s of live) s.destroy();
    },
  };
}
