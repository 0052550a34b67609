/** Small helpers for promises whose failure is dealt with somewhere other than where they start. */

const nothing = (): void => undefined;

/**
 * `promise` itself, marked as awaited later: its rejection is surfaced where it is awaited, so
 * until then it is not an unhandled rejection (which would end the process). Use it for work
 * started early to overlap a round trip and awaited further on.
 */
export function awaitedLater<T>(promise: Promise<T>): Promise<T> {
  promise.catch(nothing);
  return promise;
}

/**
 * Resolves once `promise` has settled, either way: for waiting on work whose failure is reported
 * elsewhere (to another caller, or through a stream it destroys), as clean-up does.
 */
export function settled(promise: PromiseLike<unknown> | undefined): Promise<void> {
  return Promise.resolve(promise).then(nothing, nothing);
}
