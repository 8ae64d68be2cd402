import { z } from 'zod';
import { invalidParams } from './errors.js';
import { compileObject, type FastParser } from './fast-parse.js';

const FAST = Symbol('fastParser');

/** How serde names an unexpected JSON value, e.g. `string "ls"` or `integer \`3\``. */
export function describeUnexpected(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'boolean') return `boolean \`${value}\``;
  if (typeof value === 'string') return `string ${JSON.stringify(value)}`;
  if (typeof value === 'number') return 'number';
  if (Array.isArray(value)) return 'sequence';
  return 'map';
}

const EXPECTED: Readonly<Record<string, string>> = {
  string: 'a string',
  array: 'a sequence',
  boolean: 'a boolean',
  number: 'u64',
  integer: 'u64',
  object: 'a map',
  record: 'a map',
};

function valueAt(input: unknown, path: readonly (string | number)[]): unknown {
  let cur: unknown = input;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[key];
  }
  return cur;
}

/**
 * Turns a zod issue into the serde wording the reference uses (docs/protocol.md §3): clients and the
 * differential suite compare these texts.
 */
function serdeMessage(issue: z.ZodIssueOptionalMessage, input: unknown): string {
  const last = issue.path[issue.path.length - 1];
  switch (issue.code) {
    case 'invalid_type': {
      if (issue.received === 'undefined') return `missing field \`${String(last)}\``;
      const value = valueAt(input, issue.path);
      if (issue.expected === 'integer')
        return typeof value === 'number' ? 'invalid number' : `invalid type: ${describeUnexpected(value)}, expected u64`;
      return `invalid type: ${describeUnexpected(value)}, expected ${EXPECTED[issue.expected] ?? issue.expected}`;
    }
    case 'invalid_enum_value':
      // serde words two variants as "`a` or `b`" and more as "one of `a`, `b`, `c`".
      return `unknown variant \`${String(issue.received)}\`, expected ${
        issue.options.length === 1
          ? `\`${String(issue.options[0])}\``
          : issue.options.length === 2
            ? `\`${String(issue.options[0])}\` or \`${String(issue.options[1])}\``
            : `one of ${issue.options.map((o) => `\`${String(o)}\``).join(', ')}`
      }`;
    case 'too_small':
      if (issue.type === 'number') return 'invalid number';
      return `invalid length for \`${String(last)}\``;
    case 'too_big':
      if (issue.type === 'number') return 'invalid number';
      return `invalid length for \`${String(last)}\``;
    case 'not_finite':
      return 'invalid number';
    case 'invalid_union_discriminator':
      return `unknown variant \`${String(valueAt(input, issue.path))}\`, expected one of ${issue.options.map((o) => `\`${String(o)}\``).join(', ')}`;
    default:
      return issue.message ?? 'invalid params';
  }
}

/** The first issue of a failed parse of `input`, worded like serde. */
export function serdeErrorMessage(error: z.ZodError, input: unknown): string {
  const issue = error.issues[0];
  return issue ? serdeMessage(issue, input) : 'invalid params';
}

/** A struct-shaped schema whose own type errors read like serde's (`expected struct Name`). */
export function struct<T extends z.ZodRawShape>(name: string, shape: T) {
  const schema = z.object(shape, {
    errorMap: (issue, ctx) =>
      issue.code === 'invalid_type' && issue.path.length === 0
        ? { message: `invalid type: ${describeUnexpected(ctx.data)}, expected struct ${name}` }
        : { message: ctx.defaultError },
  });
  Object.defineProperty(schema, FAST, { value: compileObject(schema) });
  return schema;
}

export const u64 = () => z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/** Validates params against a schema, throwing `-32602` with a serde-style message on the first issue. */
export function parseParams<S extends z.ZodTypeAny>(schema: S, params: unknown, structName: string): z.output<S> {
  if (params === undefined || params === null) {
    throw invalidParams(`invalid type: null, expected struct ${structName}`);
  }
  // serde also fills a struct from a JSON array, field by field in declaration order.
  if (Array.isArray(params) && schema instanceof z.ZodObject) {
    params = Object.fromEntries(Object.keys(schema.shape as object).map((k, i) => [k, (params as unknown[])[i]]));
  }
  const fast = (schema as { [FAST]?: FastParser })[FAST]?.(params);
  if (fast !== undefined) return fast as z.output<S>;
  const input = params;
  const result = schema.safeParse(params, {
    // A struct() schema's own wording arrives as defaultError; everything else is worded here.
    errorMap: (issue, ctx) => ({
      message: issue.message ?? (ctx.defaultError.includes('expected struct ') ? ctx.defaultError : serdeMessage(issue, input)),
    }),
  });
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  throw invalidParams(issue ? issue.message : 'invalid params');
}
