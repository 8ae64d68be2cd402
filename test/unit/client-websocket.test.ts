import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type WebSocket, WebSocketServer } from 'ws';
import { ClientWebSocket } from '../../src/client/client-websocket.js';

interface Harness {
  url: string;
  next(): Promise<WebSocket>;
  close(): Promise<void>;
}

async function serve(options: { verifyClient?: (info: unknown, cb: (ok: boolean, code?: number) => void) => void } = {}): Promise<Harness> {
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    maxPayload: 256 * 1024 * 1024,
    ...(options.verifyClient ? { verifyClient: options.verifyClient } : {}),
  });
  await new Promise((r) => wss.once('listening', r));
  const waiting: ((ws: WebSocket) => void)[] = [];
  const ready: WebSocket[] = [];
  wss.on('connection', (ws) => {
    const w = waiting.shift();
    if (w) w(ws);
    else ready.push(ws);
  });
  return {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    next: () => new Promise((r) => (ready.length ? r(ready.shift() as WebSocket) : waiting.push(r))),
    close: () =>
      new Promise((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => r());
      }),
  };
}

function connect(url: string, maxMessageBytes = 64 * 1024 * 1024) {
  const messages: Record<string, unknown>[] = [];
  let closed!: (v: [number, string]) => void;
  const onClosed = new Promise<[number, string]>((r) => (closed = r));
  let arrived: (() => void) | undefined;
  const client = ClientWebSocket.connect(url, {
    headers: {},
    maxMessageBytes,
    onMessage: (m) => {
      messages.push(m);
      arrived?.();
    },
    onClose: (code, reason) => closed([code, reason]),
  });
  const waitMessages = async (n: number): Promise<void> => {
    while (messages.length < n) await new Promise<void>((r) => (arrived = r));
  };
  return { client, messages, onClosed, waitMessages };
}

describe('ClientWebSocket', () => {
  let h: Harness;
  before(async () => {
    h = await serve();
  });
  after(() => h.close());

  it('receives fragmented messages, decoding a base64 field, in order', async () => {
    const c = connect(h.url);
    const [client, server] = await Promise.all([c.client, h.next()]);
    const data = randomBytes(1_000_003);
    const text = Buffer.from(JSON.stringify({ id: 1, result: { dataBase64: data.toString('base64') } }));
    // Odd fragment sizes, so base64 groups and the closing quote fall across fragments.
    for (let off = 0, i = 0; off < text.length; i++) {
      const n = [1, 7, 65535, 3, 100_001][i % 5] as number;
      server.send(text.subarray(off, off + n), { binary: false, fin: off + n >= text.length });
      off += n;
    }
    server.send('{"method":"process/exited","params":{"processId":"p","seq":2,"exitCode":0}}');
    await c.waitMessages(2);
    assert.ok(((c.messages[0]?.result as Record<string, unknown> | undefined)?.data as Buffer | undefined)?.equals(data) === true);
    assert.deepEqual(c.messages[1], { method: 'process/exited', params: { processId: 'p', seq: 2, exitCode: 0 } });
    await client.close();
    assert.deepEqual(await c.onClosed, [1000, '']);
  });

  it('sends masked messages, fragmenting large ones, that the server reads whole', async () => {
    const c = connect(h.url);
    const [client, server] = await Promise.all([c.client, h.next()]);
    const got: string[] = [];
    server.on('message', (d) => got.push(d.toString()));
    const big = 'x'.repeat(3 * 1024 * 1024 + 5);
    let sentErr: Error | undefined | null = null;
    client.send('small');
    client.send(big, (err) => (sentErr = err));
    client.send('after');
    while (got.length < 3) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(
      got.map((g) => g.length),
      [5, big.length, 5],
    );
    assert.equal(got[1], big);
    assert.equal(sentErr, undefined);
    await client.close();
  });

  it('answers pings, and reports the close code and reason the server sends', async () => {
    const c = connect(h.url);
    const [, server] = await Promise.all([c.client, h.next()]);
    const pong = new Promise<Buffer>((r) => server.once('pong', r));
    server.ping(Buffer.from('are you there'));
    assert.equal((await pong).toString(), 'are you there');
    server.close(4001, 'bye now');
    assert.deepEqual(await c.onClosed, [4001, 'bye now']);
  });

  it('closes with 1009 on a message above its bound, and 1006 when the connection just drops', async () => {
    const c = connect(h.url, 1000);
    const [client, server] = await Promise.all([c.client, h.next()]);
    const serverSaw = new Promise<number>((r) => server.once('close', (code) => r(code)));
    server.send('y'.repeat(1001));
    assert.equal((await c.onClosed)[0], 1009);
    assert.equal(client.isOpen, false);
    assert.ok([1009, 1006].includes(await serverSaw));
    assert.equal(c.messages.length, 0);

    const d = connect(h.url);
    const [dropped] = await Promise.all([d.client, h.next()]);
    dropped.terminate();
    assert.deepEqual(await d.onClosed, [1006, '']);
    let err: Error | undefined;
    dropped.send('late', (e) => (err = e));
    assert.match(String(err), /not open/);
  });

  it('rejects a refused upgrade with the HTTP status, and a bad URL clearly', async () => {
    const refusing = await serve({ verifyClient: (_info, cb) => cb(false, 401) });
    try {
      await assert.rejects(connect(refusing.url).client, /refused the connection: HTTP 401/);
    } finally {
      await refusing.close();
    }
    await assert.rejects(connect('http://127.0.0.1:1').client, /unsupported URL scheme http:/);
    await assert.rejects(connect('not a url').client, /invalid WebSocket URL/);
  });

  it('does not hang on a server that sends close but never closes the connection', async () => {
    // A bare TCP server that completes the upgrade, sends a close frame, and then keeps the socket open.
    const held: net.Socket[] = [];
    const server = net.createServer({ allowHalfOpen: true }, (socket) => {
      held.push(socket);
      socket.once('data', (request) => {
        const key = /sec-websocket-key: *(\S+)/i.exec(request.toString())?.[1] ?? '';
        const accept = createHash('sha1')
          .update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11')
          .digest('base64');
        socket.write(
          `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
        );
        socket.write(Buffer.from([0x88, 0x02, 0x0f, 0xa1])); // close 4001, no reason
      });
      socket.on('error', () => undefined);
    });
    server.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const c = connect(`ws://127.0.0.1:${(server.address() as net.AddressInfo).port}`);
      await c.client;
      assert.deepEqual(await c.onClosed, [4001, '']);
    } finally {
      for (const s of held) s.destroy();
      server.close();
    }
  });
});
