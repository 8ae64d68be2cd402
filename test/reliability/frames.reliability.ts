import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import fc from 'fast-check';
import {
  assertProperty,
  assertScratchCeiling,
  BYSTANDER_BOUND_MS,
  Bystander,
  budgetMs,
  figure,
  LEAKED_EXCEPTION,
  makeScratch,
  Peer,
  relTest,
  type Scratch,
  SEED,
  type ServerProcess,
  scaled,
  spawnServer,
} from './harness.js';
import { encodeFrame, type FrameSpec, RawWebSocket, textFrame } from './raw-socket.js';

/**
 * Fuzzing of raw input: whole messages of every kind over a live session (JSON of any shape,
 * mutated requests, odd ids, binary), then single WebSocket frames of any header on fresh sockets,
 * then a burst of pings. The server must stay up, keep answering, and end a connection it will not
 * keep with a close frame.
 */

let scratch: Scratch;
let server: ServerProcess;

before(async () => {
  scratch = await makeScratch();
  server = await spawnServer(scratch);
  await assertScratchCeiling(server, scratch);
});

after(async () => {
  await server?.stop();
  await scratch?.cleanup();
});

const METHODS = [
  'initialize',
  'initialized',
  'process/start',
  'process/read',
  'process/write',
  'process/terminate',
  'process/signal',
  'process/resize',
  'environment/info',
  'fs/readFile',
  'fs/getMetadata',
  'fs/readDirectory',
  'fs/canonicalize',
  'fs/open',
  'fs/readBlock',
  'fs/close',
  'fs/watch',
  'fs/unwatch',
  'nope',
  '',
];

/** A valid request text to mutate: only read-only methods on the scratch dir. */
const validText = (): fc.Arbitrary<string> =>
  fc.constantFrom(
    JSON.stringify({ id: 1, method: 'fs/getMetadata', params: { path: scratch.dir } }),
    JSON.stringify({ id: 'x', method: 'process/read', params: { processId: 'p', afterSeq: null, maxBytes: 10, waitMs: 0 } }),
    JSON.stringify({ id: 2, method: 'fs/readDirectory', params: { path: scratch.dir } }),
    JSON.stringify({ id: 3, method: 'environment/info', params: {} }),
    JSON.stringify({ method: 'initialized', params: {} }),
  );

const mutate = (text: string, edits: [number, number, number][]): string => {
  let s = text;
  for (const [kind, pos, ch] of edits) {
    const at = pos % (s.length + 1);
    if (kind === 0) s = s.slice(0, at) + s.slice(at + 1);
    else if (kind === 1) s = s.slice(0, at) + String.fromCharCode(ch) + s.slice(at);
    else if (kind === 2) s = s.slice(0, at);
    else s = s.slice(0, at) + String.fromCharCode(ch) + s.slice(at + 1);
  }
  return s;
};

const oddId = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 6 }),
  fc.constant(null),
  fc.constant(-1),
  fc.constant(2 ** 63),
  fc.array(fc.integer(), { maxLength: 1 }),
  fc.constant({}),
);

const message = (): fc.Arbitrary<string | Buffer> =>
  fc.oneof(
    fc.jsonValue().map((v) => JSON.stringify(v)),
    fc.string({ unit: 'binary', maxLength: 64 }),
    fc
      .tuple(validText(), fc.array(fc.tuple(fc.nat(3), fc.nat(), fc.integer({ min: 0, max: 0xffff })), { minLength: 1, maxLength: 4 }))
      .map(([t, e]) => mutate(t, e)),
    fc
      .record(
        {
          id: oddId,
          method: fc.oneof(fc.constantFrom(...METHODS), fc.string({ maxLength: 6 }), fc.integer()),
          params: fc.oneof(fc.jsonValue(), fc.constant(undefined)),
        },
        { requiredKeys: [] },
      )
      .map((m) => JSON.stringify(m)),
    fc
      .record({ jsonrpc: fc.constantFrom('2.0', '1.0', 2), id: fc.nat(), result: fc.jsonValue() }, { requiredKeys: ['id'] })
      .map((m) => JSON.stringify(m)),
    fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
  );

relTest('fuzzed messages on a live session: the server answers what it can, stays up and keeps the connection', async () => {
  const bystander = await Bystander.start(server.url, scratch.dir);
  let sent = 0;
  let reconnects = 0;
  let peer = await Peer.ready(server.url);
  let sentinel = 0;
  try {
    await assertProperty(
      fc.asyncProperty(fc.array(message(), { minLength: 1, maxLength: 20 }), fc.boolean(), async (messages, initialized) => {
        if (!initialized && peer.sessionId) {
          // Some batches go to a connection that never initialized.
          await peer.close();
          peer = await Peer.open(server.url);
          reconnects++;
        } else if (!peer.isOpen || !peer.sessionId) {
          await peer.close();
          peer = await Peer.ready(server.url);
          reconnects++;
        }
        for (const m of messages) peer.send(m);
        sent += messages.length;
        const id = `sentinel-${sentinel++}`;
        const res = await peer.callRaw(
          id,
          JSON.stringify({ id, method: 'fs/getMetadata', params: { path: scratch.dir } }),
          30_000,
          'sentinel',
        );
        assert.ok(res.result || res.error, JSON.stringify(res));
        if (res.error) assert.doesNotMatch(res.error.message, LEAKED_EXCEPTION);
        for (const u of peer.unmatched.splice(0))
          if (u.error) assert.doesNotMatch(String(u.error.message), LEAKED_EXCEPTION, JSON.stringify(u));
        assert.ok(server.alive(), 'the server died');
      }),
      { seed: SEED, numRuns: scaled(800), endOnFailure: true, interruptAfterTimeLimit: budgetMs(25), markInterruptAsFailure: false },
    );
  } finally {
    await peer.close();
  }
  const by = await bystander.stop();
  assert.deepEqual(server.unexpectedErrors(), []);
  figure('message fuzz: messages sent', sent);
  figure('message fuzz: connections opened', reconnects + 1);
  figure('message fuzz: other session latency p50/p99/max', `${by.p50}/${by.p99}/${by.max}`, 'ms');
  assert.deepEqual(by.failures, []);
  assert.ok(by.max < BYSTANDER_BOUND_MS, `another session waited ${by.max} ms`);
});

const frameSpec: fc.Arbitrary<FrameSpec> = fc.record({
  fin: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  rsv: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.nat(7) }),
  opcode: fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(1, 9, 10) },
    { weight: 2, arbitrary: fc.constantFrom(0, 2) },
    { weight: 2, arbitrary: fc.constantFrom(8, 9, 10) },
    { weight: 1, arbitrary: fc.nat(15) },
  ),
  masked: fc.oneof({ weight: 5, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  payload: fc.oneof(
    fc.uint8Array({ maxLength: 40 }),
    fc.string({ maxLength: 40 }).map((s) => Buffer.from(s)),
    fc.uint8Array({ minLength: 120, maxLength: 300 }),
  ),
  lengthForm: fc.constantFrom('min', 'min', '16', '64'),
});

relTest('fuzzed WebSocket frames: each connection answers or ends with a close frame; the server stays up', async () => {
  const bystander = await Bystander.start(server.url, scratch.dir);
  const outcomes = { answered: 0, closedWithFrame: 0, closedAbruptly: 0, waiting: 0 };
  let frames = 0;
  const abrupt: string[] = [];
  await assertProperty(
    fc.asyncProperty(
      fc.array(frameSpec, { minLength: 1, maxLength: 5 }),
      fc.option(fc.constantFrom(2 ** 20, 2 ** 26, 2 ** 40), { nil: undefined, freq: 8 }),
      async (specs, lie) => {
        const ws = await RawWebSocket.connect(server.url);
        try {
          const bytes = specs.map((s) => encodeFrame(s));
          if (lie !== undefined)
            bytes.push(
              encodeFrame({
                fin: true,
                rsv: 0,
                opcode: 1,
                masked: true,
                payload: Buffer.from('{"id":'),
                lengthForm: '64',
                declaredLength: lie,
              }),
            );
          const id = `frame-sentinel`;
          bytes.push(textFrame(JSON.stringify({ id, method: 'environment/info', params: {} })));
          frames += bytes.length;
          ws.write(Buffer.concat(bytes));
          const settled = await ws.waitFor(() => ws.ended || ws.hasResponse(id), lie !== undefined ? 2000 : 15_000);
          if (!settled) {
            assert.ok(
              lie !== undefined,
              `no answer and no close within 15 s: ${JSON.stringify(specs.map((s) => ({ ...s, payload: s.payload.length })))} ${ws.describe()}`,
            );
            outcomes.waiting++;
          } else if (ws.hasResponse(id)) outcomes.answered++;
          else if (ws.sawClose) outcomes.closedWithFrame++;
          else {
            outcomes.closedAbruptly++;
            if (abrupt.length < 5) abrupt.push(`${JSON.stringify(specs.map((s) => ({ ...s, payload: s.payload.length })))} lie ${lie}`);
          }
          for (const t of ws.texts()) assert.doesNotMatch(t, LEAKED_EXCEPTION);
        } finally {
          ws.destroy();
        }
        assert.ok(server.alive(), 'the server died');
      },
    ),
    { seed: SEED, numRuns: scaled(600), endOnFailure: true, interruptAfterTimeLimit: budgetMs(25), markInterruptAsFailure: false },
  );
  const by = await bystander.stop();
  figure('frame fuzz: frames sent', frames);
  figure(
    'frame fuzz: connections answered / closed with a close frame / closed without one / left waiting on a truncated frame',
    `${outcomes.answered} / ${outcomes.closedWithFrame} / ${outcomes.closedAbruptly} / ${outcomes.waiting}`,
  );
  figure('frame fuzz: other session latency p50/p99/max', `${by.p50}/${by.p99}/${by.max}`, 'ms');
  assert.deepEqual(server.unexpectedErrors(), []);
  assert.deepEqual(by.failures, []);
  assert.ok(by.max < BYSTANDER_BOUND_MS, `another session waited ${by.max} ms`);
  assert.equal(outcomes.closedAbruptly, 0, `connections ended without a close frame, e.g. ${abrupt.join('; ')}`);
});

relTest('a burst of pings is answered (or the connection ends with a close frame), and the session still answers', async () => {
  const bystander = await Bystander.start(server.url, scratch.dir);
  const bursts = scaled(5);
  const perBurst = 20_000;
  let pongs = 0;
  for (let b = 0; b < bursts; b++) {
    const ws = await RawWebSocket.connect(server.url);
    try {
      const ping = encodeFrame({ fin: true, rsv: 0, opcode: 9, masked: true, payload: Buffer.from(`ping-${b}`), lengthForm: 'min' });
      const burst = Buffer.concat(Array.from({ length: perBurst }, () => ping));
      const id = `after-pings-${b}`;
      ws.write(
        Buffer.concat([
          burst,
          textFrame(JSON.stringify({ id, method: 'initialize', params: { clientName: 'pings', resumeSessionId: null } })),
        ]),
      );
      const settled = await ws.waitFor(() => ws.ended || ws.hasResponse(id), 60_000);
      pongs += ws.frames.filter((f) => f.opcode === 10).length;
      assert.ok(settled, `no answer and no close after a burst of ${perBurst} pings: ${ws.frames.length} frames`);
      assert.ok(
        ws.hasResponse(id) || ws.sawClose,
        `the connection was dropped without a close frame after ${perBurst} pings (${ws.frames.filter((f) => f.opcode === 10).length} pongs)`,
      );
    } finally {
      ws.destroy();
    }
  }
  const by = await bystander.stop();
  figure('ping bursts: pings sent / pongs received', `${bursts * perBurst} / ${pongs}`);
  figure('ping bursts: other session latency p50/p99/max', `${by.p50}/${by.p99}/${by.max}`, 'ms');
  assert.ok(server.alive());
  assert.deepEqual(by.failures, []);
});
