import { CANCELLED_OUTCOME, OK_OUTCOME, type CallOutcome } from "./call-outcome.ts";

/**
 * @internal Wraps a response stream so that `onEnd` runs exactly once, when the stream ends:
 * OK after its last message, the failure's outcome when it throws, CANCELLED when the
 * consumer stops early (`return()`). `failure` classifies a thrown error; `around` runs each
 * pull, e.g. inside a request context.
 *
 * A hand-written iterator rather than an async generator: a generator's `finally` never runs
 * when `return()` is called before the first `next()`, which would leave the call unrecorded.
 */
export function observeStream<T>(
  source: AsyncIterable<T>,
  onEnd: (outcome: CallOutcome) => void,
  failure: (error: unknown) => CallOutcome,
  around: <R>(pull: () => R) => R = (pull) => pull(),
): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<T> {
      const iterator = source[Symbol.asyncIterator]();
      let ended = false;
      const end = (outcome: CallOutcome) => {
        if (ended) return;
        ended = true;
        onEnd(outcome);
      };
      return {
        async next() {
          try {
            const result = await around(() => iterator.next());
            if (result.done === true) end(OK_OUTCOME);
            return result;
          } catch (error) {
            end(failure(error));
            throw error;
          }
        },
        async return(value?: unknown) {
          end(CANCELLED_OUTCOME);
          if (iterator.return === undefined) return { done: true, value: value as never };
          return around(() => iterator.return!(value));
        },
      };
    },
  };
}

/** @internal Whether a response message is a stream. */
export function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === "function"
  );
}
