/**
 * An unbounded queue read as an async iterable: producers `push` while one consumer iterates;
 * iteration ends once the channel is closed and drained.
 */
export class Channel<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private closed = false;
  private wake?: () => void;

  push(item: T): void {
    if (this.closed) throw new Error('push on a closed channel');
    this.items.push(item);
    this.notify();
  }

  /** No more items: the consumer ends once it has read those already pushed. */
  close(): void {
    this.closed = true;
    this.notify();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for (;;) {
      while (this.items.length > 0) yield this.items.shift()!;
      if (this.closed) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
