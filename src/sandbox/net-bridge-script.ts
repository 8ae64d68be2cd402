/**
 * The bridge that runs first inside a proxied sandbox (plain CommonJS, run with `node -e`, so it
 * needs no file in the sandbox). It inherits fd 4, a TCP connection to the host that Cordon opened
 * and authenticated before bubblewrap started; inside the network namespace it listens on
 * 127.0.0.1:0 for each proxy endpoint, relays every accepted connection over fd 4 (a small
 * multiplexing protocol with per-stream credit, see net-bridge.ts), and runs the command with the
 * proxy variables pointing at its listeners. The command gets neither fd 4 nor any way to open a
 * socket of its own outside the namespace (seccomp allows only AF_INET/AF_INET6 there).
 *
 * argv: <config json> <command...>; config: {endpoints: [name...], env: {KEY: [part...]}} where a
 * part is literal text or {port: name}, the port of that endpoint's listener.
 */
export const BRIDGE_SOURCE = String.raw`'use strict';
const net = require('net');
const dgram = require('dgram');
const { spawn } = require('child_process');
const cfg = JSON.parse(process.argv[1]);
const command = process.argv.slice(2);
const WINDOW = 2 * 1024 * 1024;
const T = { OPEN: 1, DATA: 2, END: 3, RESET: 4, ACK: 5, UDP_OPEN: 6, UDP_BOUND: 7, DGRAM: 8 };
const DGRAM_BACKLOG = 4 * 1024 * 1024;
const mux = new net.Socket({ fd: 4, readable: true, writable: true });
mux.setNoDelay(true);
const streams = new Map();
let nextId = 1;
const frame = (type, id, payload) => {
  const h = Buffer.allocUnsafe(9);
  h.writeUInt8(type, 0); h.writeUInt32BE(id, 1); h.writeUInt32BE(payload ? payload.length : 0, 5);
  mux.write(payload && payload.length ? Buffer.concat([h, payload]) : h);
};
const u32 = (n) => { const b = Buffer.allocUnsafe(4); b.writeUInt32BE(n, 0); return b; };
function relay(kind, sock) {
  const id = nextId++;
  const s = { sock, credit: WINDOW, ended: false, gotEnd: false };
  streams.set(id, s);
  frame(T.OPEN, id, Buffer.from([kind]));
  sock.setNoDelay(true);
  sock.on('data', (d) => {
    for (let o = 0; o < d.length; o += 65536) frame(T.DATA, id, d.subarray(o, o + 65536));
    s.credit -= d.length;
    if (s.credit <= 0) sock.pause();
  });
  sock.on('end', () => { s.ended = true; frame(T.END, id); });
  sock.on('error', () => sock.destroy());
  sock.on('close', () => { if (!(s.ended && s.gotEnd) && streams.has(id)) frame(T.RESET, id); streams.delete(id); if (s.udp) s.udp.close(); });
}
let buf = Buffer.alloc(0);
mux.on('data', (d) => {
  buf = buf.length ? Buffer.concat([buf, d]) : d;
  while (buf.length >= 9) {
    const len = buf.readUInt32BE(5);
    if (buf.length < 9 + len) break;
    const type = buf[0], id = buf.readUInt32BE(1), p = buf.subarray(9, 9 + len);
    buf = buf.subarray(9 + len);
    const s = streams.get(id);
    if (!s) continue;
    if (type === T.UDP_OPEN && !s.udp) {
      // A SOCKS5 UDP association: a port in the namespace for the command's datagrams, carried over fd 4.
      const u = dgram.createSocket('udp4');
      s.udp = u;
      u.on('error', () => {});
      u.on('message', (m, r) => { s.peer = r; if (mux.writableLength < DGRAM_BACKLOG) frame(T.DGRAM, id, m); });
      u.bind(0, '127.0.0.1', () => { const b = Buffer.allocUnsafe(2); b.writeUInt16BE(u.address().port, 0); frame(T.UDP_BOUND, id, b); });
    }
    else if (type === T.DGRAM) { if (s.udp && s.peer) s.udp.send(Buffer.from(p), s.peer.port, s.peer.address); }
    else if (type === T.DATA) { const n = p.length; s.sock.write(Buffer.from(p), () => { if (streams.has(id)) frame(T.ACK, id, u32(n)); }); }
    else if (type === T.ACK) { s.credit += p.readUInt32BE(0); if (s.credit > 0) s.sock.resume(); }
    else if (type === T.END) { s.gotEnd = true; s.sock.end(); }
    else if (type === T.RESET) { streams.delete(id); s.sock.destroy(); if (s.udp) s.udp.close(); }
  }
});
const dropAll = () => { for (const s of streams.values()) s.sock.destroy(); streams.clear(); };
mux.on('error', dropAll);
mux.on('close', dropAll);
const ports = {};
let pending = cfg.endpoints.length;
cfg.endpoints.forEach((name, kind) => {
  const server = net.createServer((sock) => relay(kind, sock));
  server.listen(0, '127.0.0.1', () => { ports[name] = server.address().port; if (--pending === 0) run(); });
  server.on('error', (e) => { process.stderr.write('cordon network bridge: ' + e.message + '\n'); process.exit(125); });
});
function run() {
  const env = Object.assign({}, process.env);
  for (const k of Object.keys(cfg.env)) env[k] = cfg.env[k].map((p) => (typeof p === 'string' ? p : String(ports[p.port]))).join('');
  const child = spawn('/bin/sh', ['-c', 'exec "$@" 4>&-', 'sh'].concat(command), { stdio: 'inherit', env });
  for (const sig of ['SIGINT', 'SIGQUIT', 'SIGTSTP']) process.on(sig, () => {});
  for (const sig of ['SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('error', (e) => { process.stderr.write('cordon network bridge: ' + e.message + '\n'); process.exit(127); });
  child.on('exit', (code, signal) => {
    if (signal) { process.removeAllListeners(signal); process.kill(process.pid, signal); setTimeout(() => process.exit(128), 100); }
    else process.exit(code === null ? 1 : code);
  });
}
`;
