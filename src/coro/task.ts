/**
 * Task: a Future that drives a coroutine, as asyncio's. A generator
 * coroutine yields Futures (`yield* fut`); the Task resumes it through the
 * loop when the future is done: `next(result)`, or `throw(exception)`.
 *
 * @module
 */
import { AsyncLocalStorage } from 'node:async_hooks';

import { CancelledError, codedTypeError, InvalidStateError, WrongLoopError } from './errors.js';
import { Future, isCoroutine, isThenable, setAwaitHook } from './future.js';
import { type LoopLike, RUN, WAKE } from './types.js';

/** A generator coroutine returning T. It may yield Futures (via `yield* fut`) or nothing (`yield`: let others run). */
export type Coroutine<T = unknown> = Generator<unknown, T, unknown>;

/** What a Task can drive: a coroutine, a promise, or a function returning either or a Future (given the task's AbortSignal). */
export type TaskTarget<T> = Coroutine<T> | PromiseLike<T> | ((signal: AbortSignal) => Coroutine<T> | PromiseLike<T>);

let current: Task<unknown> | null = null;

/** The Task whose coroutine is running now, or null. */
export function currentTask(): Task<unknown> | null {
  return current;
}

let taskCounter = 0;

// Which async-function Task is running, across its awaits. Made on the first
// async Task only, and disabled whenever no async function of a Task is
// running: on Node 20 an enabled AsyncLocalStorage turns on promise hooks,
// which make every promise in the process dearer (3-6x for promise-heavy
// code, bench/ "host tax"); on Node 24 it costs nothing.
let asyncTasks: AsyncLocalStorage<Task<unknown>> | null = null;
let runningAsync = 0;

function asyncEnded(): void {
  if (--runningAsync === 0) asyncTasks?.disable();
}

/**
 * @internal Runs `fn` outside any async function's Task: what it starts
 * belongs to no Task. A cooperative loop ticks through this, for a tick
 * scheduled from inside a Task's code (setImmediate keeps the async context
 * it was called in) would else run every callback of that tick as part of
 * that Task, and an async function a callback starts would be taken for it:
 * cancelling the Task would cancel what that function awaits.
 */
export function outsideTasks(fn: () => void): void {
  if (asyncTasks === null) fn();
  else asyncTasks.exit(fn);
}

function noteAwait(future: Future<unknown>): void {
  asyncTasks?.getStore()?.awaiting(future);
}

/**
 * A Future that runs a coroutine to its end: its result is the coroutine's
 * return value, its exception what the coroutine threw.
 *
 * Cancelling throws CancelledError into the coroutine at its current
 * `yield` (its `finally` blocks run; it may catch it and go on), and
 * cancels the Future it was waiting on.
 *
 * An async function (cooperative mode) is cancelled differently: the Future
 * it awaits is cancelled, so its `await` rejects with CancelledError; the
 * task's AbortSignal is aborted too. Awaiting a plain promise (not a Future),
 * it cannot be interrupted: the Task is then cancelled at once while the
 * function, told through the signal, runs on.
 *
 * @example
 * ```ts
 * function* worker(): Coroutine<string> { yield* sleep(10); return 'done'; }
 * const task = loop.createTask(worker());
 * loop.runUntilComplete(task); // 'done'
 * ```
 */
export class Task<T = unknown> extends Future<T> {
  readonly name: string;
  #coro: Coroutine<T> | null = null;
  #waiter: Future<unknown> | null = null;
  #mustCancel = false;
  #cancelMessage: string | undefined;
  readonly #abort = new AbortController();
  // What the next queued step throws in (fields, not closures: a step allocates nothing).
  #throw: unknown;
  #hasThrow = false;
  // For async functions: the Future its function awaits now.
  #awaited: Future<unknown> | null = null;
  // An error interrupt() asked to throw in at the current yield.
  #interrupt: { error: unknown } | null = null;
  // A function target, until its first step calls it.
  #start: ((signal: AbortSignal) => unknown) | null = null;

  /**
   * Whatever the target, nothing of it runs inside the constructor: a
   * generator takes its first step, and a function is called, in the loop's
   * next iteration (as asyncio starts every Task); a promise runs already.
   *
   * @param target - a generator object, a promise, or a function returning one or a Future (it receives the task's AbortSignal)
   * @param loop - the loop that runs it (default: the running loop)
   * @throws {TypeError} when target is none of these (a function that returns
   *   neither fails the Task with that TypeError instead)
   */
  constructor(target: TaskTarget<T>, loop?: LoopLike, name?: string) {
    super(loop);
    this.name = name ?? `Task-${++taskCounter}`;
    if (typeof target === 'function') {
      this.#start = target;
      this.loop.schedule(this);
      return;
    }
    this.#adopt(target, true);
  }

  // The first step of a function target: call it, as the Task's own code
  // (currentTask(), and for async functions the Task across their awaits).
  #begin(start: (signal: AbortSignal) => unknown): void {
    this.#start = null;
    if (this.#mustCancel) {
      // Cancelled before it started: it never runs, as a generator never would.
      super.cancel(this.#cancelMessage);
      return;
    }
    if (asyncTasks === null) {
      asyncTasks = new AsyncLocalStorage();
      setAwaitHook(noteAwait);
    }
    const previous = current;
    current = this as Task<unknown>;
    let body: unknown;
    try {
      // run() enables the storage again after a disable().
      body = asyncTasks.run(this as Task<unknown>, start, this.#abort.signal);
    } catch (error) {
      if (runningAsync === 0) asyncTasks.disable();
      if (error instanceof CancelledError) super.cancel(error.message);
      else super.setException(error);
      return;
    } finally {
      current = previous;
    }
    if (body instanceof Promise) {
      // An async function's promise, until the function itself ends (a Task
      // cancelled at once may outlive it). Only native promises: calling a
      // user's thenable's then() twice could run a lazy query twice.
      runningAsync++;
      Promise.prototype.then.call(body, asyncEnded, asyncEnded);
    } else if (runningAsync === 0) {
      asyncTasks.disable();
    }
    try {
      this.#adopt(body, false);
    } catch (error) {
      super.setException(error);
      return;
    }
    // A generator from the function takes its first step now, in this one.
    if (this.#coro !== null) this.#step(undefined, false);
  }

  // Drives what the target is or returned: a generator (its first step
  // queued), or a promise (settling the Task when it settles).
  #adopt(body: unknown, scheduleFirstStep: boolean): void {
    if (isCoroutine(body)) {
      this.#coro = body as Coroutine<T>;
      if (scheduleFirstStep) this.loop.schedule(this);
    } else if (body instanceof Future) {
      // A function that returned a Future (a Task, a socket operation's):
      // the Task follows it, and cancelling the Task cancels it.
      if (body.loop !== this.loop) {
        throw new WrongLoopError(`Task ${this.name} got a Future attached to a different loop`);
      }
      this.#awaited = body;
      body.addDoneCallback((done) => {
        if (this.done()) return;
        if (done.cancelled()) super.cancel(this.#cancelMessage);
        else if (done.exception() !== null) super.setException(done.exception());
        else super.setResult(done.result() as T);
      });
    } else if (isThenable(body)) {
      body.then(
        (value) => {
          if (!this.done()) super.setResult(value as T);
        },
        (error: unknown) => {
          if (this.done()) return;
          if (error instanceof CancelledError) super.cancel(error.message);
          else super.setException(error);
        },
      );
    } else {
      throw codedTypeError(
        `a Task needs a generator object, a promise or a function returning one; got ${String(body)}`,
        'ERR_INVALID_ARG_TYPE',
      );
    }
  }

  /** Aborted when the task is cancelled (async functions can pass it to fetch, timers...). */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /**
   * Requests cancellation: CancelledError is thrown into the coroutine at its
   * current `yield`, and the Future it waits on is cancelled.
   *
   * @returns false when the task is already done
   */
  override cancel(message?: string): boolean {
    if (this.done()) return false;
    this.#cancelMessage = message;
    this.#abort.abort(new CancelledError(message));
    if (this.#start !== null) {
      // Not started yet: its first step cancels it instead of calling it.
      this.#mustCancel = true;
      return true;
    }
    if (this.#coro === null) {
      // An async function: reject the Future it awaits with CancelledError
      // (it may catch it and go on); if it awaits none, it cannot be
      // interrupted, so the Task is cancelled now and the signal tells it.
      const awaited = this.#awaited;
      if (awaited !== null && !awaited.done() && awaited.cancel(message)) return true;
      return super.cancel(message);
    }
    if (this.#waiter?.cancel(message)) return true;
    this.#mustCancel = true;
    return true;
  }

  /**
   * @internal Throws `error` into the coroutine at its current `yield`, as
   * cancel() throws CancelledError: the Future it waits on is cancelled, and
   * the coroutine may catch the error and go on. (withTimeout's deadline.)
   *
   * @returns false when the task is done or runs an async function
   */
  interrupt(error: unknown): boolean {
    if (this.done() || this.#coro === null) return false;
    this.#interrupt = { error };
    this.#waiter?.cancel();
    return true;
  }

  /** @internal An async function running in this task awaits `future`. */
  awaiting(future: Future<unknown>): void {
    this.#awaited = future;
  }

  /** @throws {InvalidStateError} always: a Task's result is its coroutine's. */
  override setResult(_value: T): void {
    throw new InvalidStateError('Task does not support setResult()');
  }

  /** @throws {InvalidStateError} always: a Task's exception is its coroutine's. */
  override setException(_exception: unknown): void {
    throw new InvalidStateError('Task does not support setException()');
  }

  protected override describeKind(): string {
    return 'Task';
  }

  protected override describeName(): string {
    return ` '${this.name}'`;
  }

  /**
   * @internal The loop runs a queued Task: its next step while pending (a
   * Task queues itself to start, after a bare `yield`, or to throw in an
   * error), its done callbacks once finished. A generator Task finishes
   * only inside a step, so the two are never queued at once.
   */
  override [RUN](): void {
    if (this.done()) {
      this.runDoneCallbacks();
      return;
    }
    if (this.#start !== null) {
      this.#begin(this.#start);
      return;
    }
    const hasThrow = this.#hasThrow;
    const value = hasThrow ? this.#throw : undefined;
    this.#hasThrow = false;
    this.#throw = undefined;
    this.#step(value, hasThrow);
  }

  // Resumes the coroutine with `value` (thrown in when `hasThrow`): the
  // Future it waited on settled, or the Task was queued.
  #step(sent: unknown, sentThrow: boolean): void {
    const coro = this.#coro;
    if (coro === null || this.done()) return;
    let hasThrow = sentThrow;
    let value = sent;
    if (this.#interrupt !== null) {
      hasThrow = true;
      value = this.#interrupt.error;
      this.#interrupt = null;
    }
    if (this.#mustCancel) {
      this.#mustCancel = false;
      hasThrow = true;
      value = new CancelledError(this.#cancelMessage);
    }
    const previous = current;
    current = this as Task<unknown>;
    let step: IteratorResult<unknown, T>;
    try {
      step = hasThrow ? coro.throw(value) : coro.next(value);
    } catch (error) {
      current = previous;
      this.#coro = null;
      if (error instanceof CancelledError) super.cancel(error.message);
      else super.setException(error);
      return;
    }
    current = previous;
    if (step.done === true) {
      this.#coro = null;
      super.setResult(step.value);
      return;
    }
    const yielded = step.value;
    if (yielded instanceof Future) {
      if (yielded.loop !== this.loop) {
        this.#resumeWithError(new WrongLoopError(`Task ${this.name} got a Future attached to a different loop`));
      } else if (yielded === this) {
        this.#resumeWithError(new InvalidStateError(`Task ${this.name} cannot await itself`));
      } else {
        // The Task itself waits (no done callback closing over it).
        this.#waiter = yielded;
        yielded.wake(this);
        if (this.#mustCancel && yielded.cancel(this.#cancelMessage)) this.#mustCancel = false;
      }
    } else if (yielded === undefined || yielded === null) {
      // A bare `yield`: give the other callbacks a turn, then go on.
      this.loop.schedule(this);
    } else {
      this.#resumeWithError(
        codedTypeError(`Task ${this.name} got a bad yield: ${String(yielded)} (yield* a Future)`, 'ERR_BAD_YIELD'),
      );
    }
  }

  #resumeWithError(error: unknown): void {
    this.#hasThrow = true;
    this.#throw = error;
    this.loop.schedule(this);
  }

  /** @internal The Future it waited on is done: resume the coroutine with its outcome. */
  [WAKE](future: Future<unknown>): void {
    this.#waiter = null;
    if (this.#interrupt !== null) {
      // The interrupt's error replaces the outcome (usually the
      // cancellation interrupt() caused); #step throws it in.
      future.markRetrieved();
      this.#step(undefined, false);
      return;
    }
    let value: unknown;
    try {
      value = future.result();
    } catch (error) {
      this.#step(error, true);
      return;
    }
    this.#step(value, false);
  }
}
