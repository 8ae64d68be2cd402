import type { z } from 'zod';
import type { Base64Result, Base64Stream } from './envelope.js';
import { parseParams } from './validate.js';

/**
 * One request method of the wire, declared once: how the server reads its params (validated, with
 * serde's error wording), what a client sends, and what comes back. The server's handler table and
 * the client's `request` both take their types from these declarations (see methods.ts).
 */
export interface MethodSpec<Params, Request, Result> {
  /** Validates raw params, throwing `-32602` worded as the reference's serde would. */
  readonly parse: (raw: unknown) => Params;
  /** Never set at run time: carries the request and result types to the client. */
  readonly types?: { readonly request: Request; readonly result: Result };
}

/** A method whose params are one struct schema; the result type is given as `method(S, 'Name')<Result>()`. */
export function method<S extends z.ZodTypeAny>(schema: S, structName: string) {
  return <Result>(): MethodSpec<z.output<S>, z.input<S>, Result> => ({ parse: (raw) => parseParams(schema, raw, structName) });
}

/** A method whose params are read by hand (several accepted forms, checks before the schema, or none). */
export function methodWith<Params, Request, Result>(parse: (raw: unknown) => Params): MethodSpec<Params, Request, Result> {
  return { parse };
}

/**
 * A result already encoded as JSON text around base64 bytes (file contents): it goes out without
 * JSON.stringify, and reads on the wire as the method's declared result.
 */
export type PreEncodedResult = Base64Result | Base64Stream;

/** What a handler returns: the result, now or later (a value when it can answer in the same turn). */
export type Answer<R> = R | PreEncodedResult | Promise<R | PreEncodedResult>;
