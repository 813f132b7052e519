/**
 * Computations that are synchronous unless they meet a promise (an async reward function): a coroutine
 * (`Steps<T>`) yields each promise it must wait for and receives its value. `runSync` drives one where
 * nothing may wait (train(), evaluate()) and says what returned a promise; `runAsync` awaits.
 */

/** A promise a coroutine waits for, and what it is (for the message when nothing can wait). */
export interface Wait {
  promise: Promise<unknown>;
  what: string;
}

/** A computation that may have to wait: yields Waits, receives each one's resolved value, returns T. */
export type Steps<T> = Generator<Wait, T, unknown>;

/** Thrown by runSync when a computation has to wait on a promise. */
export class AsyncRewardError extends Error {
  override name = 'AsyncRewardError';
}

export function asyncMessage(what: string): string {
  return `${what} returned a Promise (asynchronous): train() and evaluate() cannot wait for it; use \`await trainer.trainAsync()\` (and evaluateAsync())`;
}

/** Runs a coroutine to its end without waiting; a yielded promise is an AsyncRewardError naming what returned it. */
export function runSync<T>(steps: Steps<T>): T {
  const r = steps.next();
  if (!r.done) {
    r.value.promise.catch(() => {}); // nobody will wait for it: its rejection must not be unhandled
    const err = new AsyncRewardError(asyncMessage(r.value.what));
    steps.return(undefined as T);
    throw err;
  }
  return r.value;
}

/** Runs a coroutine, awaiting each promise it yields (a rejection is thrown back into it). */
export async function runAsync<T>(steps: Steps<T>): Promise<T> {
  let r = steps.next();
  while (!r.done) {
    let value: unknown;
    try {
      value = await r.value.promise;
    } catch (e) {
      r = steps.throw(e);
      continue;
    }
    r = steps.next(value);
  }
  return r.value;
}

