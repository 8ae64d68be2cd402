import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ManagedProxy } from '../../src/network/managed-proxy.js';
import { eventually } from '../helpers.js';

/** SOCKS5 UDP ASSOCIATE on the proxy's loopback listener, against a UDP echo on 127.0.0.1. */
describe('network: SOCKS5 UDP relay (loopback listener)', () => {
  let echo: dgram.Socket;
  let echoPort = 0;
  let other: dgram.Socket;
  let otherPort = 0;
  let proxy: ManagedProxy;
  let socks = 0;

  before(async () => {
    const bind = async (): Promise<[dgram.Socket, number]> => {
      const s = dgram.createSocket('udp4');
      s.on('message', (m, r) => s.send(Buffer.concat([Buffer.from('pong:'), m]), r.port, r.address));
      await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
      return [s, s.address().port];
    };
    [echo, echoPort] = await bind();
    [other, otherPort] = await bind();
    proxy = new ManagedProxy({
      // Only the echo's port is listed: the other port on the same address is refused.
      policy: { mode: 'full', domains: { [`127.0.0.1:${echoPort}`]: 'allow' }, allowLocalBinding: false },
      enableSocks5: true,
      enableSocks5Udp: true,
    });
    socks = (await proxy.listen()).socks5 as number;
  });
  after(() => {
    proxy?.close();
    echo?.close();
    other?.close();
  });

  const header = (port: number): Buffer => Buffer.from([0, 0, 0, 1, 127, 0, 0, 1, port >> 8, port & 255]);

  it('relays to an allowed destination, drops others and malformed datagrams, and ends with the control connection', async () => {
    const control = net.connect(socks, '127.0.0.1');
    const replies: Buffer[] = [];
    const reader = (n: number): Promise<Buffer> =>
      new Promise((resolve) => {
        const got: Buffer[] = [];
        const on = (d: Buffer): void => {
          got.push(d);
          if (Buffer.concat(got).length >= n) {
            control.off('data', on);
            resolve(Buffer.concat(got));
          }
        };
        control.on('data', on);
      });
    control.write(Buffer.from([5, 1, 0]));
    assert.deepEqual([...(await reader(2))], [5, 0]);
    control.write(Buffer.from([5, 3, 0, 1, 0, 0, 0, 0, 0, 0]));
    const rep = await reader(10);
    assert.equal(rep[1], 0, 'associate accepted');
    const relay = rep.readUInt16BE(8);
    const client = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve));
    const arrived = new Promise<void>((resolve) =>
      client.on('message', (m) => {
        replies.push(m);
        if (m.subarray(10).toString() === 'pong:last') resolve();
      }),
    );
    client.send(Buffer.concat([header(otherPort), Buffer.from('other')]), relay, '127.0.0.1');
    client.send(Buffer.from([0, 0, 1, 1, 127, 0, 0, 1, 0, 80, 0x41]), relay, '127.0.0.1'); // a fragment
    client.send(Buffer.concat([header(echoPort), Buffer.from('first')]), relay, '127.0.0.1');
    client.send(Buffer.concat([header(echoPort), Buffer.from('last')]), relay, '127.0.0.1');
    await arrived;
    assert.deepEqual(
      replies.map((m) => [m.subarray(0, 10).toString('hex'), m.subarray(10).toString()]),
      [
        [header(echoPort).toString('hex'), 'pong:first'],
        [header(echoPort).toString('hex'), 'pong:last'],
      ],
    );
    control.destroy();
    client.close();
    // The relay's port closes with the control connection: a connected socket then sees ICMP port unreachable.
    const probe = dgram.createSocket('udp4');
    let refused = false;
    probe.on('error', (e: NodeJS.ErrnoException) => (refused ||= e.code === 'ECONNREFUSED'));
    await new Promise<void>((resolve) => probe.connect(relay, '127.0.0.1', resolve));
    await eventually(
      () => {
        probe.send(Buffer.concat([header(echoPort), Buffer.from('late')]));
        return refused;
      },
      10_000,
      'the relay port to close',
    );
    probe.close();
    assert.ok(!replies.some((m) => m.subarray(10).toString() === 'pong:late'));
  });
});
