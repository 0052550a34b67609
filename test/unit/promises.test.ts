/** The helpers for promises whose failure is dealt with elsewhere, and the channel the group expander feeds. */
import { Channel } from '../../src/util/channel';
import { awaitedLater, settled } from '../../src/util/promises';

describe('awaitedLater and settled', () => {
  it('awaitedLater: no unhandled rejection meanwhile, and the rejection still reaches whoever awaits', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const failing = awaitedLater(Promise.reject(new Error('late')));
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
      await expect(failing).rejects.toThrow('late');
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('settled: resolves once the promise settles, either way', async () => {
    let done = false;
    const waiting = settled(new Promise((_, reject) => setImmediate(() => reject(new Error('x'))))).then(
      () => (done = true),
    );
    expect(done).toBe(false);
    await waiting;
    expect(done).toBe(true);
    await expect(settled(undefined)).resolves.toBeUndefined();
  });
});

describe('Channel', () => {
  it('hands on items pushed before and while it is read, and ends once closed and drained', async () => {
    const channel = new Channel<number>();
    channel.push(1);
    const read: number[] = [];
    const reading = (async () => {
      for await (const n of channel) read.push(n);
    })();
    await new Promise((resolve) => setImmediate(resolve));
    channel.push(2);
    channel.push(3);
    channel.close();
    await reading;
    expect(read).toEqual([1, 2, 3]);
    expect(() => channel.push(4)).toThrow(/closed/);
  });
});
