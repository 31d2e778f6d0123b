/**
 * sleep, gather and waitFor, acting on the running loop as asyncio's do.
 * Each accepts a Future, a generator object (wrapped in a Task) or a promise.
 *
 * @module
 */
import { CancelledError, codedTypeError, TimeoutError } from './errors.js';
import { Future, isCoroutine, isThenable } from './future.js';
import { getRunningLoop } from './running.js';
import { type Coroutine, currentTask, Task } from './task.js';
import type { LoopLike } from './types.js';

/** Something that will produce a T: a Future, a generator coroutine, or a promise. */
export type Awaitable<T> = Future<T> | Coroutine<T> | PromiseLike<T>;

/**
 * The Future for an awaitable: itself if it is one, else a Task running it.
 *
 * @throws {TypeError} for anything else
 */
export function ensureFuture<T>(awaitable: Awaitable<T>, loop: LoopLike = getRunningLoop()): Future<T> {
  if (awaitable instanceof Future) return awaitable;
  if (isCoroutine(awaitable) || isThenable(awaitable)) return new Task<T>(awaitable as Coroutine<T>, loop);
  throw codedTypeError(
    `expected a Future, a generator object or a promise; got ${String(awaitable)}`,
    'ERR_INVALID_ARG_TYPE',
  );
}

function resolveLater<T>(future: Future<T>, value: T): void {
  if (!future.done()) future.setResult(value);
}

/**
 * A Future that resolves with `value` after `ms` milliseconds (0 or less:
 * on the next loop iteration).
 *
 * @example
 * ```ts
 * function* tick() { yield* sleep(100); }
 * await sleep(100); // in an async task (cooperative mode)
 * ```
 */
export function sleep<T = undefined>(ms: number, value?: T): Future<T> {
  const loop = getRunningLoop();
  const future = new Future<T>(loop);
  const handle =
    ms > 0
      ? loop.callLater(ms, resolveLater<T>, future, value as T)
      : loop.callSoon(resolveLater<T>, future, value as T);
  future.addDoneCallback(() => handle.cancel());
  return future;
}

/** gather()'s options. */
export interface GatherOptions {
  /** Put exceptions in the results instead of failing with the first one. */
  returnExceptions: boolean;
}

type Results<T extends readonly unknown[]> = { -readonly [K in keyof T]: T[K] };
type Awaitables<T extends readonly unknown[]> = { [K in keyof T]: Awaitable<T[K]> };

function isGatherOptions(value: unknown): value is GatherOptions {
  return (
    typeof value === 'object' &&
    value !== null &&
    !(value instanceof Future) &&
    !isCoroutine(value) &&
    !isThenable(value) &&
    'returnExceptions' in value
  );
}

/**
 * Runs awaitables concurrently; resolves with their results in the order
 * given. The first exception fails the whole (the others keep running), unless
 * `{ returnExceptions: true }` is passed last, which puts exceptions in the
 * results. Cancelling the gather cancels every child.
 *
 * @example
 * ```ts
 * const [a, b] = yield* gather(fetchOne(), sleep(10, 'b'));
 * const mixed = yield* gather(ok(), fails(), { returnExceptions: true });
 * ```
 */
export function gather<T extends readonly unknown[]>(...items: Awaitables<T>): Future<Results<T>>;
export function gather<T extends readonly unknown[]>(
  ...items: [...Awaitables<T>, GatherOptions]
): Future<{ -readonly [K in keyof T]: T[K] | unknown }>;
export function gather(...items: unknown[]): Future<unknown[]> {
  const loop = getRunningLoop();
  const last = items.at(-1);
  const returnExceptions = isGatherOptions(last) ? last.returnExceptions : false;
  const awaitables = (isGatherOptions(last) ? items.slice(0, -1) : items) as Awaitable<unknown>[];
  const outer = new Future<unknown[]>(loop);
  const children = awaitables.map((a) => ensureFuture(a, loop));
  const results: unknown[] = new Array(children.length);
  let pending = children.length;
  if (pending === 0) {
    outer.setResult(results);
    return outer;
  }
  children.forEach((child, index) => {
    child.addDoneCallback((done) => {
      pending--;
      if (outer.done()) {
        // Already failed: look at the exception so it is not reported as lost.
        if (!done.cancelled()) done.exception();
        return;
      }
      if (done.cancelled()) {
        if (!returnExceptions) {
          outer.setException(new CancelledError(`gather child ${index} was cancelled`));
          return;
        }
        results[index] = new CancelledError();
      } else {
        const exception = done.exception();
        if (exception !== null && !returnExceptions) {
          outer.setException(exception);
          return;
        }
        results[index] = exception !== null ? exception : done.result();
      }
      if (pending === 0) outer.setResult(results);
    });
  });
  outer.addDoneCallback((done) => {
    if (done.cancelled()) for (const child of children) child.cancel();
  });
  return outer;
}

/**
 * Waits for an awaitable at most `timeoutMs` milliseconds. On timeout the
 * inner task is cancelled and the result fails with TimeoutError; cancelling
 * the result cancels the inner task. `null` waits without limit.
 *
 * @throws {TimeoutError} (through the Future) when the time runs out
 */
export function waitFor<T>(awaitable: Awaitable<T>, timeoutMs: number | null): Future<T> {
  const loop = getRunningLoop();
  const inner = ensureFuture(awaitable, loop);
  if (timeoutMs === null) return inner;
  const outer = new Future<T>(loop);
  let timedOut = false;
  const timer = loop.callLater(Math.max(0, timeoutMs), () => {
    if (inner.done()) return;
    timedOut = true;
    inner.cancel();
  });
  inner.addDoneCallback((done) => {
    timer.cancel();
    if (outer.done()) return;
    if (done.cancelled()) {
      if (timedOut) outer.setException(new TimeoutError(`timed out after ${timeoutMs} ms`));
      else outer.cancel();
      return;
    }
    const exception = done.exception();
    if (exception !== null) outer.setException(exception);
    else outer.setResult(done.result());
  });
  outer.addDoneCallback((done) => {
    if (done.cancelled()) inner.cancel();
  });
  return outer;
}

/**
 * Runs `coroutine` (or waits for a Future) in the current Task with a deadline, like Python's
 * `asyncio.timeout()`: if `timeoutMs` passes first, TimeoutError is thrown
 * into it at its current `yield` (the Future it waits on is cancelled, its
 * `finally` blocks run). Unlike {@link waitFor} it starts no Task and adds
 * no trip through the loop, which matters once per request. Outside a Task
 * (a coroutine stepped by hand) it falls back to waitFor.
 *
 * @param timeoutMs - milliseconds, or null for no deadline
 * @throws {TimeoutError} when the deadline passes first
 *
 * @example
 * ```ts
 * function* main(): Coroutine<Buffer> {
 *   return yield* withTimeout(readAll(sock), 5000);
 * }
 * ```
 */
export function* withTimeout<T>(coroutine: Coroutine<T> | Future<T>, timeoutMs: number | null): Coroutine<T> {
  if (timeoutMs === null) return yield* coroutine;
  const task = currentTask();
  if (task === null) return yield* waitFor(coroutine, timeoutMs);
  const timer = task.loop.callLater(Math.max(0, timeoutMs), () => {
    task.interrupt(new TimeoutError(`timed out after ${timeoutMs} ms`));
  });
  try {
    return yield* coroutine;
  } finally {
    timer.cancel();
  }
}
