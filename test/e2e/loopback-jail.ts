import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { sourcePath } from '../built-cli.js';

/**
 * Runs the CLI in a network namespace of its own with only a loopback interface
 * (`unshare -rn`), so it cannot reach anything but the test's servers even by accident (an update
 * check, telemetry, a plugin sync). The servers stay outside; `fixtures/netns-runner.mjs` relays
 * each of their 127.0.0.1 ports into the namespace through a Unix socket.
 */

const RUNNER = sourcePath('test', 'e2e', 'fixtures', 'netns-runner.mjs');

/** Whether this machine lets an unprivileged process create a user+network namespace. */
export function loopbackJailAvailable(): boolean {
  const probe = spawnSync('unshare', ['-rn', '--', 'ip', 'link', 'set', 'lo', 'up'], { stdio: 'ignore', timeout: 10_000 });
  return probe.status === 0;
}

/** Relays connections on a Unix socket to 127.0.0.1:port; resolves to a closer. */
export async function exposeOnUnixSocket(port: number, socketPath: string): Promise<() => Promise<void>> {
  const conns = new Set<net.Socket>();
  const server = net.createServer((conn) => {
    const upstream = net.connect(port, '127.0.0.1');
    conns.add(conn);
    conns.add(upstream);
    conn.pipe(upstream);
    upstream.pipe(conn);
    const end = (): void => {
      conn.destroy();
      upstream.destroy();
      conns.delete(conn);
      conns.delete(upstream);
    };
    conn.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, resolve);
  });
  return () =>
    new Promise<void>((resolve) => {
      for (const c of conns) c.destroy();
      server.close(() => resolve());
    });
}

/** argv that runs `command args` inside the jail, with `forwards` relayed in. */
export function jailedArgv(forwards: { port: number; socket: string }[], command: string, args: string[]): string[] {
  const spec = JSON.stringify({ forwards, command, args });
  return ['unshare', '-rn', '--', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"', process.execPath, RUNNER, spec];
}
