import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OutputLog } from '../../src/local/output-log.js';
import { buildChildEnv, wildcardToRegExp } from '../../src/sandbox/env-policy.js';
import { bearerMatches } from '../../src/server/auth.js';
import { FrameSizeGuard } from '../../src/server/frame-size-guard.js';
import { isLoopbackHost } from '../../src/server/loopback.js';

function frame(payloadLength: number, masked = true): Buffer {
  const head: number[] = [0x81];
  const m = masked ? 0x80 : 0;
  if (payloadLength < 126) head.push(m | payloadLength);
  else if (payloadLength < 65536) head.push(m | 126, payloadLength >> 8, payloadLength & 0xff);
  else {
    head.push(m | 127);
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(payloadLength));
    head.push(...b);
  }
  return Buffer.concat([Buffer.from(head), masked ? Buffer.alloc(4) : Buffer.alloc(0), Buffer.alloc(payloadLength)]);
}

describe('FrameSizeGuard', () => {
  it('follows frames across arbitrary chunking and trips only on an oversized one', () => {
    const stream = Buffer.concat([frame(5), frame(200), frame(65_535), frame(0), frame(70_000, false), frame(70_001), frame(3)]);
    // Headers split across chunks (1, 7, 13) and whole within them (the rest).
    for (const step of [1, 7, 13, 64, 4096, stream.length]) {
      const sizes: number[] = [];
      const guard = new FrameSizeGuard(70_000, (n) => sizes.push(n));
      for (let i = 0; i < stream.length; i += step) guard.feed(stream.subarray(i, i + step));
      assert.deepEqual(sizes, [70_001], `chunks of ${step}`);
    }
  });
  it('sees the header before the payload arrives', () => {
    const sizes: number[] = [];
    const guard = new FrameSizeGuard(16 * 1024 * 1024, (n) => sizes.push(n));
    guard.feed(frame(16 * 1024 * 1024 + 1).subarray(0, 14));
    assert.deepEqual(sizes, [16 * 1024 * 1024 + 1]);
  });
});

describe('auth and addresses', () => {
  it('compares bearer tokens exactly', () => {
    assert.equal(bearerMatches('Bearer abc', 'abc'), true);
    assert.equal(bearerMatches('bearer abc', 'abc'), true);
    assert.equal(bearerMatches('Bearer abcd', 'abc'), false);
    assert.equal(bearerMatches('Bearer ', 'abc'), false);
    assert.equal(bearerMatches(undefined, 'abc'), false);
    assert.equal(bearerMatches('abc', 'abc'), false);
  });
  it('knows loopback addresses', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]']) assert.equal(isLoopbackHost(h), true, h);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', 'example.com', '192.168.1.1']) assert.equal(isLoopbackHost(h), false, h);
  });
});

describe('OutputLog', () => {
  it('retains the most recent bytes, always the newest chunk, and reads by seq with maxBytes', () => {
    const log = new OutputLog(10);
    for (let seq = 1; seq <= 5; seq++) log.push({ seq, stream: 'stdout', data: Buffer.alloc(4, seq) });
    assert.deepEqual(
      log.read(0, null).map((c) => c.seq),
      [4, 5],
    );
    assert.equal(log.retainedBytes, 8);
    assert.deepEqual(
      log.read(4, null).map((c) => c.seq),
      [5],
    );
    assert.deepEqual(
      log.read(0, 0).map((c) => c.seq),
      [4],
      'at least one chunk',
    );
    assert.deepEqual(
      log.read(0, 8).map((c) => c.seq),
      [4, 5],
    );
    log.push({ seq: 6, stream: 'stderr', data: Buffer.alloc(50) });
    assert.deepEqual(
      log.read(0, null).map((c) => c.seq),
      [6],
      'an oversized chunk is still kept',
    );
    assert.equal(log.hasAfter(6), false);
    assert.equal(log.hasAfter(5), true);
  });
  it('stays correct over many evictions', () => {
    const log = new OutputLog(100);
    for (let seq = 1; seq <= 10_000; seq++) log.push({ seq, stream: 'stdout', data: Buffer.alloc(10) });
    assert.deepEqual(
      log.read(0, null).map((c) => c.seq),
      Array.from({ length: 10 }, (_, i) => 9991 + i),
    );
  });
});

describe('env policy', () => {
  it('matches case-insensitive wildcards with * and ? only', () => {
    assert.ok(wildcardToRegExp('*key*').test('MY_API_KEY'));
    assert.ok(wildcardToRegExp('PA?H').test('path'));
    assert.ok(!wildcardToRegExp('[AB]').test('A'));
    assert.ok(wildcardToRegExp('[AB]').test('[ab]'));
  });
  it('runs the envPolicy algorithm of docs/protocol.md §7.1.1', () => {
    const server = {
      MY_API_KEY: '1',
      MY_SECRET: '1',
      MY_TOKEN: '1',
      FOO_PASSWORD: '1',
      NORMAL_VAR: '1',
      AWS_ACCESS_KEY_ID: '1',
      PATH: '/bin',
      HOME: '/root',
      SHELL: '/bin/sh',
      OTHER: 'x',
    };
    const policy = { inherit: 'all' as const, ignoreDefaultExcludes: false, exclude: [], set: {}, includeOnly: [] };
    assert.deepEqual(Object.keys(buildChildEnv({ EXPLICIT_TOKEN: 't' }, policy, server)).sort(), [
      'EXPLICIT_TOKEN',
      'FOO_PASSWORD',
      'HOME',
      'NORMAL_VAR',
      'OTHER',
      'PATH',
      'SHELL',
    ]);
    assert.equal(Object.keys(buildChildEnv({}, { ...policy, ignoreDefaultExcludes: true }, server)).length, Object.keys(server).length);
    assert.deepEqual(Object.keys(buildChildEnv({}, { ...policy, inherit: 'core' }, server)).sort(), ['HOME', 'PATH', 'SHELL']);
    assert.deepEqual(buildChildEnv({ S: '2' }, { ...policy, inherit: 'none', set: { S: '1', T: '1' } }, server), { S: '2', T: '1' });
    assert.deepEqual(
      Object.keys(buildChildEnv({ E: '1' }, { ...policy, includeOnly: ['NORMAL_VAR', 'PATH', 'MY_*'], set: { Z: '1' } }, server)).sort(),
      ['E', 'NORMAL_VAR', 'PATH'],
    );
    assert.deepEqual(buildChildEnv({ PATH: '/custom/bin' }, policy, server).PATH, '/custom/bin');
    assert.deepEqual(buildChildEnv({ A: 'b' }, null, server), { A: 'b' });
  });
});
