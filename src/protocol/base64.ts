const SYMBOLS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

export class Base64Error extends Error {}

/**
 * Strict, canonical standard base64 with padding, reporting the first problem in the reference
 * decoder's words (`Invalid symbol 32, offset 3.`). Buffer.from() would silently skip bad input.
 */
export function decodeBase64Strict(text: string): Buffer {
  // Fast path, native throughout: input that re-encodes to itself is canonical, padded base64.
  const data = Buffer.from(text, 'base64');
  if (data.toString('base64') === text) return data;
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 61 /* = */ && text.length - end < 2) end--;
  for (let i = 0; i < end; i++) {
    if (SYMBOLS.indexOf(text.charAt(i)) === -1) throw new Base64Error(`Invalid symbol ${text.charCodeAt(i)}, offset ${i}.`);
  }
  if (end % 4 === 1) throw new Base64Error(`Invalid input length: ${end}`);
  if (text.length % 4 !== 0) throw new Base64Error('Invalid padding');
  // The last symbol of a partial quantum must not carry bits that would be dropped.
  const tail = end % 4;
  if (tail > 0) {
    const last = SYMBOLS.indexOf(text.charAt(end - 1));
    const unusedBits = tail === 2 ? 0b1111 : 0b11;
    if ((last & unusedBits) !== 0) throw new Base64Error(`Invalid last symbol ${text.charCodeAt(end - 1)}, offset ${end - 1}.`);
  }
  return Buffer.from(text, 'base64');
}

/** Base64 symbols decoded per step when decoding from bytes: a multiple of 4. */
const BYTES_STEP = 4 * 1024 * 1024;

/**
 * decodeBase64Strict for base64 that is still bytes (ASCII), without making it one string first.
 * Returns undefined for anything that is not canonical, padded base64; decodeBase64Strict then
 * words the problem. Node's decoder skips characters it does not know and accepts the URL-safe
 * alphabet, so a short count, `-` or `_` mean the input was not strict base64.
 */
export function decodeBase64BytesStrict(b64: Buffer): Buffer | undefined {
  const length = b64.length;
  if (length === 0 || length % 4 !== 0 || b64.indexOf(0x2d) !== -1 || b64.indexOf(0x5f) !== -1) return undefined;
  const padding = b64[length - 1] === 0x3d ? (b64[length - 2] === 0x3d ? 2 : 1) : 0;
  const body = length - 4;
  const out = Buffer.allocUnsafe((length / 4) * 3);
  let written = 0;
  for (let off = 0; off < body; off += BYTES_STEP) {
    const end = Math.min(off + BYTES_STEP, body);
    const n = out.write(b64.toString('latin1', off, end), written, 'base64');
    if (n !== ((end - off) / 4) * 3) return undefined;
    written += n;
  }
  // The last quantum carries the padding: it must re-encode to itself (no stray bits, `=` only at the end).
  const last = b64.toString('latin1', body);
  const tail = Buffer.from(last, 'base64');
  if (tail.length !== 3 - padding || tail.toString('base64') !== last) return undefined;
  tail.copy(out, written);
  return out.subarray(0, written + tail.length);
}
