/** JSON-RPC envelopes as the reference frames them: no `"jsonrpc"` key, ids echoed verbatim. */

export type RequestId = string | number;

export type IncomingMessage =
  | { kind: 'request'; id: RequestId; method: string; params: unknown }
  | { kind: 'notification'; method: string; params: unknown }
  | { kind: 'response'; id: RequestId | null; result?: unknown; error?: unknown }
  | { kind: 'invalid'; reason: string };

const NO_VARIANT = 'data did not match any variant of untagged enum JSONRPCMessage';

const isId = (v: unknown): v is RequestId => typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));

/** Classifies one decoded JSON value. Never throws. */
export function classifyMessage(value: unknown): IncomingMessage {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return { kind: 'invalid', reason: NO_VARIANT };
  const msg = value as Record<string, unknown>;
  if (typeof msg.method === 'string') {
    if ('id' in msg && msg.id !== undefined) {
      if (msg.id === null) return { kind: 'invalid', reason: 'request id must be a string or an integer, not null' };
      if (!isId(msg.id)) return { kind: 'invalid', reason: NO_VARIANT };
      return { kind: 'request', id: msg.id, method: msg.method, params: msg.params };
    }
    return { kind: 'notification', method: msg.method, params: msg.params };
  }
  if ('result' in msg || 'error' in msg)
    return { kind: 'response', id: isId(msg.id) ? msg.id : null, result: msg.result, error: msg.error };
  return { kind: 'invalid', reason: NO_VARIANT };
}

/** Parses one frame's text. Returns the parser's complaint instead of throwing. */
export function parseMessage(text: string): IncomingMessage {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { kind: 'invalid', reason: err instanceof Error ? err.message : String(err) };
  }
  return classifyMessage(value);
}

export function encodeResult(id: RequestId, result: unknown): string {
  return `{"id":${JSON.stringify(id)},"result":${JSON.stringify(result)}}`;
}

export function encodeError(id: RequestId, code: number, message: string, data?: unknown): string {
  const dataPart = data === undefined ? '' : `"data":${JSON.stringify(data)},`;
  return `{"error":{"code":${code},${dataPart}"message":${JSON.stringify(message)}},"id":${JSON.stringify(id)}}`;
}

export function encodeNotification(method: string, params: unknown): string {
  return `{"method":${JSON.stringify(method)},"params":${JSON.stringify(params)}}`;
}

export function encodeRequest(id: RequestId, method: string, params: unknown): string {
  return `{"id":${JSON.stringify(id)},"method":${JSON.stringify(method)},"params":${JSON.stringify(params ?? null)}}`;
}

/**
 * A result whose JSON text is `before + base64(data) + after`. Large payloads (file contents,
 * output) are written straight into the outgoing frame instead of through JSON.stringify, which
 * would copy and scan megabytes of base64 that need no escaping.
 */
export class Base64Result {
  constructor(
    readonly before: string,
    readonly data: Buffer,
    readonly after: string,
  ) {}
}

/** Bytes encoded per step: a multiple of 3, small enough for its base64 to stay in cache. */
const ENCODE_STEP = 3 * 256 * 1024;

/**
 * The message `head + base64(data) + tail` (head and tail are ASCII JSON), as one buffer when small,
 * else as consecutive parts of one message: encoding a large payload slice by slice into small
 * buffers costs about half of writing it into one fresh buffer of tens of megabytes.
 */
export function frameWithBase64(head: string, data: Buffer, tail: string): Buffer | Buffer[] {
  if (data.length <= ENCODE_STEP) {
    const b64Length = Math.ceil(data.length / 3) * 4;
    const headLength = Buffer.byteLength(head);
    const out = Buffer.allocUnsafe(headLength + b64Length + Buffer.byteLength(tail));
    out.write(head, 0, 'utf8');
    out.write(data.toString('base64'), headLength, 'latin1');
    out.write(tail, headLength + b64Length, 'utf8');
    return out;
  }
  const parts: Buffer[] = [Buffer.from(head)];
  for (let off = 0; off < data.length; off += ENCODE_STEP) {
    parts.push(Buffer.from(data.toString('base64', off, Math.min(off + ENCODE_STEP, data.length)), 'latin1'));
  }
  parts.push(Buffer.from(tail));
  return parts;
}

/**
 * A result whose JSON text is `before + base64(chunks) + after`, sent while the chunks are still
 * being read (a large file): memory stays bounded and the client receives while the server reads.
 * Each chunk is only valid until the next one is requested (readers may reuse one buffer).
 */
export class Base64Stream {
  constructor(
    readonly before: string,
    readonly chunks: AsyncIterable<Buffer>,
    readonly after: string,
  ) {}
}

/** A message produced over time, sent as consecutive fragments of one message. */
export interface StreamedMessage {
  readonly parts: AsyncIterable<Buffer>;
  /** Releases what the parts would have been read from, for a message dropped before it was sent. */
  cancel(): Promise<void>;
}

/** Bytes encoded per part of a streamed message: 64 KiB of base64, small enough to come from the malloc heap. */
const STREAM_STEP = 3 * 16 * 1024;

async function* base64Parts(head: string, chunks: AsyncIterable<Buffer>, tail: string): AsyncGenerator<Buffer> {
  yield Buffer.from(head);
  // Base64 of consecutive pieces concatenates only at multiples of 3 bytes: carry the 1-2 left over.
  let carry: Buffer | undefined;
  for await (const read of chunks) {
    const chunk = carry ? Buffer.concat([carry, read]) : read;
    carry = undefined;
    const whole = chunk.length - (chunk.length % 3);
    for (let off = 0; off < whole; off += STREAM_STEP) {
      yield Buffer.from(chunk.toString('base64', off, Math.min(off + STREAM_STEP, whole)), 'latin1');
    }
    if (whole < chunk.length) carry = Buffer.from(chunk.subarray(whole));
  }
  if (carry) yield Buffer.from(carry.toString('base64'), 'latin1');
  yield Buffer.from(tail);
}

/** An outgoing message: text, its UTF-8 bytes, those bytes in consecutive parts, or parts still to come. */
export type OutgoingMessage = string | Buffer | Buffer[] | StreamedMessage;

export const isStreamed = (m: OutgoingMessage): m is StreamedMessage =>
  typeof m === 'object' && 'parts' in m && !Buffer.isBuffer(m) && !Array.isArray(m);

/** Bytes of a message known up front (0 for a streamed one, whose parts are counted as they are sent). */
export const messageLength = (m: OutgoingMessage): number =>
  typeof m === 'string' || Buffer.isBuffer(m) ? m.length : Array.isArray(m) ? m.reduce((n, b) => n + b.length, 0) : 0;

export function encodeResultFrame(id: RequestId, result: unknown): OutgoingMessage {
  if (result instanceof Base64Stream) {
    const { chunks } = result;
    return {
      parts: base64Parts(`{"id":${JSON.stringify(id)},"result":${result.before}`, chunks, `${result.after}}`),
      cancel: async () => void (await chunks[Symbol.asyncIterator]().return?.()),
    };
  }
  if (result instanceof Base64Result) {
    return frameWithBase64(`{"id":${JSON.stringify(id)},"result":${result.before}`, result.data, `${result.after}}`);
  }
  return encodeResult(id, result);
}
