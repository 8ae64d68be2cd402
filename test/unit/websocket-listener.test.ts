import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import type { ServerTransport } from '../../src/server/transport.js';
import { WebSocketListener } from '../../src/server/websocket-listener.js';

interface Frame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

/** A bare RFC 6455 client end: sends masked text frames, parses the server's frames as they are on the wire. */
class FrameClient {
  private buffered = Buffer.alloc(0);
  private readonly frames: Frame[] = [];
  private waiter: (() => void) | undefined;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      this.parse();
    });
  }

  static async connect(url: string): Promise<FrameClient> {
    const { hostname, port } = new URL(url);
    const socket = net.connect(Number(port), hostname);
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(
      `GET / HTTP/1.1\r\nHost: ${hostname}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    const head = await new Promise<Buffer>((resolve) => {
      let got = Buffer.alloc(0);
      const onData = (d: Buffer): void => {
        got = Buffer.concat([got, d]);
        const end = got.indexOf('\r\n\r\n');
        if (end === -1) return;
        socket.off('data', onData);
        resolve(got);
      };
      socket.on('data', onData);
    });
    assert.match(head.toString('latin1'), /^HTTP\/1\.1 101/);
    const client = new FrameClient(socket);
    const rest = head.subarray(head.indexOf('\r\n\r\n') + 4);
    if (rest.length > 0) socket.emit('data', rest);
    return client;
  }

  send(opcode: number, text: string): void {
    const payload = Buffer.from(text);
    assert.ok(payload.length < 126);
    const mask = randomBytes(4);
    const masked = Buffer.from(payload.map((b, i) => b ^ (mask[i & 3] as number)));
    this.socket.write(Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length]), mask, masked]));
  }

  /** The next `n` frames, in order. */
  async next(n: number): Promise<Frame[]> {
    while (this.frames.length < n) await new Promise<void>((resolve) => (this.waiter = resolve));
    return this.frames.splice(0, n);
  }

  close(): void {
    this.socket.destroy();
  }

  private parse(): void {
    for (;;) {
      const b = this.buffered;
      if (b.length < 2) return;
      assert.equal((b[1] as number) & 0x80, 0, 'server frames are not masked');
      let length = (b[1] as number) & 0x7f;
      let at = 2;
      if (length === 126) {
        if (b.length < 4) return;
        length = b.readUInt16BE(2);
        at = 4;
      } else if (length === 127) {
        if (b.length < 10) return;
        length = Number(b.readBigUInt64BE(2));
        at = 10;
      }
      if (b.length < at + length) return;
      this.frames.push({
        fin: ((b[0] as number) & 0x80) !== 0,
        opcode: (b[0] as number) & 0x0f,
        payload: Buffer.from(b.subarray(at, at + length)),
      });
      this.buffered = b.subarray(at + length);
      this.waiter?.();
    }
  }
}

describe('WebSocketListener framing', () => {
  const big = 'x'.repeat(70_000);
  const medium = Buffer.from('y'.repeat(20_000));
  let listener: WebSocketListener;
  let url: string;

  before(async () => {
    listener = new WebSocketListener({
      host: '127.0.0.1',
      port: 0,
      token: undefined,
      maxFrameBytes: 1024 * 1024,
      maxPendingPongs: 4096,
      maxMessageBytes: 4 * 1024 * 1024,
      logger: pino({ enabled: false }),
      accept: (transport: ServerTransport) => ({
        message: (data) => {
          const text = data.toString();
          const done = (): void => undefined;
          if (text === 'small') transport.send('{"id":1}', done);
          else if (text === 'sizes') {
            transport.send(big, done);
            transport.send(medium, done);
            transport.send('é', done);
          } else if (text === 'parts') {
            transport.sendPart(Buffer.from('{"a":'), false, done);
            transport.sendPart(Buffer.from('y'.repeat(20_000)), false, done);
            transport.sendPart(Buffer.from('1}'), true, done);
            transport.send('after', done);
          } else if (text === 'corked') {
            transport.cork();
            transport.send('one', done);
            transport.send('two', done);
            transport.uncork();
          }
        },
        close: () => undefined,
      }),
    });
    url = await listener.listen();
  });

  after(() => listener.close());

  it('sends each message as one unmasked text frame with the right length encoding', async () => {
    const c = await FrameClient.connect(url);
    c.send(0x1, 'small');
    assert.deepEqual(await c.next(1), [{ fin: true, opcode: 1, payload: Buffer.from('{"id":1}') }]);
    c.send(0x1, 'sizes');
    const [b, m, e] = await c.next(3);
    assert.deepEqual({ ...b, payload: b?.payload.toString() }, { fin: true, opcode: 1, payload: big });
    assert.deepEqual(m, { fin: true, opcode: 1, payload: medium });
    // The length counts UTF-8 bytes, not UTF-16 units.
    assert.deepEqual(e, { fin: true, opcode: 1, payload: Buffer.from('é') });
    c.send(0x1, 'corked');
    assert.deepEqual(
      (await c.next(2)).map((f) => f.payload.toString()),
      ['one', 'two'],
    );
    c.close();
  });

  it('sends parts as a text frame, continuations and a final frame, and a ping is answered between them', async () => {
    const c = await FrameClient.connect(url);
    c.send(0x9, 'hi');
    assert.deepEqual(await c.next(1), [{ fin: true, opcode: 0xa, payload: Buffer.from('hi') }]);
    c.send(0x1, 'parts');
    const frames = await c.next(4);
    assert.deepEqual(
      frames.map((f) => [f.fin, f.opcode, f.payload.length]),
      [
        [false, 1, 5],
        [false, 0, 20_000],
        [true, 0, 2],
        [true, 1, 5],
      ],
    );
    assert.equal(Buffer.concat(frames.slice(0, 3).map((f) => f.payload)).toString(), `{"a":${'y'.repeat(20_000)}1}`);
    c.close();
  });
});
