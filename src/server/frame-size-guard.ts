/**
 * Follows the frame headers of an incoming WebSocket byte stream and reports the first frame whose
 * payload exceeds `limit`. `ws` only bounds whole messages (maxPayload), so the per-frame bound is
 * checked here, on the same bytes, before the payload has even arrived.
 */
export class FrameSizeGuard {
  private header: number[] = [];
  private skip = 0;
  private tripped = false;

  constructor(
    private readonly limit: number,
    private readonly onOversized: (payloadLength: number) => void,
  ) {}

  feed(data: Uint8Array): void {
    let i = 0;
    while (i < data.length && !this.tripped) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, data.length - i);
        this.skip -= n;
        i += n;
        continue;
      }
      // The usual case: the whole header is in this chunk, read it in place.
      if (this.header.length === 0 && data.length - i >= 2) {
        const total = headerBytes(data[i + 1] as number);
        if (data.length - i >= total) {
          this.frame(payloadLength(data, i));
          i += total;
          continue;
        }
      }
      this.header.push(data[i] as number);
      i++;
      if (this.header.length < 2 || this.header.length < headerBytes(this.header[1] as number)) continue;
      const length = payloadLength(this.header, 0);
      this.header = [];
      this.frame(length);
    }
  }

  private frame(length: number): void {
    if (length > this.limit) {
      this.tripped = true;
      this.onOversized(length);
      return;
    }
    this.skip = length;
  }
}

/** A frame header's size, from its second byte: 2, the extended length, the mask key. */
function headerBytes(b1: number): number {
  const len7 = b1 & 0x7f;
  return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
}

/** The payload length of the complete header starting at `at`. */
function payloadLength(h: ArrayLike<number>, at: number): number {
  const len7 = (h[at + 1] as number) & 0x7f;
  if (len7 < 126) return len7;
  if (len7 === 126) return ((h[at + 2] as number) << 8) | (h[at + 3] as number);
  let n = 0;
  for (let k = 2; k < 10; k++) n = n * 256 + (h[at + k] as number);
  return n;
}
