import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import type { ExecServerClient } from '../../src/client/exec-server-client.js';
import { type MethodHandlers, type MethodName, methods, type StreamedMessage } from '../../src/protocol/index.js';
import { methodTable } from '../../src/server/method-table.js';
import { Outbox } from '../../src/server/outbox.js';
import { StartHold } from '../../src/server/start-hold.js';
import type { ServerTransport } from '../../src/server/transport.js';

describe('method registry', () => {
  it('routes exactly the methods the protocol declares', () => {
    assert.deepEqual([...methodTable.keys()].sort(), Object.keys(methods).sort());
    assert.equal(methodTable.get('toString'), undefined);
    assert.equal(methodTable.get('initialize'), undefined, 'initialize is the dispatcher’s own, before any route');
  });

  it('reads each form of a two-form method with its own schema and wording', () => {
    assert.deepEqual(methods['fs/open'].parse({ path: '/x', mode: 'read' }), { form: 'older', params: { path: '/x', mode: 'read' } });
    assert.deepEqual(methods['fs/open'].parse({ handleId: 'h', path: '/x' }), { form: 'named', params: { handleId: 'h', path: '/x' } });
    assert.throws(() => methods['fs/open'].parse({ path: '/x' }), { code: -32602, message: 'missing field `handleId`' });
    assert.throws(() => methods['fs/readBlock'].parse({ handle: 'h', offset: 0 }), { code: -32602, message: 'missing field `length`' });
    assert.throws(() => methods['fs/readBlock'].parse({ handleId: 'h', offset: 0 }), { code: -32602, message: 'missing field `len`' });
    assert.throws(() => methods['fs/close'].parse(null), { code: -32602, message: 'invalid type: null, expected struct FsCloseParams' });
  });

  it('checks process/start bounds before its schema', () => {
    const argv = Array.from({ length: 40_000 }, () => 'x');
    assert.throws(() => methods['process/start'].parse({ argv }), { code: -32602, message: /too large/ });
    assert.throws(() => methods['process/start'].parse({ argv: ['x'] }), { code: -32602, message: 'missing field `processId`' });
  });

  it('types names, params and results end to end (checked by npm run typecheck)', () => {
    // Never called: the @ts-expect-error lines fail typecheck if the registry stops catching these.
    const typeChecks = async (client: ExecServerClient): Promise<void> => {
      // @ts-expect-error a misspelled method name
      await client.request('fs/readFiel', { path: '/x' });
      // @ts-expect-error a params shape the method does not take
      await client.request('fs/readFile', { pth: '/x' });
      // @ts-expect-error the result is the declared one
      const wrong: number = (await client.request('fs/canonicalize', { path: '/x' })).path;
      const right: string = (await client.request('fs/canonicalize', { path: '/x' })).path;
      void [wrong, right];
    };
    // @ts-expect-error a handler table must cover every method it names
    const partial: MethodHandlers<unknown, Extract<MethodName, 'fs/copy' | 'fs/rename'>> = { 'fs/copy': async () => ({}) };
    void [typeChecks, partial];
  });
});

interface Sent {
  message: string | Buffer;
  last?: boolean;
  flushed: () => void;
}

function fakeTransport() {
  const sent: Sent[] = [];
  const log: string[] = [];
  const transport: ServerTransport = {
    kind: 'test',
    peer: 'test',
    send: (message, flushed) => void sent.push({ message, flushed }),
    sendPart: (part, last, flushed) => void sent.push({ message: part, last, flushed }),
    cork: () => void log.push('cork'),
    uncork: () => void log.push('uncork'),
    close: (code) => void log.push(`close ${code}`),
  };
  return { transport, sent, log };
}

const logger = pino({ level: 'silent' });

describe('outbox', () => {
  it('corks notifications until the turn’s work is done, and a response uncorks at once', async () => {
    const { transport, sent, log } = fakeTransport();
    const outbox = new Outbox(transport, { sendHighWaterBytes: 1e9, sendLowWaterBytes: 0 }, () => undefined, logger);
    outbox.notify('a');
    outbox.notify('b');
    assert.deepEqual(log, ['cork']);
    outbox.respond('r');
    assert.deepEqual(log, ['cork', 'uncork']);
    outbox.notify('c');
    await new Promise<void>((resolve) => process.nextTick(resolve));
    assert.deepEqual(log, ['cork', 'uncork', 'cork', 'uncork']);
    assert.deepEqual(
      sent.map((s) => s.message),
      ['a', 'b', 'r', 'c'],
    );
  });

  it('pauses the output above the high water mark and resumes at the low one', () => {
    const { transport, sent } = fakeTransport();
    const flow: string[] = [];
    const outbox = new Outbox(
      transport,
      { sendHighWaterBytes: 10, sendLowWaterBytes: 4 },
      () => ({ pauseOutput: () => void flow.push('pause'), resumeOutput: () => void flow.push('resume') }),
      logger,
    );
    outbox.send('123456');
    outbox.send('123456');
    assert.deepEqual(flow, ['pause']);
    sent[0]?.flushed();
    assert.deepEqual(flow, ['pause'], '6 bytes unflushed is above the low water mark');
    sent[1]?.flushed();
    assert.deepEqual(flow, ['pause', 'resume']);
  });

  it('sends what comes during a streamed message after it, and drops (cancels) what is queued on close', async () => {
    const { transport, sent } = fakeTransport();
    const outbox = new Outbox(transport, { sendHighWaterBytes: 1e9, sendLowWaterBytes: 0 }, () => undefined, logger);
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const streamed: StreamedMessage = {
      parts: (async function* () {
        yield Buffer.from('s1');
        await gate;
        yield Buffer.from('s2');
      })(),
      cancel: async () => undefined,
    };
    outbox.send(streamed);
    outbox.send('after');
    release();
    await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(
      sent.map((s) => s.message.toString()),
      ['s1s2', 'after'],
      'a small streamed message goes whole, and the queued one after it',
    );

    let cancelled = false;
    const stuck: StreamedMessage = {
      parts: (async function* () {
        await new Promise(() => undefined);
        yield Buffer.alloc(0);
      })(),
      cancel: async () => void 0,
    };
    const queuedStream: StreamedMessage = {
      parts: (async function* () {
        yield Buffer.alloc(0);
      })(),
      cancel: async () => void (cancelled = true),
    };
    outbox.send(stuck);
    outbox.send(queuedStream);
    outbox.close();
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.equal(cancelled, true);
    outbox.send('late');
    assert.equal(
      sent.some((s) => s.message === 'late'),
      false,
    );
  });
});

describe('start hold', () => {
  it('holds a starting process’s events until its response, then gives them back in order', () => {
    const hold = new StartHold();
    assert.equal(hold.hold('p', 'early'), false);
    hold.begin('p');
    assert.equal(hold.hold('p', 'one'), true);
    assert.equal(hold.hold('p', 'two'), true);
    assert.equal(hold.hold('q', 'other'), false);
    assert.deepEqual(hold.release('p'), ['one', 'two']);
    assert.equal(hold.hold('p', 'three'), false);
    assert.deepEqual(hold.release('p'), []);
  });
});
