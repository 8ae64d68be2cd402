import { frameHeaderBytes, framePayloadLength } from '../protocol/websocket-frame.js';

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
        const total = frameHeaderBytes(data[i + 1] as number);
        if (data.length - i >= total) {
          this.frame(framePayloadLength(data, i));
          i += total;
          continue;
        }
      }
      this.header.push(data[i] as number);
      i++;
      if (this.header.length < 2 || this.header.length < frameHeaderBytes(this.header[1] as number)) continue;
      const length = framePayloadLength(this.header, 0);
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
