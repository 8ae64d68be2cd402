import net from 'node:net';

/** Opens a TCP connection to an exact address (never a name: the policy checked this address). */
export type Dial = (address: string, port: number) => Promise<net.Socket>;

const CONNECT_TIMEOUT_MS = 10_000;

export const tcpDial: Dial = (address, port) =>
  new Promise((resolve, reject) => {
    if (net.isIP(address) === 0) return reject(new Error(`refusing to dial a name (${address}): only checked addresses are dialled`));
    const socket = net.connect({ host: address, port });
    const timer = setTimeout(() => socket.destroy(new Error('connect timeout')), CONNECT_TIMEOUT_MS);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeListener('error', reject);
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });

/** Tries each checked address in order; the first that answers wins. */
export async function dialFirst(dial: Dial, addresses: readonly string[], port: number): Promise<net.Socket> {
  let last: unknown = new Error('no address to dial');
  for (const a of addresses) {
    try {
      return await dial(a, port);
    } catch (err) {
      last = err;
    }
  }
  throw last;
}
