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
