/**
 * Future: a result that will exist later, as asyncio's. Done callbacks run
 * through the loop in its next iteration, never inside setResult: the
 * Future queues itself once (allocating nothing) and runs them in order.
 * (A socket operation completed by the loop, already inside a loop
 * callback, runs them at once: see resolveFromLoop.) A Future is thenable
 * (`await fut`) and iterable (`const x = yield* fut` in a generator
 * coroutine, typed as the result).
 *
 * @module
 */
import { CancelledError, codedTypeError, InvalidStateError } from './errors.js';
import { getRunningLoop } from './running.js';
import { type LoopLike, RUN, WAKE } from './types.js';

// The states. The outcome of each lives in one field (#value): the result,
// the exception, or the cancel message -- fewer fields to initialise for the
// futures made per socket operation.
const PENDING = 0;
const FINISHED = 1;
// Failed, and nobody has looked at the exception yet (it is reported if
// nobody does); RETRIEVED once somebody has.
const FAILED = 2;
const RETRIEVED = 3;
const CANCELLED = 4;

/**
 * Called when an async function awaits a Future (then() is how `await`
 * subscribes): lets a Task running that function know what to cancel.
 */
let awaitHook: ((future: Future<unknown>) => void) | null = null;

/** @internal */
export function setAwaitHook(hook: (future: Future<unknown>) => void): void {
  awaitHook = hook;
}

// What next() returns for a finished Future<void> (yield* reads it at once).
const DONE_VOID: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/** A done callback: receives the future. */
export type DoneCallback<F> = (future: F) => void;

/**
 * @internal What waits for a Future in place of a done callback: a Task
 * ({@link Future.wake}). It is called as a done callback would be, in order
 * with them, and allocates no closure per wait.
 */
export interface Waiter {
  [WAKE](future: Future<unknown>): void;
}

/**
 * @internal What settles a pending Future from outside (a socket
 * operation): told when the Future is cancelled, so that it stops.
 */
export interface CancelHook {
  futureCancelled(future: Future<unknown>): void;
}

// A done callback, or a Task waiting (stored without their `this` type so a
// Task stays assignable to Future<T>).
type Done = DoneCallback<never> | Waiter;

// Reports an exception nobody retrieved when its Future is collected. The
// held value must not reference the Future, or it would never be collected.
interface Unretrieved {
  loop: LoopLike;
  exception: unknown;
  what: string;
}
const unretrievedRegistry = new FinalizationRegistry<Unretrieved>(({ loop, exception, what }) => {
  if (loop.isClosed()) return;
  loop.callExceptionHandler({ message: `${what} exception was never retrieved`, exception });
});

/**
 * A result that will be set later, by `setResult`, `setException` or `cancel`.
 *
 * @example
 * ```ts
 * const fut = loop.createFuture<number>();
 * loop.callLater(10, () => fut.setResult(42));
 * function* main() { return (yield* fut) + 1; }   // 43
 * ```
 */
export class Future<T = unknown> implements PromiseLike<T> {
  // Set in the constructor, not by field initialisers: V8 calls those as a
  // function of their own, one more to inline per Future made.
  #loop: LoopLike;
  #state: number;
  // The outcome: the result, the exception or the cancel message. While
  // pending, the CancelHook of the operation that will settle it, if any
  // (one field for both: a socket operation's Future has no more fields to
  // initialise than any other).
  #value: unknown;
  // Done callbacks and waiting Tasks, in order: one (most futures have one
  // waiter, a Task), else an array of them.
  #callbacks: Done | Done[] | null;

  /**
   * @param loop - the loop whose callSoon runs the done callbacks (default: the running loop)
   * @throws {LoopStateError} ERR_NO_RUNNING_LOOP without a loop and none running
   */
  constructor(loop?: LoopLike) {
    this.#loop = loop ?? getRunningLoop();
    this.#state = PENDING;
    this.#value = undefined;
    this.#callbacks = null;
  }

  /** The loop this future belongs to. */
  get loop(): LoopLike {
    return this.#loop;
  }

  /** True once it has a result, an exception, or was cancelled. */
  done(): boolean {
    return this.#state !== PENDING;
  }

  /** True once cancelled. */
  cancelled(): boolean {
    return this.#state === CANCELLED;
  }

  /**
   * The result.
   *
   * @throws {CancelledError} when cancelled
   * @throws the exception set with setException
   * @throws {InvalidStateError} while pending
   */
  result(): T {
    const state = this.#state;
    if (state === FINISHED) return this.#value as T;
    if (state === FAILED || state === RETRIEVED) {
      this.#markRetrieved();
      throw this.#value;
    }
    if (state === CANCELLED) throw this.#makeCancelledError();
    throw new InvalidStateError('Result is not set.');
  }

  /**
   * The exception, or null when it has a result.
   *
   * @throws {CancelledError} when cancelled
   * @throws {InvalidStateError} while pending
   */
  exception(): unknown {
    if (this.#state === CANCELLED) throw this.#makeCancelledError();
    if (this.#state === PENDING) throw new InvalidStateError('Exception is not set.');
    if (this.#state === FINISHED) return null;
    this.#markRetrieved();
    return this.#value;
  }

  /**
   * Sets the result and schedules the done callbacks.
   *
   * @throws {InvalidStateError} when already done
   */
  setResult(value: T): void {
    if (this.#state !== PENDING) throw new InvalidStateError(`invalid state: ${this.#describeState()}`);
    this.#value = value;
    this.#state = FINISHED;
    this.#scheduleCallbacks();
  }

  /**
   * @internal For a completion that already runs as a loop callback (a
   * socket operation woken by readiness): sets the result and runs the done
   * callbacks now rather than in the next iteration: the waiting Task
   * resumes in the same pass, one trip through the ready queue fewer.
   * Callbacks still never run inside a user's setResult.
   */
  resolveFromLoop(value: T): void {
    if (this.#state !== PENDING) throw new InvalidStateError(`invalid state: ${this.#describeState()}`);
    this.#value = value;
    this.#state = FINISHED;
    this.runDoneCallbacks();
  }

  /**
   * Sets an exception and schedules the done callbacks. If nobody retrieves
   * it (result(), exception(), await), it is reported to the loop's
   * exception handler when this future is collected or the loop closes.
   *
   * @throws {InvalidStateError} when already done
   * @throws {TypeError} when given a CancelledError (use cancel())
   */
  setException(exception: unknown): void {
    if (this.#state !== PENDING) throw new InvalidStateError(`invalid state: ${this.#describeState()}`);
    if (exception instanceof CancelledError)
      throw codedTypeError('CancelledError cannot be set as an exception: cancel() instead', 'ERR_INVALID_ARG_VALUE');
    this.#value = exception;
    this.#state = FAILED;
    // Format the stack now: until then V8 keeps the raw call sites, whose
    // receivers include this future's Task, so the registry's strong hold on
    // the exception would keep the Task alive and never report it.
    if (exception instanceof Error) void exception.stack;
    unretrievedRegistry.register(this, { loop: this.#loop, exception, what: this.describeKind() }, this);
    this.#loop.trackUnretrieved(this);
    this.#scheduleCallbacks();
  }

  /**
   * Cancels a pending future and schedules its done callbacks.
   *
   * @param message - the CancelledError's message
   * @returns false when it was already done
   */
  cancel(message?: string): boolean {
    if (this.#state !== PENDING) return false;
    const hook = this.#value as CancelHook | undefined;
    this.#state = CANCELLED;
    this.#value = message;
    hook?.futureCancelled(this as Future<unknown>);
    this.#scheduleCallbacks();
    return true;
  }

  /**
   * @internal Tells `hook` if this pending future is cancelled (the socket
   * operation that will settle it then stops). Settling drops the hook.
   */
  setCancelHook(hook: CancelHook): void {
    if (this.#state === PENDING) this.#value = hook;
  }

  /**
   * @internal A Task waits for this future: `task[WAKE](this)` is called
   * once it is done, in order with the done callbacks (at once-scheduled
   * if already done).
   */
  wake(waiter: Waiter): void {
    if (this.#state !== PENDING) {
      this.#loop.callSoon((future: Future<unknown>) => waiter[WAKE](future), this as Future<unknown>);
      return;
    }
    const callbacks = this.#callbacks;
    if (callbacks === null) this.#callbacks = waiter;
    else if (Array.isArray(callbacks)) callbacks.push(waiter);
    else this.#callbacks = [callbacks, waiter];
  }

  /** Calls `callback(this)` through the loop once done (at once-scheduled if already done). */
  addDoneCallback(callback: DoneCallback<this>): void {
    if (this.#state !== PENDING) {
      this.#loop.callSoon(callback, this);
      return;
    }
    const stored = callback as DoneCallback<never>;
    const callbacks = this.#callbacks;
    if (callbacks === null) this.#callbacks = stored;
    else if (Array.isArray(callbacks)) callbacks.push(stored);
    else this.#callbacks = [callbacks, stored];
  }

  /**
   * Removes every registration of `callback`; returns how many. Once the
   * future is done its callbacks are scheduled, and this returns 0.
   */
  removeDoneCallback(callback: DoneCallback<this>): number {
    if (this.#state !== PENDING) return 0;
    const target = callback as DoneCallback<never>;
    const callbacks = this.#callbacks;
    if (callbacks === null) return 0;
    if (!Array.isArray(callbacks)) {
      if (callbacks !== target) return 0;
      this.#callbacks = null;
      return 1;
    }
    const kept = callbacks.filter((cb) => cb !== target);
    this.#callbacks = kept.length === 0 ? null : kept;
    return callbacks.length - kept.length;
  }

  /**
   * Thenable: `await fut` resolves with the result or rejects with the
   * exception (CancelledError when cancelled).
   */
  // biome-ignore lint/suspicious/noThenProperty: a Future is deliberately thenable, like asyncio's awaitable Future
  then<R1 = T, R2 = never>(
    onFulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onRejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    awaitHook?.(this as Future<unknown>);
    return new Promise<T>((resolve, reject) => {
      const settle = (): void => {
        try {
          resolve(this.result());
        } catch (e) {
          reject(e);
        }
      };
      if (this.#state !== PENDING) settle();
      else this.addDoneCallback(settle);
    }).then(onFulfilled, onRejected);
  }

  /**
   * `yield* fut` inside a generator coroutine: hands the future to the Task
   * driving it, which resumes the coroutine when it is done; the expression's
   * value is the result (or its exception is thrown there).
   *
   * The future is its own iterator, and a stateless one (see {@link next}):
   * a coroutine awaits an operation without allocating an iterator for it.
   */
  [Symbol.iterator](): Iterator<Future<T>, T, unknown> {
    return this;
  }

  /**
   * @internal The iterator protocol of `yield*`: while pending, yields the
   * future itself (the Task then waits for it); once done, returns the
   * result or throws the exception. Resumed only when the future is done,
   * so the first call yields and the second returns.
   */
  next(): IteratorResult<Future<T>, T> {
    const state = this.#state;
    if (state === FINISHED) {
      const value = this.#value as T;
      // A done send's value: one shared object rather than one per `yield*`.
      return value === undefined ? (DONE_VOID as IteratorResult<Future<T>, T>) : { done: true, value };
    }
    if (state === PENDING) return { done: false, value: this };
    return { done: true, value: this.result() };
  }

  /** @internal An exception thrown into the coroutine while it waits surfaces at its `yield*`. */
  throw(error: unknown): IteratorResult<Future<T>, T> {
    throw error;
  }

  /** @internal True when it failed and nobody looked at the exception yet. */
  hasUnretrievedException(): boolean {
    return this.#state === FAILED;
  }

  /** @internal Marks the exception as seen (reported elsewhere, or retrieved). */
  markRetrieved(): void {
    this.#markRetrieved();
  }

  /** "Future <pending>", "Task 'Task-3' <finished>"...: for messages. */
  toString(): string {
    const state = this.#state === PENDING ? 'pending' : this.#describeState();
    return `${this.describeKind()}${this.describeName()} <${state}>`;
  }

  /** " 'name'" for a named kind (Task), else "". */
  protected describeName(): string {
    return '';
  }

  /** "Future" or "Task", for messages. */
  protected describeKind(): string {
    return 'Future';
  }

  #markRetrieved(): void {
    if (this.#state !== FAILED) return;
    this.#state = RETRIEVED;
    unretrievedRegistry.unregister(this);
  }

  #makeCancelledError(): CancelledError {
    return new CancelledError((this.#value as string | undefined) ?? 'cancelled');
  }

  #describeState(): string {
    return this.#state === CANCELLED ? 'cancelled' : 'finished';
  }

  #scheduleCallbacks(): void {
    if (this.#callbacks !== null) this.#loop.schedule(this);
  }

  /** @internal Runs the done callbacks (the loop calls it); each one's exception goes to the loop's handler. */
  [RUN](): void {
    this.runDoneCallbacks();
  }

  /**
   * @internal [RUN] for subclasses that override it: `super[RUN]()` with a
   * symbol key is a runtime call in V8, a method with a name is not.
   */
  protected runDoneCallbacks(): void {
    const callbacks = this.#callbacks;
    if (callbacks === null) return;
    this.#callbacks = null;
    if (Array.isArray(callbacks)) for (const callback of callbacks) this.#callDone(callback);
    else this.#callDone(callbacks);
  }

  #callDone(callback: Done): void {
    try {
      if (typeof callback === 'function') (callback as DoneCallback<this>)(this);
      else callback[WAKE](this as Future<unknown>);
    } catch (exception) {
      const name = typeof callback === 'function' ? callback.name : String(callback);
      this.#loop.callExceptionHandler({
        message: `Exception in callback ${name === '' ? '<anonymous>' : name}`,
        exception,
        future: this,
      });
    }
  }
}

/** True for a generator object (a coroutine). */
export function isCoroutine(value: unknown): value is Generator<unknown, unknown, unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Generator).next === 'function' &&
    typeof (value as Generator).throw === 'function' &&
    typeof (value as Generator).return === 'function' &&
    typeof (value as Generator)[Symbol.iterator] === 'function'
  );
}

/** True for a thenable that is not a Future (a promise). */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    !(value instanceof Future) &&
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as PromiseLike<unknown>).then === 'function'
  );
}
