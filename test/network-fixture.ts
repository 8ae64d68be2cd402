import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';

/**
 * Upstream servers in a network namespace the test creates: a veth pair with addresses picked
 * here (10.213.x.y/30 and an fd00:c0d::/64), reachable from this host only. Name resolution is
 * the test's own (`resolve`): `*.test` names map to the namespace's address.
 */
export interface Upstream {
  ns: string;
  /** The namespace side's addresses. */
  v4: string;
  v6: string;
  /** The host side's (the veth end in the root namespace). */
  hostV4: string;
  /** Trusted ranges covering the namespace (they are private addresses). */
  ranges: string[];
  httpPort: number;
  udpPort: number;
  resolve(host: string): Promise<string[]>;
  stop(): Promise<void>;
}

export const canUseNetns = (): boolean =>
  (process.getuid?.() === 0 && existsSync('/usr/sbin/ip')) || (existsSync('/usr/bin/ip') && process.getuid?.() === 0);

const ip = (...args: string[]): void => void execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

const SERVER = String.raw`
const http = require('http'), dgram = require('dgram'), fs = require('fs'), path = require('path');
const root = process.argv[1];
const server = http.createServer((req, res) => {
  if (req.url.startsWith('/repo.git/')) {
    const file = path.join(root, path.normalize(req.url.split('?')[0]).replace(/^\/+/, ''));
    if (!file.startsWith(root + '/')) { res.writeHead(403); return res.end(); }
    return fs.readFile(file, (err, data) => { if (err) { res.writeHead(404); return res.end('not found'); } res.writeHead(200); res.end(data); });
  }
  let body = '';
  req.on('data', (d) => (body += d));
  req.on('end', () => res.end('upstream ' + req.method + ' ' + req.url + ' host=' + req.headers.host + (body ? ' body=' + body : '') + '\n'));
});
server.listen(8080, '::', () => {
  const udp = dgram.createSocket('udp4');
  udp.on('message', (m, r) => udp.send(Buffer.from('pong:' + m), r.port, r.address));
  udp.bind(5353, () => process.stdout.write('ready\n'));
});
`;

export async function startUpstream(fileRoot: string): Promise<Upstream> {
  const tag = randomBytes(3).toString('hex');
  const ns = `cordon-t-${tag}`;
  const hostIf = `ch${tag}`;
  const nsIf = `cn${tag}`;
  const third = randomBytes(1)[0] as number;
  const fourth = (randomBytes(1)[0] as number) & 0xfc;
  const hostV4 = `10.213.${third}.${fourth + 1}`;
  const v4 = `10.213.${third}.${fourth + 2}`;
  const prefix6 = `fd00:c0d:${tag.slice(0, 4)}`;
  const v6 = `${prefix6}::2`;
  let server: ChildProcess | undefined;
  const stop = async (): Promise<void> => {
    if (server && server.exitCode === null) {
      server.kill('SIGKILL');
      await new Promise((r) => server?.once('exit', r));
    }
    try {
      ip('link', 'del', hostIf);
    } catch {
      // gone with the namespace
    }
    try {
      ip('netns', 'del', ns);
    } catch {
      // never created
    }
  };
  try {
    ip('netns', 'add', ns);
    ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf);
    ip('link', 'set', nsIf, 'netns', ns);
    ip('addr', 'add', `${hostV4}/30`, 'dev', hostIf);
    ip('-6', 'addr', 'add', `${prefix6}::1/64`, 'dev', hostIf, 'nodad');
    ip('link', 'set', hostIf, 'up');
    ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
    ip('netns', 'exec', ns, 'ip', 'addr', 'add', `${v4}/30`, 'dev', nsIf);
    ip('netns', 'exec', ns, 'ip', '-6', 'addr', 'add', `${v6}/64`, 'dev', nsIf, 'nodad');
    ip('netns', 'exec', ns, 'ip', 'link', 'set', nsIf, 'up');
    server = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', SERVER, '--', fileRoot], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      server?.stdout?.on('data', (d: Buffer) => String(d).includes('ready') && resolve());
      server?.once('exit', (code) => reject(new Error(`upstream server exited (${code})`)));
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    ns,
    v4,
    v6,
    hostV4,
    ranges: [`10.213.${third}.${fourth}/30`, `${prefix6}::/64`],
    httpPort: 8080,
    udpPort: 5353,
    resolve: async (host) => {
      if (host === 'rebind.test') return [v4]; // the proxy asks once; the dial uses this answer
      if (host === 'v6.test') return [v6];
      if (host === 'loop.test') return ['127.0.0.1'];
      if (host === 'meta.test') return ['169.254.169.254'];
      if (host.endsWith('.test')) return [v4];
      throw new Error(`ENOTFOUND ${host}`);
    },
    stop,
  };
}
