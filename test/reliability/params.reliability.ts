import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before } from 'node:test';
import fc from 'fast-check';
import {
  ALLOWED_ERROR_CODES,
  assertProperty,
  assertScratchCeiling,
  BYSTANDER_BOUND_MS,
  Bystander,
  budgetMs,
  DescendantWatch,
  describeProcesses,
  eventually,
  figure,
  type Json,
  LEAKED_EXCEPTION,
  makeScratch,
  markedProcesses,
  Peer,
  relTest,
  type Scratch,
  SEED,
  type ServerProcess,
  scaled,
  spawnServer,
} from './harness.js';

/**
 * Property-based fuzzing of every method's params. Each run sends a batch of requests, each either
 * well-shaped (every field of the right type, values random, paths under the scratch dir) or broken
 * in its shape (a required field missing or of the wrong type, params not an object). Every request
 * must be answered in time; a broken shape gets -32602/-32600; nothing answers with a leaked
 * exception; the server never logs a request that failed outside its worded errors.
 */

let scratch: Scratch;
let server: ServerProcess;
let watch: DescendantWatch;

before(async () => {
  scratch = await makeScratch();
  mkdirSync(path.join(scratch.dir, 'a', 'b'), { recursive: true });
  writeFileSync(path.join(scratch.dir, 'a', 'f.txt'), 'hello\n');
  writeFileSync(path.join(scratch.dir, 'e'), '');
  server = await spawnServer(scratch, { sessionGraceMs: 500, extraArgs: ['--retain-exited-ms', '2000'] });
  await assertScratchCeiling(server, scratch);
  watch = new DescendantWatch(server.pid);
});

after(async () => {
  watch?.stop();
  await server?.stop();
  await scratch?.cleanup();
});

// Values of the wrong type for a field of a given type.
const notString = fc.oneof(
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string(), { maxLength: 2 }),
  fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), { maxKeys: 2 }),
);
const notBool = fc.oneof(fc.integer(), fc.string({ maxLength: 4 }), fc.array(fc.boolean(), { maxLength: 2 }), fc.double());
const notU64 = fc.oneof(
  fc.integer({ min: -1_000_000, max: -1 }),
  fc.double({ noInteger: true, noNaN: true }),
  fc.string({ maxLength: 4 }),
  fc.boolean(),
  fc.constant(2 ** 64),
);

const segment = fc.constantFrom('a', 'b', 'c', 'e', 'f.txt', 'new', 'x y', 'ü', '.hidden', 'a'.repeat(300));
/** Paths under the scratch dir only (never `..`): absolute, or relative (the server's cwd is the scratch dir). */
const scratchPath = (): fc.Arbitrary<string> =>
  fc
    .tuple(fc.array(segment, { maxLength: 4 }), fc.boolean())
    .map(([segs, relative]) => (relative && segs.length ? segs.join('/') : path.join(scratch.dir, ...segs)));

const ref = (kind: string) =>
  fc.oneof(
    fc.string({ maxLength: 8 }),
    fc.nat(40).map((i) => `@${kind}${i}`),
  );
const u64 = fc.oneof(fc.nat(70_000), fc.nat(), fc.constant(Number.MAX_SAFE_INTEGER));
const smallData = fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString('base64'));
const base64ish = fc.oneof(smallData, fc.string({ maxLength: 12 }), fc.constant('===='), fc.constant('YQ'));

const sandboxValue = (): fc.Arbitrary<unknown> =>
  fc.oneof(
    fc.constant(undefined),
    fc.constant(null),
    fc.constant({ permissions: { type: 'disabled' }, windowsSandboxLevel: 'disabled' }),
    fc.constant({
      permissions: { type: 'managed', network: 'enabled', file_system: { type: 'unrestricted' } },
      windowsSandboxLevel: 'disabled',
    }),
    fc.constant({ sandboxPolicy: { type: 'danger-full-access' }, windowsSandboxLevel: 'disabled' }),
    fc.constant({ sandboxPolicy: { type: 'read-only' }, windowsSandboxLevel: 'disabled', sandboxPolicyCwd: scratch.dir }),
    fc.record({
      permissions: fc.record({
        type: fc.constant('managed'),
        network: fc.constantFrom('restricted', 'enabled'),
        file_system: fc.record({
          type: fc.constant('restricted'),
          entries: fc.array(
            fc.record({
              path: fc.record({ type: fc.constant('path'), path: scratchPath() }),
              access: fc.constantFrom('read', 'write', 'deny', 'none'),
            }),
            { maxLength: 3 },
          ),
        }),
      }),
      windowsSandboxLevel: fc.constant('disabled'),
      cwd: fc.constant(scratch.dir),
    }),
  );
const badSandbox = fc.oneof(
  fc.integer(),
  fc.string({ maxLength: 4 }),
  fc.constant([]),
  fc.constant({}),
  fc.constant({ permissions: { type: 'bogus' }, windowsSandboxLevel: 'disabled' }),
  fc.constant({ permissions: { type: 'disabled' } }),
);

interface Field {
  valid: fc.Arbitrary<unknown>;
  bad: fc.Arbitrary<unknown>;
  required: boolean;
}
const req = (valid: fc.Arbitrary<unknown>, bad: fc.Arbitrary<unknown>): Field => ({ valid, bad, required: true });
const opt = (valid: fc.Arbitrary<unknown>, bad: fc.Arbitrary<unknown>): Field => ({
  valid: fc.option(valid, { nil: null }),
  bad,
  required: false,
});

const PROGRAMS: string[][] = [
  ['true'],
  ['echo'],
  ['/bin/sh', '-c', 'exit 3'],
  ['printf', '%s'],
  ['sleep', '0.2'],
  ['cat'],
  ['/nonexistent/prog'],
  ['a/f.txt'],
  ['a'],
  [''],
];

function methods(): Record<string, Record<string, Field>> {
  const sandbox: Field = { valid: sandboxValue(), bad: badSandbox, required: false };
  return {
    'process/start': {
      processId: req(ref('proc'), notString),
      argv: req(
        fc.tuple(fc.constantFrom(...PROGRAMS), fc.array(fc.string({ maxLength: 6 }), { maxLength: 3 })).map(([p, args]) => [...p, ...args]),
        fc.oneof(fc.constant([]), fc.array(fc.integer(), { minLength: 1, maxLength: 2 }), fc.string()),
      ),
      cwd: req(fc.oneof(fc.constant(scratch.dir), scratchPath()), notString),
      env: req(
        fc
          .dictionary(fc.constantFrom('A', 'B', 'PATH', 'HOME', 'LANG'), fc.string({ maxLength: 8 }), { maxKeys: 3 })
          .map((e) => ({ ...e, CORDON_REL_MARK: server.mark })),
        fc.oneof(fc.constant([]), fc.integer(), fc.constant({ A: 1 })),
      ),
      tty: req(fc.boolean(), notBool),
      pipeStdin: opt(fc.boolean(), notBool),
      arg0: opt(fc.string({ maxLength: 8 }), fc.integer()),
      envPolicy: opt(
        fc.record({
          inherit: fc.constantFrom('core', 'all', 'none'),
          ignoreDefaultExcludes: fc.boolean(),
          exclude: fc.array(fc.constantFrom('*', 'A*', 'PATH'), { maxLength: 2 }),
          set: fc.dictionary(fc.constantFrom('X', 'Y'), fc.string({ maxLength: 4 }), { maxKeys: 2 }),
          includeOnly: fc.array(fc.constantFrom('PATH', 'HOME', '*', 'CORDON_REL_MARK'), { maxLength: 2 }),
        }),
        fc.oneof(fc.integer(), fc.constant({ inherit: 'some' }), fc.constant({})),
      ),
      rows: opt(
        fc.integer({ min: 1, max: 65535 }),
        fc.oneof(fc.constant(0), fc.integer({ min: 65536 }), fc.double({ noInteger: true, noNaN: true })),
      ),
      cols: opt(fc.integer({ min: 1, max: 65535 }), fc.oneof(fc.constant(0), fc.integer({ min: 65536 }))),
      sandbox,
    },
    'process/read': {
      processId: req(ref('proc'), notString),
      afterSeq: opt(u64, notU64),
      maxBytes: opt(u64, notU64),
      waitMs: opt(fc.nat(300), notU64),
    },
    'process/write': {
      processId: req(ref('proc'), notString),
      chunk: req(base64ish, notString),
      writeId: opt(fc.string({ maxLength: 6 }), fc.integer()),
      closeStdin: opt(fc.boolean(), notBool),
    },
    'process/terminate': { processId: req(ref('proc'), notString) },
    'process/signal': {
      processId: req(ref('proc'), notString),
      signal: req(fc.constant('interrupt'), fc.oneof(fc.constantFrom('kill', 'term', 'INT', ''), fc.integer())),
    },
    'process/resize': {
      processId: req(ref('proc'), notString),
      rows: req(fc.integer({ min: 1, max: 65535 }), fc.oneof(fc.constant(0), fc.constant(-3), fc.integer({ min: 65536 }))),
      cols: req(fc.integer({ min: 1, max: 65535 }), fc.constant(0)),
    },
    'environment/info': {},
    'fs/readFile': { path: req(scratchPath(), notString), sandbox },
    'fs/writeFile': { path: req(scratchPath(), notString), dataBase64: req(base64ish, notString), sandbox },
    'fs/createDirectory': { path: req(scratchPath(), notString), recursive: opt(fc.boolean(), notBool), sandbox },
    'fs/getMetadata': { path: req(scratchPath(), notString), sandbox },
    'fs/readDirectory': { path: req(scratchPath(), notString), sandbox },
    'fs/remove': { path: req(scratchPath(), notString), recursive: opt(fc.boolean(), notBool), force: opt(fc.boolean(), notBool), sandbox },
    'fs/copy': {
      sourcePath: req(scratchPath(), notString),
      destinationPath: req(scratchPath(), notString),
      recursive: req(fc.boolean(), notBool),
      sandbox,
    },
    'fs/canonicalize': { path: req(scratchPath(), notString), sandbox },
    'fs/rename': { sourcePath: req(scratchPath(), notString), destinationPath: req(scratchPath(), notString), sandbox },
    'fs/open': {
      path: req(scratchPath(), notString),
      mode: req(fc.constantFrom('read', 'write'), fc.oneof(fc.constantFrom('rw', 'append', ''), fc.integer())),
      sandbox,
    },
    'fs/readBlock': { handle: req(ref('handle'), notString), offset: req(u64, notU64), length: req(u64, notU64) },
    'fs/writeBlock': { handle: req(ref('handle'), notString), offset: req(fc.nat(70_000), notU64), dataBase64: req(base64ish, notString) },
    'fs/close': { handle: req(ref('handle'), notString) },
    'fs/watch': { path: req(scratchPath(), notString), recursive: opt(fc.boolean(), notBool), sandbox },
    'fs/unwatch': { watchId: req(ref('watch'), notString) },
  };
}

interface Case {
  method: string;
  params: unknown;
  broken: string | null;
}

function caseArbitrary(method: string, fields: Record<string, Field>): fc.Arbitrary<Case> {
  const names = Object.keys(fields);
  const wellShaped = fc
    .tuple(
      fc.tuple(...names.map((n) => (fields[n] as Field).valid)),
      fc.array(fc.boolean(), { minLength: names.length, maxLength: names.length }),
      fc.option(fc.dictionary(fc.constantFrom('extra', 'zz'), fc.jsonValue()), { nil: undefined }),
    )
    .map(([values, omit, extra]) => {
      const params: Json = { ...extra };
      names.forEach((n, i) => {
        const v = values[i];
        if ((fields[n] as Field).required || !omit[i]) {
          if (v !== undefined) params[n] = v;
        }
      });
      return { method, params, broken: null } as Case;
    });
  const required = names.filter((n) => (fields[n] as Field).required || n === 'sandbox');
  const arbs: fc.Arbitrary<Case>[] = [wellShaped, wellShaped];
  if (required.length) {
    const breakField = fc.tuple(wellShaped, fc.constantFrom(...required), fc.boolean()).chain(([base, name, drop]) => {
      const field = fields[name] as Field;
      if (drop && field.required) {
        const params = { ...(base.params as Json) };
        delete params[name];
        return fc.constant({ method, params, broken: `missing ${name}` } as Case);
      }
      return field.bad.map(
        (bad) => ({ method, params: { ...(base.params as Json), [name]: bad }, broken: `${name} = ${JSON.stringify(bad)}` }) as Case,
      );
    });
    arbs.push(breakField);
    arbs.push(
      fc
        .oneof(fc.integer(), fc.string({ maxLength: 5 }), fc.array(fc.integer(), { maxLength: 2 }), fc.constant(null))
        .map((p) => ({ method, params: p, broken: `params ${JSON.stringify(p)}` }) as Case),
    );
  }
  return fc.oneof(...arbs);
}

/** Runs one case; resolves references (`@handle3`) to ids the session really holds. */
async function send(peer: Peer, state: { proc: string[]; handle: string[]; watch: string[] }, c: Case): Promise<Json> {
  const resolve = (v: unknown): unknown => {
    if (typeof v !== 'string') return v;
    const m = /^@(proc|handle|watch)(\d+)$/.exec(v);
    if (!m) return v;
    const list = state[m[1] as 'proc' | 'handle' | 'watch'];
    if (m[1] === 'proc' && Number(m[2]) % 3 === 0) return `p${m[2]}`;
    return list.length ? list[Number(m[2]) % list.length] : v;
  };
  const params =
    c.params && typeof c.params === 'object' && !Array.isArray(c.params)
      ? Object.fromEntries(Object.entries(c.params).map(([k, v]) => [k, resolve(v)]))
      : c.params;
  const res = await peer.call(c.method, params, 60_000);
  if (res.result) {
    if (c.method === 'process/start') state.proc.push((params as Json).processId);
    if (c.method === 'fs/open' && typeof res.result.handle === 'string') state.handle.push(res.result.handle);
    if (c.method === 'fs/watch' && typeof res.result.watchId === 'string') state.watch.push(res.result.watchId);
  }
  return res;
}

relTest('every method answers fuzzed params with a result or a worded error, and never crashes', async () => {
  const table = methods();
  const peer = await Peer.ready(server.url);
  const bystander = await Bystander.start(server.url, scratch.dir);
  const state = { proc: [] as string[], handle: [] as string[], watch: [] as string[] };
  let requests = 0;
  let broken = 0;
  const codes = new Map<number | string, number>();
  try {
    for (const [method, fields] of Object.entries(table)) {
      const runs = scaled(method === 'process/start' ? 40 : method.startsWith('process/') || method === 'environment/info' ? 80 : 100);
      await assertProperty(
        fc.asyncProperty(fc.array(caseArbitrary(method, fields), { minLength: 1, maxLength: 6 }), async (cases) => {
          const answers = await Promise.all(cases.map((c) => send(peer, state, c)));
          cases.forEach((c, i) => {
            const res = answers[i] as Json;
            requests++;
            const key = res.error ? res.error.code : 'ok';
            codes.set(key, (codes.get(key) ?? 0) + 1);
            const where = `${c.method} ${JSON.stringify(c.params)?.slice(0, 400)} -> ${JSON.stringify(res).slice(0, 400)}`;
            if (res.error) {
              assert.ok(ALLOWED_ERROR_CODES.has(res.error.code), `unexpected error code: ${where}`);
              assert.equal(typeof res.error.message, 'string', where);
              assert.doesNotMatch(res.error.message, LEAKED_EXCEPTION, `a leaked exception: ${where}`);
            } else {
              assert.ok('result' in res, `neither result nor error: ${where}`);
            }
            if (c.broken) {
              broken++;
              assert.ok(
                res.error && (res.error.code === -32602 || res.error.code === -32600),
                `a broken shape (${c.broken}) must get -32602/-32600: ${where}`,
              );
            }
          });
          assert.ok(server.alive(), 'the server died');
          assert.deepEqual(server.unexpectedErrors(), [], 'the server logged a request that failed outside its worded errors');
        }),
        { seed: SEED, numRuns: runs, endOnFailure: true, interruptAfterTimeLimit: budgetMs(3), markInterruptAsFailure: false },
      );
    }
  } finally {
    await peer.close();
  }
  const by = await bystander.stop();
  figure('params fuzz: requests', requests);
  figure('params fuzz: of them with a broken shape', broken);
  figure('params fuzz: answers by code', [...codes].map(([k, v]) => `${k}: ${v}`).join(', '));
  figure('params fuzz: other session latency p50/p99/max', `${by.p50}/${by.p99}/${by.max}`, 'ms');
  assert.deepEqual(by.failures, []);
  assert.ok(by.max < BYSTANDER_BOUND_MS, `another session waited ${by.max} ms`);
  assert.ok(server.alive());

  // The session is gone (grace 500 ms): every process it started is gone with it.
  watch.sample();
  await eventually(
    () => watch.survivors().length === 0 && markedProcesses(server.mark, [server.pid]).length === 0,
    20_000,
    "the fuzzed session's processes to end",
  ).catch((err: Error) => {
    throw new Error(`${err.message}: ${describeProcesses([...watch.survivors(), ...markedProcesses(server.mark, [server.pid])])}`);
  });
  figure('params fuzz: processes started (descendants seen)', watch.count);
});
