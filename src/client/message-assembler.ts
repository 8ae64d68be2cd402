import { decodeFrame } from './frame-decoder.js';

/**
 * Assembles one incoming message from its payload as it arrives off the socket, and decodes a large
 * base64 field (`chunk`, `dataBase64`) while the rest of the message is still in flight.
 *
 * A 50 MB fs/readFile result is 67 MB of base64 in a thousand fragments. Joined first and decoded
 * after, the client spent ~130 ms past the last byte (a 67 MB join, a 67 MB string copy, the decode)
 * and held the message three times over. Decoded piece by piece, the work overlaps the transfer and
 * only the decoded bytes are kept. Messages without such a field near their start are joined and
 * parsed whole by decodeFrame.
 */

const FIELDS = [Buffer.from('"chunk":"'), Buffer.from('"dataBase64":"')];
/** The field must start within this many bytes of the message's start. */
const HEAD_WINDOW = 1024;
const PROBE_BYTES = HEAD_WINDOW + 16;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
/** Base64 symbols decoded per string: a multiple of 4, small enough for the string to stay in cache. */
const DECODE_STEP = 256 * 1024;
const MIN_OUTPUT = 4 * 1024;
/**
 * Once a message outgrows its first frame (it comes in fragments, whose total is not announced),
 * its output is moved to a buffer at least this large: memory that is never written costs address
 * space, not RAM, and a large read then needs no more copies. Past it, the output doubles.
 */
const FRAGMENTED_OUTPUT = 64 * 1024 * 1024;

export class MessageAssembler {
  private state: 'probe' | 'collect' | 'base64' | 'tail' = 'probe';
  private parts: Buffer[] = [];
  private partsBytes = 0;
  /** The message up to and including the field's opening quote. */
  private prefix: Buffer | undefined;
  private field = '';
  private readonly tail: Buffer[] = [];
  /** Decoded bytes so far: out[0, used). */
  private out: Buffer | undefined;
  private used = 0;
  /** Base64 symbols of an unfinished group of four, carried to the next piece. */
  private readonly carry = Buffer.alloc(4);
  private carryLen = 0;

  /**
   * `piece` is part of the payload (kept, not copied: the caller must not reuse its memory);
   * `expectedBytes` how many more payload bytes the current frame announces, a size hint.
   */
  feed(piece: Buffer, expectedBytes: number): void {
    if (piece.length === 0) return;
    switch (this.state) {
      case 'probe':
      case 'collect':
        this.parts.push(piece);
        this.partsBytes += piece.length;
        if (this.state === 'probe' && this.partsBytes >= PROBE_BYTES) this.probe(expectedBytes);
        return;
      case 'base64':
        return this.decodePiece(piece, expectedBytes);
      case 'tail':
        this.tail.push(piece);
    }
  }

  /** The message, or undefined when it is not a JSON object. */
  finish(): Record<string, unknown> | undefined {
    if (this.state === 'probe' || this.state === 'collect') return decodeFrame(this.joinedParts());
    if (this.state === 'base64') return undefined; // the field's string never ended: not JSON
    this.flushCarry();
    const data = this.decoded();
    const prefix = this.prefix as Buffer;
    const rest = this.tail.length === 1 ? (this.tail[0] as Buffer) : Buffer.concat(this.tail);
    let message: Record<string, unknown> | undefined;
    try {
      message = JSON.parse(`${prefix.toString('utf8')}${rest.toString('utf8')}`) as Record<string, unknown>;
    } catch {
      message = undefined;
    }
    const holder = (message?.params ?? message?.result) as Record<string, unknown> | undefined;
    if (message && holder && typeof holder === 'object' && holder[this.field] === '') {
      delete holder[this.field];
      holder.data = data;
      return message;
    }
    // The field was somewhere else: parse the message whole, with the field re-encoded.
    return decodeFrame(Buffer.concat([prefix, Buffer.from(data.toString('base64'), 'latin1'), rest]));
  }

  private joinedParts(): Buffer {
    return this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts, this.partsBytes);
  }

  /** Enough of the message has come to see whether it carries a base64 field near its start. */
  private probe(expectedBytes: number): void {
    const head = this.joinedParts();
    if (head[0] === 0x7b /* { */) {
      const window = head.subarray(0, HEAD_WINDOW);
      for (const name of FIELDS) {
        const at = window.indexOf(name);
        if (at <= 0 || head[at - 1] === BACKSLASH) continue;
        const start = at + name.length;
        this.prefix = head.subarray(0, start);
        this.field = name.toString('latin1').slice(1, name.indexOf(':') - 1);
        this.state = 'base64';
        this.parts = [];
        this.partsBytes = 0;
        this.decodePiece(head.subarray(start), expectedBytes);
        return;
      }
    }
    this.parts = [head];
    this.state = 'collect';
  }

  private decodePiece(piece: Buffer, expectedBytes: number): void {
    const quote = piece.indexOf(QUOTE);
    let body = quote === -1 ? piece : piece.subarray(0, quote);
    if (this.carryLen > 0) {
      const take = Math.min(4 - this.carryLen, body.length);
      body.copy(this.carry, this.carryLen, 0, take);
      this.carryLen += take;
      body = body.subarray(take);
      if (this.carryLen === 4) this.flushCarry();
    }
    const whole = body.length - (body.length % 4);
    for (let off = 0; off < whole; off += DECODE_STEP) {
      const end = Math.min(off + DECODE_STEP, whole);
      this.write(body.toString('latin1', off, end), ((end - off) / 4) * 3, expectedBytes + (whole - end));
    }
    if (whole < body.length) {
      body.copy(this.carry, 0, whole);
      this.carryLen = body.length - whole;
    }
    if (quote !== -1) {
      this.state = 'tail';
      this.tail.push(piece.subarray(quote));
    }
  }

  private flushCarry(): void {
    if (this.carryLen === 0) return;
    const symbols = this.carry.toString('latin1', 0, this.carryLen);
    this.carryLen = 0;
    this.write(symbols, 3, 0);
  }

  /** Decodes `symbols` (at most `maxBytes` of output), growing the output when it is full. */
  private write(symbols: string, maxBytes: number, moreSymbols: number): void {
    const out = this.out;
    if (!out || out.length - this.used < maxBytes) {
      // The frame's announced length sizes the first buffer (the whole message when it is not fragmented).
      const hinted = this.used + maxBytes + Math.ceil((moreSymbols * 3) / 4);
      const next = Buffer.allocUnsafe(out ? Math.max(hinted, FRAGMENTED_OUTPUT, out.length * 2) : Math.max(MIN_OUTPUT, hinted));
      if (out && this.used > 0) out.copy(next, 0, 0, this.used);
      this.out = next;
    }
    this.used += (this.out as Buffer).write(symbols, this.used, 'base64');
  }

  /** The decoded bytes; copied out when they would hold on to a mostly empty buffer. */
  private decoded(): Buffer {
    const out = this.out;
    this.out = undefined;
    if (!out || this.used === 0) return Buffer.alloc(0);
    const data = out.subarray(0, this.used);
    return this.used * 2 < out.length ? Buffer.from(data) : data;
  }
}
