import { base64Problem, decodeBase64BytesStrict } from './base64.js';
import { classifyMessage, type IncomingMessage, type RequestId } from './envelope.js';

/** Messages from this size on are looked at for a base64 field before being made one string. */
export const LARGE_MESSAGE_BYTES = 1024 * 1024;

const FIELD = Buffer.from('"dataBase64":"');
/** The field is looked for this far into a message: after the id, the method and a path. */
const FIELD_WITHIN = 64 * 1024;

/**
 * A large `fs/writeFile` request taken apart without turning its megabytes of base64 into a
 * string, parsing that string as JSON, decoding it and re-encoding it to check it: the rest of the
 * message is parsed with the field emptied, and the field's bytes are decoded strictly in place.
 * Invalid base64 comes back as its problem, worded as the usual path would. Undefined whenever
 * anything else is unusual (another method, an escape in the field, the field anywhere but
 * `params`, a second one): the caller then takes the usual path, which answers such messages
 * exactly as it always did. Measured against the usual path (docs/performance.md): server CPU for
 * one 40 MB write on a fresh server 2205 -> 1266 ms; peak memory of the message about 250 -> 100 MB.
 */
export function parseLargeWriteFile(
  message: Buffer,
):
  | { request: Extract<IncomingMessage, { kind: 'request' }>; data: Buffer }
  | { request: Extract<IncomingMessage, { kind: 'request' }>; base64Problem: string }
  | undefined {
  const at = message.subarray(0, FIELD_WITHIN).indexOf(FIELD);
  if (at === -1) return undefined;
  const start = at + FIELD.length;
  const end = message.indexOf(0x22, start);
  if (end === -1) return undefined;
  const field = message.subarray(start, end);
  if (field.indexOf(0x5c) !== -1) return undefined;
  const rest = message.toString('utf8', 0, start) + message.toString('utf8', end);
  if (rest.indexOf('dataBase64') !== rest.lastIndexOf('dataBase64')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(rest);
  } catch {
    return undefined;
  }
  const request = classifyMessage(value);
  if (request.kind !== 'request' || request.method !== 'fs/writeFile') return undefined;
  const params = request.params as { dataBase64?: unknown } | null;
  if (typeof params !== 'object' || params === null || Array.isArray(params) || params.dataBase64 !== '') return undefined;
  const data = decodeBase64BytesStrict(field);
  if (data) return { request, data };
  // Invalid base64 is worded here from the bytes, in one pass: the usual path would make the
  // megabytes one string, parse them again and search them character by character.
  const problem = base64Problem(field);
  return problem === undefined ? undefined : { request, base64Problem: problem };
}

/**
 * The most values (commas) a message may hold. Bulk data travels as base64 (no commas), so real
 * messages stay far below it; a message with a million env entries does not.
 */
export const MAX_MESSAGE_VALUES = 131_072;
/** How far into a message its `id` is looked for (clients send it first). */
const HEAD_BYTES = 1024;

/**
 * The refusal of a message holding more values than any method takes, found without parsing it:
 * parsing a message of a million values holds the event loop, and every other session with it,
 * for seconds. Counting commas is a native scan. Undefined when the message may be parsed.
 */
export function oversizeRefusal(message: Buffer | string): { id: RequestId | null; message: string } | undefined {
  if (message.length < LARGE_MESSAGE_BYTES) return undefined;
  let commas = 0;
  for (let at = message.indexOf(','); at !== -1; at = message.indexOf(',', at + 1)) {
    if (++commas > MAX_MESSAGE_VALUES) {
      const head = typeof message === 'string' ? message.slice(0, HEAD_BYTES) : message.toString('latin1', 0, HEAD_BYTES);
      const idMatch = /"id"\s*:\s*("(?:[^"\\]{0,200})"|-?\d{1,20})/.exec(head)?.[1];
      const id = idMatch === undefined ? null : idMatch.startsWith('"') ? idMatch.slice(1, -1) : Number(idMatch);
      const method = /"method"\s*:\s*"([^"\\]{1,100})"/.exec(head)?.[1];
      return { id, message: `${method ?? 'message'} is too large: more than ${MAX_MESSAGE_VALUES} values in one message` };
    }
  }
  return undefined;
}
