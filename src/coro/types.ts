/**
 * What the coroutine layer needs of an event loop. The loop implements it;
 * coro never imports the loop (the layers stay one-way).
 *
 * @module
 */

/** What an exception handler receives. */
export interface ExceptionContext {
  message: string;
  exception?: unknown;
  /** The Future or Task involved, if any. */
  future?: unknown;
  /** The callback handle involved, if any. */
  handle?: unknown;
}

/** A scheduled callback that can be cancelled. */
export interface Cancellable {
  cancel(): void;
}

/**
 * @internal The method a loop calls on what its ready queue holds: a
 * callback handle, or a Future whose done callbacks are due. A symbol, so
 * it is no part of Future's public surface.
 */
export const RUN: unique symbol = Symbol('iomux.run');

/**
 * @internal The method a Future calls on a Task waiting for it (the Task
 * itself, not a done callback closing over it) once it is done.
 */
export const WAKE: unique symbol = Symbol('iomux.wake');

/** @internal What a loop's ready queue holds. */
export interface Runnable {
  [RUN](): void;
}

export interface LoopLike {
  /** Monotonic time in milliseconds. */
  time(): number;
  callSoon<A extends unknown[]>(callback: (...args: A) => void, ...args: A): Cancellable;
  callLater<A extends unknown[]>(delayMs: number, callback: (...args: A) => void, ...args: A): Cancellable;
  /**
   * @internal Queues `item` to run in the next iteration, as callSoon does a
   * callback (a Future schedules its done callbacks this way, allocating nothing).
   */
  schedule(item: Runnable): void;
  callExceptionHandler(context: ExceptionContext): void;
  isClosed(): boolean;
  /** @internal Keeps a weak reference to a future whose exception nobody retrieved yet, to report it at close(). */
  trackUnretrieved(future: object): void;
}

/**
 * What {@link getRunningLoop} returns beyond {@link LoopLike}: empty here;
 * `iomux/loop` merges `EventLoop` into it, so that
 * `getRunningLoop().sockRecv(...)` type-checks wherever the loop is
 * imported, while this layer still never imports the loop.
 */
// biome-ignore lint/suspicious/noEmptyInterface: a declaration that iomux/loop merges into
export interface RunningLoop {}
