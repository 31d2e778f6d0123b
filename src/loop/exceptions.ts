/**
 * Where a loop's unhandled exceptions go (asyncio's exception handler): a
 * callback that threw, an fd closed while watched, a Future whose exception
 * nobody retrieved.
 *
 * @module
 */
import { Future, Task } from '../coro/index.js';
import type { ExceptionContext, Runnable } from '../coro/types.js';
import { Handle } from './handle.js';

/** Unretrieved Futures tracked before the collected ones are swept out. */
const SWEEP_AT = 1024;

/** A loop's handler of unhandled exceptions and its record of unretrieved ones. */
export class ExceptionReporter<L> {
  #handler: ((loop: L, context: ExceptionContext) => void) | null = null;
  readonly #logger: (message: string) => void;
  readonly #unretrieved = new Set<WeakRef<Future<unknown>>>();

  constructor(logger: (message: string) => void) {
    this.#logger = logger;
  }

  /** Debug mode: logs `item`, which took `took` milliseconds (slow callback). */
  logSlow(item: Runnable, took: number): void {
    // A handle, a done Future's callbacks, or a pending one's step
    // (a Task's coroutine, a socket operation's retry).
    const what =
      item instanceof Handle
        ? item.describe()
        : item instanceof Future && item.done()
          ? `the done callbacks of ${String(item)}`
          : String(item);
    this.log({ message: `Executing ${what} took ${took.toFixed(1)} ms (slow callback)` });
  }

  get handler(): ((loop: L, context: ExceptionContext) => void) | null {
    return this.#handler;
  }

  set handler(handler: ((loop: L, context: ExceptionContext) => void) | null) {
    this.#handler = handler;
  }

  /** Logs through the logger: the context's message and the exception's stack. */
  log(context: ExceptionContext): void {
    const { exception } = context;
    const detail =
      exception instanceof Error
        ? (exception.stack ?? String(exception))
        : exception === undefined
          ? ''
          : String(exception);
    this.#logger(detail === '' ? context.message : `${context.message}\n${detail}`);
  }

  /** Hands `context` to the handler, or logs it when none is set or the handler throws. */
  report(loop: L, context: ExceptionContext): void {
    const handler = this.#handler;
    if (handler === null) {
      this.log(context);
      return;
    }
    try {
      handler(loop, context);
    } catch (exception) {
      this.log({ message: 'Unhandled error in exception handler', exception });
      this.log(context);
    }
  }

  /** Remembers a Future whose exception may never be retrieved (weakly: collected ones report themselves). */
  track(future: Future<unknown>): void {
    this.#unretrieved.add(new WeakRef(future));
    if (this.#unretrieved.size > SWEEP_AT) {
      for (const ref of this.#unretrieved) {
        if (ref.deref()?.hasUnretrievedException() !== true) this.#unretrieved.delete(ref);
      }
    }
  }

  /** Reports every tracked Future still holding an unretrieved exception, and forgets them all. */
  reportUnretrieved(loop: L): void {
    for (const ref of this.#unretrieved) {
      const future = ref.deref();
      if (future?.hasUnretrievedException() === true) {
        this.report(loop, {
          message: `${future instanceof Task ? 'Task' : 'Future'} exception was never retrieved`,
          exception: future.exception(),
          future,
        });
      }
    }
    this.#unretrieved.clear();
  }
}
