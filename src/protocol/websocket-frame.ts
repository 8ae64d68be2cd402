/** WebSocket frame headers (RFC 6455 §5.2), read by the server's frame-size guard and the client. */

/** The size of a frame header, from its second byte: 2 bytes, the extended length, the mask key. */
export function frameHeaderBytes(secondByte: number): number {
  const len7 = secondByte & 0x7f;
  return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (secondByte & 0x80 ? 4 : 0);
}

/** The payload length of the complete frame header that starts at `at`. */
export function framePayloadLength(header: ArrayLike<number>, at: number): number {
  const len7 = (header[at + 1] as number) & 0x7f;
  if (len7 < 126) return len7;
  if (len7 === 126) return ((header[at + 2] as number) << 8) | (header[at + 3] as number);
  let n = 0;
  for (let k = 2; k < 10; k++) n = n * 256 + (header[at + k] as number);
  return n;
}

/** The header size of a frame carrying `length` payload bytes (with a mask key when `masked`). */
export function headerBytesFor(length: number, masked: boolean): number {
  return (length < 126 ? 2 : length < 65536 ? 4 : 10) + (masked ? 4 : 0);
}

/**
 * Writes a frame header at the start of `target` (which holds at least headerBytesFor(length,
 * masked) bytes): `first` is the FIN bit and opcode. Returns where the mask key starts when
 * masked (the caller fills it), else the header size.
 */
export function writeFrameHeader(target: Buffer, first: number, length: number, masked: boolean): number {
  target[0] = first;
  const maskBit = masked ? 0x80 : 0;
  if (length < 126) {
    target[1] = maskBit | length;
    return 2;
  }
  if (length < 65536) {
    target[1] = maskBit | 126;
    target.writeUInt16BE(length, 2);
    return 4;
  }
  target[1] = maskBit | 127;
  target.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
  target.writeUInt32BE(length >>> 0, 6);
  return 10;
}
