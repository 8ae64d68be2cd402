import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { ManagedProxy } from '../src/network/managed-proxy.js';
import { LinuxSandbox } from '../src/sandbox/linux-sandbox.js';
import { proxyRoute } from '../src/sandbox/proxy-env.js';

/**
 * `npm run bench:proxy`: CONNECT tunnel throughput and the added latency of a new connection,
 * direct on loopback vs through the managed proxy (its loopback listener) vs from inside a
 * sandbox (bridge + proxy). The target is a sink/echo server on 127.0.0.1.
 */
const BYTES = 256 * 1024 * 1024;
const CONNECTIONS = 200;

// Runs on the host or inside the sandbox: `node -e CLIENT -- <mode> <target port> [proxy port]`.
const CLIENT = String.raw`
const net = require('net');
const [mode, target, proxy] = process.argv.slice(1);
const BYTES = ${BYTES}, N = ${CONNECTIONS};
function open() {
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(proxy || target), '127.0.0.1', () => {
      if (!proxy) return resolve(s);
      s.write('CONNECT 127.0.0.1:' + target + ' HTTP/1.1\r\nHost: 127.0.0.1:' + target + '\r\n\r\n');
      let head = '';
      const onData = (d) => { head += d; if (head.includes('\r\n\r\n')) { s.removeListener('data', onData); if (!/^HTTP\/1\.1 200/.test(head)) reject(new Error(head)); else resolve(s); } };
      s.on('data', onData);
    });
    s.setNoDelay(true);
    s.on('error', reject);
  });
}
(async () => {
  if (mode === 'tput') {
    const s = await open();
    const chunk = Buffer.alloc(64 * 1024, 1);
    const t0 = process.hrtime.bigint();
    s.write('T');
    let sent = 0;
    const pump = () => { while (sent < BYTES) { sent += chunk.length; if (!s.write(chunk)) return s.once('drain', pump); } };
    s.once('data', () => { const ms = Number(process.hrtime.bigint() - t0) / 1e6; console.log(JSON.stringify({ mbps: (BYTES / 1048576) / (ms / 1000) })); s.destroy(); });
    pump();
  } else {
    const times = [];
    for (let i = 0; i < N; i++) {
      const t0 = process.hrtime.bigint();
      const s = await open();
      await new Promise((r) => { s.once('data', r); s.write('L'); });
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      s.destroy();
    }
    times.sort((a, b) => a - b);
    console.log(JSON.stringify({ medianMs: times[Math.floor(N / 2)], p90Ms: times[Math.floor(N * 0.9)] }));
  }
})().catch((e) => { console.error(e.message); process.exit(1); });
`;

const sink = net.createServer((s) => {
  s.setNoDelay(true);
  let mode = '';
  let got = 0;
  s.on('data', (d) => {
    if (!mode) {
      mode = String.fromCharCode(d[0] as number);
      d = d.subarray(1);
      if (mode === 'L') return void s.write('l');
    }
    got += d.length;
    if (mode === 'T' && got >= BYTES) s.write('D');
  });
  s.on('error', () => s.destroy());
});
await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
const target = (sink.address() as net.AddressInfo).port;
const proxy = new ManagedProxy({
  policy: { mode: 'full', domains: { '127.0.0.1': 'allow' }, allowLocalBinding: false },
  enableSocks5: false,
});
const ports = await proxy.listen();
const sandbox = new LinuxSandbox({ searchPath: process.env.PATH, tmpdir: process.env.TMPDIR, maxGlobMatches: 100 });

async function runClient(args: string[], sandboxed: boolean): Promise<Record<string, number>> {
  let file = process.execPath;
  let argv = ['-e', CLIENT, '--', ...args];
  let env: NodeJS.ProcessEnv = process.env;
  let cleanup = async (): Promise<void> => undefined;
  if (sandboxed) {
    // Inside, the proxy port is the bridge's: the script reads it from HTTP_PROXY.
    const wrapped = await sandbox.wrap({
      profile: { enforcement: 'managed', network: 'enabled', fileSystem: { kind: 'unrestricted' } },
      policyCwd: '/',
      commandCwd: '/',
      command: [
        '/bin/sh',
        '-c',
        `exec "$0" -e "$1" -- "$2" "$3" "\${HTTP_PROXY##*:}"`,
        process.execPath,
        CLIENT,
        args[0] as string,
        args[1] as string,
      ],
      tty: false,
      network: {
        route: proxyRoute({ enableSocks5: false, allowLocalBinding: false }),
        accept: (e, s) => (e === 'http' ? proxy.accept(e, s) : s.destroy()),
      },
    });
    file = wrapped.file;
    argv = wrapped.args;
    env = { ...process.env, ...wrapped.env };
    cleanup = wrapped.cleanup;
  }
  const child = spawn(file, argv, { env, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  await new Promise((r) => child.on('exit', r));
  await cleanup();
  return JSON.parse(out.trim().split('\n').pop() as string) as Record<string, number>;
}

const canSandbox = existsSync('/usr/bin/bwrap') || existsSync('/usr/local/bin/bwrap');
const rows: string[] = [];
try {
  const direct = await runClient(['tput', String(target)], false);
  const viaProxy = await runClient(['tput', String(target), String(ports.http)], false);
  const viaBridge = canSandbox ? await runClient(['tput', String(target)], true) : undefined;
  rows.push(
    `CONNECT tunnel throughput (256 MiB, one connection): direct ${direct.mbps?.toFixed(0)} MiB/s; through the proxy ${viaProxy.mbps?.toFixed(0)} MiB/s; from a sandbox (bridge + proxy) ${viaBridge?.mbps?.toFixed(0) ?? 'n/a'} MiB/s`,
  );
  const lDirect = await runClient(['lat', String(target)], false);
  const lProxy = await runClient(['lat', String(target), String(ports.http)], false);
  const lBridge = canSandbox ? await runClient(['lat', String(target)], true) : undefined;
  const f = (r: Record<string, number> | undefined): string => (r ? `${r.medianMs?.toFixed(3)} ms (p90 ${r.p90Ms?.toFixed(3)})` : 'n/a');
  rows.push(
    `new connection + one round trip (median of ${CONNECTIONS}): direct ${f(lDirect)}; through the proxy ${f(lProxy)}; from a sandbox ${f(lBridge)}`,
  );
  // docs/performance.md's proxy table.
  const mbps = (r: Record<string, number> | undefined): string => (r ? `${r.mbps?.toFixed(0)} MiB/s` : 'n/a');
  const ms = (r: Record<string, number> | undefined): string => (r ? `${r.medianMs?.toFixed(2)} ms (${r.p90Ms?.toFixed(1)})` : 'n/a');
  rows.push(
    '',
    `| direct loopback | ${mbps(direct)} | ${ms(lDirect)} |`,
    `| through the proxy | ${mbps(viaProxy)} | ${ms(lProxy)} |`,
    `| from a sandbox | ${mbps(viaBridge)} | ${ms(lBridge)} |`,
  );
} finally {
  proxy.close();
  sink.close();
  sandbox.dispose();
}
for (const r of rows) console.log(r);
