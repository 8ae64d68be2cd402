/**
 * Decodes one incoming frame. Frames that carry a large base64 field (`chunk` of process/output,
 * `dataBase64` of fs/readFile and fs/readBlock results) skip the generic path, which would decode
 * the whole frame to a string, parse megabytes of JSON and then decode the base64 again: the small
 * JSON skeleton around the field is parsed, and the field is decoded straight from the frame.
 * The decoded bytes are returned under `data` in place of the base64 field.
 */

const FIELDS = [Buffer.from('"chunk":"'), Buffer.from('"dataBase64":"')];
/** Below this size the generic path is as fast (measured: equal at 2 KB, 2x slower at 11 KB, 3x at 87 KB). */
const MIN_FAST_BYTES = 2 * 1024;
/** The field must start within this many bytes of the frame's start. */
const HEAD_WINDOW = 1024;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

export interface DecodedFrame {
  message: Record<string, unknown>;
}

function fastPath(frame: Buffer): Record<string, unknown> | undefined {
  if (frame.length < MIN_FAST_BYTES || frame[0] !== 0x7b /* { */) return undefined;
  const window = frame.subarray(0, Math.min(HEAD_WINDOW, frame.length));
  for (const field of FIELDS) {
    const at = window.indexOf(field);
    if (at <= 0 || frame[at - 1] === BACKSLASH) continue;
    const start = at + field.length;
    const end = frame.indexOf(QUOTE, start);
    if (end === -1) return undefined;
    const skeleton = `${frame.toString('utf8', 0, start)}${frame.toString('utf8', end)}`;
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(skeleton) as Record<string, unknown>;
    } catch {
      return undefined;
    }
    const holder = (message.params ?? message.result) as Record<string, unknown> | undefined;
    const name = field.toString().slice(1, field.indexOf(':') - 1);
    if (!holder || typeof holder !== 'object' || holder[name] !== '') return undefined;
    delete holder[name];
    holder.data = decodeBase64Span(frame, start, end);
    return message;
  }
  return undefined;
}

/** Symbols decoded per step: a multiple of 4, small enough for its string to stay in cache. */
const DECODE_STEP = 4 * 256 * 1024;

/** Decodes frame[start, end) (base64) straight into one buffer, a slice at a time. */
function decodeBase64Span(frame: Buffer, start: number, end: number): Buffer {
  let padding = 0;
  if (end > start && frame[end - 1] === 0x3d) padding++;
  if (end - 1 > start && frame[end - 2] === 0x3d) padding++;
  const out = Buffer.allocUnsafe(Math.floor(((end - start) * 3) / 4) - padding);
  let at = 0;
  for (let off = start; off < end; off += DECODE_STEP) {
    at += out.write(frame.toString('latin1', off, Math.min(off + DECODE_STEP, end)), at, 'base64');
  }
  return at === out.length ? out : out.subarray(0, at);
}

/** The frame's message, or undefined when it is not JSON. */
export function decodeFrame(frame: Buffer): Record<string, unknown> | undefined {
  const fast = fastPath(frame);
  if (fast) return fast;
  try {
    const value = JSON.parse(frame.toString('utf8')) as unknown;
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The bytes of a base64 field decoded by either path. */
export function fieldData(holder: Record<string, unknown>, field: 'chunk' | 'dataBase64'): Buffer {
  return Buffer.isBuffer(holder.data) ? holder.data : Buffer.from(String(holder[field] ?? ''), 'base64');
}
