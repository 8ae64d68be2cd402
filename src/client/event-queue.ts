/** An unbounded async queue that ends after `end()`, or fails after `fail()`; one consumer. */
export class EventQueue<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private waiting: { resolve(r: IteratorResult<T>): void; reject(err: Error): void } | undefined;
  private ended = false;
  private error: Error | undefined;

  push(item: T): void {
    if (this.ended) return;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      w.resolve({ value: item, done: false });
    } else this.items.push(item);
  }

  end(): void {
    this.ended = true;
    this.settle();
  }

  /** Ends the queue with an error: the consumer gets what was queued, then `err` is thrown. */
  fail(err: Error): void {
    if (this.ended) return;
    this.error = err;
    this.ended = true;
    this.settle();
  }

  private settle(): void {
    if (!this.waiting || this.items.length > 0) return;
    const w = this.waiting;
    this.waiting = undefined;
    if (this.error) w.reject(this.error);
    else w.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.items.length > 0) return Promise.resolve({ value: this.items.shift() as T, done: false });
        if (this.ended) {
          const err = this.error;
          this.error = undefined;
          return err ? Promise.reject(err) : Promise.resolve({ value: undefined, done: true });
        }
        return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
      },
      return: () => {
        this.ended = true;
        this.error = undefined;
        this.items = [];
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
