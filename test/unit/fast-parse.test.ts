import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { compileObject } from '../../src/protocol/fast-parse.js';
import * as fs from '../../src/protocol/fs.js';
import * as proc from '../../src/protocol/process.js';

/**
 * The compiled parser must agree with zod: on every input it accepts, its output equals zod's; it
 * may decline (undefined) anything, but never accept what zod rejects.
 */
const schemas = Object.entries({ ...fs, ...proc } as Record<string, unknown>).filter(
  (e): e is [string, z.AnyZodObject] => e[1] instanceof z.ZodObject,
);

const values: unknown[] = [
  undefined,
  null,
  true,
  false,
  0,
  1,
  -1,
  1.5,
  65535,
  65536,
  Number.MAX_SAFE_INTEGER,
  Number.MAX_SAFE_INTEGER + 2,
  '',
  'x',
  '/tmp',
  'read',
  'write',
  'interrupt',
  'core',
  'all',
  [],
  ['ls'],
  ['ls', 1],
  [1],
  {},
  { a: 'b' },
  { a: 1 },
];

function inputsFor(schema: z.AnyZodObject): unknown[] {
  const keys = Object.keys(schema.shape as object);
  const inputs: unknown[] = [null, 'x', [], {}, { unknown: 1 }];
  // A baseline that zod accepts, built by trying each candidate value per key.
  const base: Record<string, unknown> = {};
  for (const key of keys) {
    for (const v of values) {
      const candidate = { ...base, [key]: v };
      const shapeOk = (schema.shape as Record<string, z.ZodTypeAny>)[key]?.safeParse(v).success;
      if (shapeOk) {
        Object.assign(base, candidate);
        break;
      }
    }
  }
  inputs.push(base, { ...base, extra: 'stripped' });
  for (const key of keys) {
    for (const v of values) inputs.push({ ...base, [key]: v });
    const without = { ...base };
    delete without[key];
    inputs.push(without);
  }
  inputs.push({ ...base, env: { PATH: '/bin', __proto__: 'x' } });
  inputs.push(JSON.parse('{"path":"/tmp","__proto__":{"x":1}}'));
  return inputs;
}

describe('compiled params parser', () => {
  it('covers the hot schemas (declines nothing well-formed there)', () => {
    assert.deepEqual(compileObject(proc.ReadParams)({ processId: 'p', afterSeq: 3, maxBytes: null }), {
      processId: 'p',
      afterSeq: 3,
      maxBytes: null,
    });
    assert.deepEqual(compileObject(fs.PathParams)({ path: '/tmp' }), { path: '/tmp' });
    assert.deepEqual(compileObject(proc.StartParams)({ processId: 'p', argv: ['true'], cwd: '/', env: {}, tty: false, extra: 1 }), {
      processId: 'p',
      argv: ['true'],
      cwd: '/',
      env: {},
      tty: false,
    });
  });

  for (const [name, schema] of schemas) {
    it(`agrees with zod on ${name}`, () => {
      const fast = compileObject(schema);
      let accepted = 0;
      for (const input of inputsFor(schema)) {
        const got = fast(input);
        const expected = schema.safeParse(input);
        if (got === undefined) continue;
        accepted++;
        assert.ok(expected.success, `${name}: fast path accepted what zod rejects: ${JSON.stringify(input)}`);
        assert.deepEqual(got, expected.data, `${name}: ${JSON.stringify(input)}`);
      }
      assert.ok(accepted > 0, `${name}: the fast path accepted nothing`);
    });
  }
});
