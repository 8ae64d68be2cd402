import net from 'node:net';
import type { Duplex } from 'node:stream';
import { type Dial, tcpDial } from './dial.js';
import { HttpProxy } from './http-proxy.js';
import { NetworkPolicy, type NetworkPolicyConfig, type NetworkPolicyHooks } from './policy.js';
import { serveSocks5 } from './socks5.js';
import { loopbackDatagramPort, type OpenDatagramPort } from './socks5-udp.js';

export type ProxyEndpoint = 'http' | 'socks5';

export interface ManagedProxyOptions extends NetworkPolicyHooks {
  policy: NetworkPolicyConfig;
  enableSocks5: boolean;
  /** SOCKS5 UDP ASSOCIATE (else answered 07): for streams that can open a datagram port (the bridge's, loopback sockets). */
  enableSocks5Udp?: boolean;
  dial?: Dial;
}

/** How a client of this stream is reached over UDP: the bridge opens a port in the sandbox; a loopback client gets one on the host. */
function datagramPortOf(stream: Duplex): OpenDatagramPort | undefined {
  const bridged = stream as Duplex & { openDatagramPort?: OpenDatagramPort };
  if (typeof bridged.openDatagramPort === 'function') return () => (bridged.openDatagramPort as OpenDatagramPort)();
  return stream instanceof net.Socket ? loopbackDatagramPort : undefined;
}

/**
 * One proxy per process: its policy, an HTTP endpoint and (optionally) a SOCKS5 endpoint. A
 * sandboxed process reaches it through the bridge (`accept`), and needs no host listener at all;
 * `listen` opens loopback TCP listeners for unsandboxed use and benchmarks.
 */
export class ManagedProxy {
  readonly policy: NetworkPolicy;
  private readonly http: HttpProxy;
  private readonly dial: Dial;
  private readonly live = new Set<Duplex>();
  private readonly listeners: net.Server[] = [];
  private closed = false;

  constructor(readonly options: ManagedProxyOptions) {
    this.policy = new NetworkPolicy(options.policy, options);
    this.dial = options.dial ?? tcpDial;
    this.http = new HttpProxy({ policy: this.policy, dial: this.dial });
  }

  get enableSocks5(): boolean {
    return this.options.enableSocks5;
  }

  accept(endpoint: ProxyEndpoint, stream: Duplex): void {
    if (this.closed || (endpoint === 'socks5' && !this.options.enableSocks5)) return void stream.destroy();
    this.live.add(stream);
    stream.once('close', () => this.live.delete(stream));
    if (endpoint === 'http') this.http.accept(stream);
    else void serveSocks5(stream, this.policy, this.dial, this.options.enableSocks5Udp ? datagramPortOf(stream) : undefined);
  }

  /** Loopback listeners (ephemeral ports) for a process that is not sandboxed. */
  async listen(host = '127.0.0.1'): Promise<{ http: number; socks5?: number }> {
    const open = (endpoint: ProxyEndpoint): Promise<number> =>
      new Promise((resolve, reject) => {
        const server = net.createServer({ noDelay: true }, (socket) => this.accept(endpoint, socket));
        server.once('error', reject);
        server.listen(0, host, () => resolve((server.address() as net.AddressInfo).port));
        this.listeners.push(server);
      });
    const http = await open('http');
    return this.options.enableSocks5 ? { http, socks5: await open('socks5') } : { http };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const l of this.listeners) l.close();
    this.http.close();
    for (const s of this.live) s.destroy();
  }
}
