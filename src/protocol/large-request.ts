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
 * exactly as it always did.
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

/** Messages over this size are parsed only for the methods that carry bulk data. */
export const BULK_MESSAGE_BYTES = 8 * 1024 * 1024;
/** The methods whose payload may be large: file contents, stdin, HTTP bodies. */
const BULK_METHODS = new Set(['fs/writeFile', 'fs/writeBlock', 'process/write', 'http/request']);
/** How far into a message its `id` and `method` are looked for (clients send them first). */
const HEAD_BYTES = 1024;

/**
 * The refusal of a message too large for its method, found without parsing it: parsing a message
 * of tens of megabytes holds the event loop, and every other session with it, for seconds. A
 * message over BULK_MESSAGE_BYTES must name a bulk method in its first kilobyte. Undefined when the
 * message may be parsed.
 */
export function oversizeRefusal(head: string, length: number): { id: RequestId | null; message: string } | undefined {
  if (length <= BULK_MESSAGE_BYTES) return undefined;
  const start = head.slice(0, HEAD_BYTES);
  const method = /"method"\s*:\s*"([^"\\]{1,100})"/.exec(start)?.[1];
  if (method !== undefined && BULK_METHODS.has(method)) return undefined;
  const idMatch = /"id"\s*:\s*("(?:[^"\\]{0,200})"|-?\d{1,20})/.exec(start)?.[1];
  const id = idMatch === undefined ? null : idMatch.startsWith('"') ? idMatch.slice(1, -1) : Number(idMatch);
  const what = method === undefined ? 'a message that does not name its method in its first kilobyte' : method;
  return {
    id,
    message: `message of ${length} bytes is too large for ${what}: over ${BULK_MESSAGE_BYTES} bytes only ${[...BULK_METHODS].join(', ')} are accepted`,
  };
}
