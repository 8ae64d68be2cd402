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
      this.header.push(data[i] as number);
      i++;
      const length = this.headerComplete();
      if (length === undefined) continue;
      this.header = [];
      if (length > this.limit) {
        this.tripped = true;
        this.onOversized(length);
        return;
      }
      this.skip = length;
    }
  }

  /** The payload length once the header (with extended length and mask key) is complete. */
  private headerComplete(): number | undefined {
    const h = this.header;
    if (h.length < 2) return undefined;
    const b1 = h[1] as number;
    const masked = (b1 & 0x80) !== 0;
    const len7 = b1 & 0x7f;
    const extra = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
    const total = 2 + extra + (masked ? 4 : 0);
    if (h.length < total) return undefined;
    if (len7 < 126) return len7;
    if (len7 === 126) return ((h[2] as number) << 8) | (h[3] as number);
    let n = 0;
    for (let k = 2; k < 10; k++) n = n * 256 + (h[k] as number);
    return n;
  }
}
