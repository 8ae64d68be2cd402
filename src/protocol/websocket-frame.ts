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
