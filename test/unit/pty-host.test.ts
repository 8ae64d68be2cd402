import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import type { ChildListener, ChildSpec } from '../../src/local/child.js';
import { PtyHost } from '../../src/local/pty-host.js';

const spec = (script: string): ChildSpec => ({
  file: '/bin/sh',
  args: ['-c', script],
  argv0: 'sh',
  cwd: '/tmp',
  env: { PATH: '/usr/bin:/bin', TERM: 'dumb' },
  pipeStdin: false,
  rows: 24,
  cols: 80,
  maxChunkBytes: 64 * 1024,
});

/** A listener that records everything, and a promise of `closed`. */
function recorder(): { listener: ChildListener; output: () => Buffer; exitCodes: number[]; closed: Promise<void>; order: string[] } {
  const parts: Buffer[] = [];
  const exitCodes: number[] = [];
  const order: string[] = [];
  let done!: () => void;
  const closed = new Promise<void>((r) => (done = r));
  return {
    listener: {
      output: (_stream, data) => {
        parts.push(Buffer.from(data));
        if (order.at(-1) !== 'output') order.push('output');
      },
      exited: (code) => {
        exitCodes.push(code);
        order.push('exited');
      },
      closed: () => {
        order.push('closed');
        done();
      },
    },
    output: () => Buffer.concat(parts),
    exitCodes,
    closed,
    order,
  };
}

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Runs `fn` with a fresh terminal thread and disposes it whatever happens. */
async function withHost(fn: (host: PtyHost) => Promise<void>): Promise<void> {
  const host = new PtyHost();
  try {
    await fn(host);
  } finally {
    await host.dispose();
  }
}

describe('terminal thread (PtyHost)', () => {
  it("delivers a fast writer's whole output, in order, then exited and closed", () =>
    withHost(async (host) => {
      const r = recorder();
      // 4 MB of numbered lines: any lost, duplicated or reordered chunk changes the digest.
      await host.spawn(spec('seq 1 500000'), r.listener);
      await r.closed;
      const expected = Array.from({ length: 500000 }, (_, i) => `${i + 1}\r\n`).join('');
      assert.equal(createHash('sha256').update(r.output()).digest('hex'), createHash('sha256').update(expected).digest('hex'));
      assert.deepEqual(r.exitCodes, [0]);
      assert.deepEqual(r.order, ['output', 'exited', 'closed']);
    }));

  it('writes stdin, resizes, and reports the exit code', () =>
    withHost(async (host) => {
      const r = recorder();
      const child = await host.spawn(spec('stty size; read line; echo "got:$line"; exit 7'), r.listener);
      assert.ok(child.pid > 0);
      child.resize(40, 100);
      await child.write(Buffer.from('hello\n'));
      await r.closed;
      assert.match(r.output().toString(), /got:hello/);
      assert.deepEqual(r.exitCodes, [7]);
      await assert.rejects(child.write(Buffer.from('late\n')), /terminal closed/);
    }));

  it('rejects a start that node-pty refuses, with its error, and goes on serving', () =>
    withHost(async (host) => {
      const r = recorder();
      // node-pty refuses a terminal name that is not a string before it forks.
      const bad = spec('true');
      bad.env = { ...bad.env, TERM: 5 as unknown as string };
      await assert.rejects(host.spawn(bad, r.listener), /name must be a string/);
      // The thread still serves later children.
      const ok = recorder();
      await host.spawn(spec('echo fine'), ok.listener);
      await ok.closed;
      assert.match(ok.output().toString(), /fine/);
    }));

  it('dispose kills what runs on a terminal, reports it, and refuses later starts', async () => {
    const host = new PtyHost();
    const r = recorder();
    const child = await host.spawn(spec('trap "" HUP TERM INT; sleep 60 & wait; sleep 60'), r.listener);
    assert.ok(isAlive(child.pid));
    await host.dispose();
    await r.closed;
    assert.deepEqual(r.exitCodes, [128 + 9]);
    assert.equal(isAlive(child.pid), false, 'the child was killed');
    await assert.rejects(host.spawn(spec('true'), recorder().listener), /shut down/);
  });
});
