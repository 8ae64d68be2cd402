import type { Logger } from 'pino';
import { isStreamed, messageLength, type OutgoingMessage, type StreamedMessage } from '../protocol/index.js';
import type { ServerTransport } from './transport.js';

interface Queued {
  message: OutgoingMessage;
  size: number;
}

/** Unflushed bytes of a streamed message above which reading more of it waits. */
const STREAM_IN_FLIGHT_BYTES = 4 * 1024 * 1024;
/** A streamed message that ends within this many bytes is sent whole. */
const WHOLE_MESSAGE_BYTES = 1024 * 1024;
const noop = (): void => undefined;

/** A message that will never be sent: a streamed one releases its source (an open file). */
function dropped(message: OutgoingMessage): void {
  if (isStreamed(message)) void message.cancel().catch(noop);
}

export interface OutboxLimits {
  /** Unflushed bytes above which the session's processes are paused... */
  sendHighWaterBytes: number;
  /** ...and at or below which they resume. */
  sendLowWaterBytes: number;
}

/** What send-side backpressure slows down: the session's processes. */
export interface OutputFlow {
  pauseOutput(): void;
  resumeOutput(): void;
}

/**
 * Everything one connection sends, in order: corking (the messages of one event leave in one
 * write), send-side backpressure (too many unflushed bytes pause the session's processes), and
 * streamed messages (a large file read while it goes out, nothing interleaved with its parts).
 */
export class Outbox {
  private unflushedBytes = 0;
  private outputPaused = false;
  /** Messages waiting for a streamed message to finish; undefined when none is being sent. */
  private queue: Queued[] | undefined;
  private corked = false;
  private closed = false;
  /** Aborted on close: a pump waiting for its parts to drain stops waiting. */
  private readonly aborter = new AbortController();

  constructor(
    private readonly transport: ServerTransport,
    private readonly limits: OutboxLimits,
    /** The flow to pause; undefined before the session exists. */
    private readonly flow: () => OutputFlow | undefined,
    private readonly logger: Logger,
  ) {}

  /** A response (or error): it leaves at once, with whatever was corked before it. */
  respond(message: OutgoingMessage): void {
    this.send(message);
    this.uncork();
  }

  /** A notification: corked until the current callback's work is done. */
  notify(message: OutgoingMessage): void {
    this.corkForTurn();
    this.send(message);
  }

  /**
   * Sends a message, or queues it behind a streamed message still being sent (a message's parts
   * may not be interleaved with other messages). Queued bytes count as unflushed, so a busy
   * process is paused rather than queued without bound while a large file goes out.
   */
  send(message: OutgoingMessage): void {
    if (this.closed) return dropped(message);
    const size = messageLength(message);
    this.counted(size);
    if (this.queue) this.queue.push({ message, size });
    else this.dispatch(message, size);
  }

  /** The transport is gone: nothing more is sent, and queued messages release their sources. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.aborter.abort();
    for (const { message } of this.queue?.splice(0) ?? []) dropped(message);
  }

  /**
   * Notifications are corked until the current callback's work is done (process.nextTick), so the
   * messages one event produces (`exited` and `closed`, an output and the long-poll read it answers)
   * leave in one write: one system call and one client wake-up instead of one per message. Not
   * until the end of the loop turn: that comes after whatever else the turn holds and was measured
   * to delay a notification by 0.3 ms. A response uncorks at once.
   */
  private corkForTurn(): void {
    if (this.corked) return;
    this.corked = true;
    this.transport.cork();
    process.nextTick(() => this.uncork());
  }

  private uncork(): void {
    if (!this.corked) return;
    this.corked = false;
    this.transport.uncork();
  }

  private dispatch(message: OutgoingMessage, size: number): void {
    if (isStreamed(message)) {
      this.queue = [];
      void this.pump(message);
    } else if (Array.isArray(message)) {
      const last = message.length - 1;
      message.forEach((part, i) => this.transport.sendPart(part, i === last, i === last ? () => this.flushed(size) : noop));
    } else this.transport.send(message, () => this.flushed(size));
  }

  private counted(size: number): void {
    this.unflushedBytes += size;
    if (this.outputPaused || this.unflushedBytes <= this.limits.sendHighWaterBytes) return;
    const flow = this.flow();
    if (!flow) return;
    this.outputPaused = true;
    flow.pauseOutput();
  }

  private flushed(size: number): void {
    this.unflushedBytes -= size;
    if (this.outputPaused && this.unflushedBytes <= this.limits.sendLowWaterBytes) {
      this.outputPaused = false;
      this.flow()?.resumeOutput();
    }
  }

  /**
   * Sends a streamed message: whole when it turns out small (one frame, like any other message),
   * else part by part, keeping at most STREAM_IN_FLIGHT_BYTES unflushed; then what queued behind it.
   */
  private async pump(message: StreamedMessage): Promise<void> {
    const parts = message.parts[Symbol.asyncIterator]();
    let inFlight = 0;
    let wake: (() => void) | undefined;
    const stopWaiting = (): void => wake?.();
    this.aborter.signal.addEventListener('abort', stopWaiting);
    const sendPart = (part: Buffer, last: boolean): void => {
      inFlight += part.length;
      this.counted(part.length);
      this.transport.sendPart(part, last, () => {
        inFlight -= part.length;
        this.flushed(part.length);
        if (wake && inFlight <= STREAM_IN_FLIGHT_BYTES / 2) wake();
      });
    };
    try {
      const gathered: Buffer[] = [];
      let gatheredBytes = 0;
      let current = await parts.next();
      while (!current.done && gatheredBytes < WHOLE_MESSAGE_BYTES) {
        gathered.push(current.value);
        gatheredBytes += current.value.length;
        current = await parts.next();
      }
      if (current.done) {
        const whole = Buffer.concat(gathered, gatheredBytes);
        this.counted(whole.length);
        this.transport.send(whole, () => this.flushed(whole.length));
      } else {
        for (const part of gathered) sendPart(part, false);
      }
      while (!current.done && !this.closed) {
        const part = current.value;
        const next = await parts.next();
        sendPart(part, next.done === true);
        if (inFlight > STREAM_IN_FLIGHT_BYTES) await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        current = next;
      }
      if (!current.done) await parts.return?.();
    } catch (err) {
      // Part of the response may be out, and its id is not known here: the only honest end is to
      // drop the connection (the client's request fails as disconnected, not with partial data).
      this.logger.error({ err }, 'a streamed response failed midway; closing the connection');
      this.transport.close(1011, 'response failed midway');
      return;
    } finally {
      this.aborter.signal.removeEventListener('abort', stopWaiting);
    }
    const queued = this.queue ?? [];
    this.queue = undefined;
    let next = queued.shift();
    for (; next && !this.queue; next = queued.shift()) this.dispatch(next.message, next.size);
    // Another streamed message started: what is left waits for it, in order.
    const queue = this.queue as Queued[] | undefined;
    if (queue && next) queue.push(next, ...queued);
  }
}
