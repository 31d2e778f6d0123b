/**
 * Cooperative mode: the loop runs inside Node's own event loop instead of
 * owning the thread. Each tick runs non-blocking iterations while they find
 * work, up to {@link MAX_ITERATIONS} or {@link SLICE_MS}; between ticks Node
 * runs its own callbacks, timers and microtasks (so async functions work as
 * coroutines). While the loop is idle it sleeps in libuv, never in a busy
 * loop:
 *
 * - epoll: libuv watches the epoll fd (an FdWatcher), which is readable
 *   whenever any registered fd is ready;
 * - select and poll: a helper thread (a WaitThread) blocks in poll(2) on a
 *   snapshot of the watched fds and posts back (poll for select too: once
 *   many fds are open, the helper's own eventfd is past FD_SETSIZE);
 * - timers: one Node timer for the earliest deadline;
 * - work scheduled from outside a tick (a Node callback, a promise
 *   continuation) wakes the loop with setImmediate.
 *
 * The loop keeps the process alive only while it has registered fds,
 * timers or pending callbacks, unless unref'ed.
 *
 * @module
 */
import { LoopStateError } from '../coro/errors.js';
import { ensureFuture, Future, Task, type TaskTarget, WrongLoopError } from '../coro/index.js';
import { outsideTasks } from '../coro/task.js';
import type { LoopLike } from '../coro/types.js';
import { FdWatcher, WaitThread } from '../sys/watch.js';
import type { RunTarget } from './options.js';

/** One tick runs at most this many iterations ... */
const MAX_ITERATIONS = 64;
/** ... and starts no new one after this many milliseconds. */
const SLICE_MS = 2;

/** What the driver needs of the loop. */
export interface DriverLoop {
  /** Runs one iteration without blocking; returns how many callbacks it ran. */
  runOnce(): number;
  /** stop() was called: no further iteration. */
  stopping(): boolean;
  /** The loop's clock, in milliseconds. */
  time(): number;
  /** Marks the span of a tick: work scheduled inside it needs no wake-up. */
  setInTick(inTick: boolean): void;
  /** Callbacks are queued. */
  hasReady(): boolean;
  /**
   * Applies the interest changes made since the last wait (an owning loop
   * applies them right before it waits): what the idle watch watches.
   * @throws what the selector's register/modify throws
   */
  applyChanges(): void;
  /** Milliseconds until the earliest timer, or null. */
  nextTimerDelay(): number | null;
  /** Watched (fd, mask) pairs, for the helper thread. */
  watchedPairs(): Int32Array;
  /** How many fds the selector watches for users (what keeps the process alive). */
  watchedCount(): number;
  /** The epoll fd, when the selector is epoll. */
  epollFd(): number | null;
  /** About to sleep in libuv: what an owning loop does before it blocks (its signal handlers re-asserted). */
  beforeIdle(): void;
  /** The loop slept in Node's event loop from `since` (its clock) until now, waiting for its fds or timers. */
  idled(since: number): void;
}

/** The longest delay a Node timer takes (2^31 - 1 ms). */
const MAX_NODE_TIMER_MS = 0x7fffffff;

export class CooperativeDriver {
  readonly #loop: DriverLoop;
  readonly #onDone: (failure: { error: unknown } | null) => void;
  #watcher: FdWatcher | null = null;
  #thread: WaitThread | null = null;
  #timer: NodeJS.Timeout | null = null;
  #immediate: NodeJS.Immediate | null = null;
  #referenced = true;
  #stopped = false;
  // When the loop went idle (armIdle), until a tick or a wake: NaN while not idle.
  #idleSince = Number.NaN;
  readonly #tickFn = (): void => this.#tick();
  // Outside any async Task's context (see outsideTasks): a tick may be
  // scheduled from inside one.
  readonly #tickBound = (): void => outsideTasks(this.#tickFn);

  /**
   * @param onDone - called once the loop says to stop (main finished, stop(),
   *   close()), with what an iteration threw, if one did
   */
  constructor(loop: DriverLoop, onDone: (failure: { error: unknown } | null) => void) {
    this.#loop = loop;
    this.#onDone = onDone;
    const epfd = loop.epollFd();
    if (epfd !== null) {
      this.#watcher = new FdWatcher(epfd, this.#tickBound);
      this.#watcher.start();
    } else {
      this.#thread = new WaitThread(this.#tickBound);
    }
    this.wake();
  }

  /** Makes the loop tick soon (work arrived from outside a tick). Cheap when already scheduled. */
  wake(): void {
    // Woken by work from outside (a Node timer, I/O or promise continuation
    // that runs after the loop went idle): it slept until now.
    this.#endIdle();
    if (this.#stopped || this.#immediate !== null) return;
    this.#immediate = setImmediate(this.#tickBound);
    if (!this.#referenced) this.#immediate.unref();
  }

  /** Whether the loop keeps the process alive (default true). */
  setReferenced(referenced: boolean): void {
    this.#referenced = referenced;
    if (referenced) this.#immediate?.ref();
    else this.#immediate?.unref();
    this.#armIdle();
  }

  /**
   * Stops watching the epoll fd while the selector renews its kernel set at
   * the same fd number (libuv's registration of the old instance would
   * vanish with it, unnoticed); {@link resumeWatch} registers the new one.
   */
  pauseWatch(): void {
    this.#watcher?.stop();
  }

  /** Watches the epoll fd again after {@link pauseWatch}. */
  resumeWatch(): void {
    if (!this.#stopped) this.#watcher?.start();
  }

  /** Stops driving: frees the watcher, the thread and the Node timers. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#clearTimers();
    this.#watcher?.close();
    this.#watcher = null;
    this.#thread?.close();
    this.#thread = null;
  }

  #clearTimers(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (this.#immediate !== null) {
      clearImmediate(this.#immediate);
      this.#immediate = null;
    }
  }

  #tick(): void {
    if (this.#stopped) return;
    this.#endIdle();
    this.#clearTimers();
    this.#thread?.disarm();
    const failure = this.#runSlice();
    if (failure !== null || this.#loop.stopping()) {
      this.stop();
      this.#onDone(failure);
      return;
    }
    if (this.#loop.hasReady()) {
      this.wake();
      return;
    }
    this.#armIdle();
  }

  // Iterate while iterations find work, up to a bound, then give Node its
  // turn: busy I/O does not pay a trip through libuv per event, and Node's
  // own callbacks and microtasks still run often.
  #runSlice(): { error: unknown } | null {
    const loop = this.#loop;
    loop.setInTick(true);
    const deadline = loop.time() + SLICE_MS;
    try {
      for (let i = 0; i < MAX_ITERATIONS; i++) {
        const ran = loop.runOnce();
        if (loop.stopping() || ran === 0 || loop.time() >= deadline) break;
      }
      // The last iteration's callbacks may have asked for an fd's readiness
      // (a write the socket refused watches for writability): the loop may
      // sleep next, and its sleep must watch for that too.
      loop.applyChanges();
      return null;
    } catch (error) {
      return { error };
    } finally {
      loop.setInTick(false);
    }
  }

  // The loop's sleep (since armIdle) ends now: it is counted.
  #endIdle(): void {
    if (Number.isNaN(this.#idleSince)) return;
    this.#loop.idled(this.#idleSince);
    this.#idleSince = Number.NaN;
  }

  // Sleep until an fd is ready or the earliest timer is due.
  #armIdle(): void {
    if (this.#stopped || this.#immediate !== null) return;
    this.#loop.beforeIdle();
    // Armed again while idle (unref, ref): the sleep goes on from when it began.
    if (Number.isNaN(this.#idleSince)) this.#idleSince = this.#loop.time();
    const delay = this.#loop.nextTimerDelay();
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (delay !== null) {
      // Node's timers take at most 2^31 - 1 ms (beyond, they fire after 1 ms
      // with a TimeoutOverflowWarning); a later deadline is re-armed then.
      this.#timer = setTimeout(this.#tickBound, Math.min(MAX_NODE_TIMER_MS, Math.max(1, Math.ceil(delay))));
      if (!this.#referenced) this.#timer.unref();
    }
    const keepAlive = this.#referenced && this.#loop.watchedCount() > 0;
    if (this.#watcher !== null) {
      if (keepAlive) this.#watcher.ref();
      else this.#watcher.unref();
    } else if (this.#thread !== null) {
      const pairs = this.#loop.watchedPairs();
      if (pairs.length > 0) this.#thread.arm(pairs, keepAlive);
    }
  }
}

/**
 * What run() drives, as a Future of `loop`: a function runs as a Task's own
 * code, as createTask(fn) runs it (currentTask(), cancellation, the
 * AbortSignal), from the first iteration; a generator is wrapped in a Task.
 *
 * @throws {WrongLoopError} for a Future of another loop
 */
export function runFuture<T>(main: RunTarget<T>, loop: LoopLike): Future<T> {
  let future: Future<T>;
  if (typeof main === 'function') future = new Task<T>(main as TaskTarget<T>, loop);
  else
    future = main instanceof Future ? main : (ensureFuture(main as Generator<unknown, T, unknown>, loop) as Future<T>);
  if (future.loop !== loop) throw new WrongLoopError('the Future belongs to another loop');
  return future;
}

/** What a cooperative run needs of its loop besides the driver's view. */
export interface RunHost {
  readonly view: DriverLoop;
  /** False after unref(): the run does not keep the process alive. */
  readonly referenced: boolean;
  /** Stops the loop (main is done). */
  stop(): void;
  /** The driver of the run (null once it ended). */
  attach(driver: CooperativeDriver | null): void;
  /** The loop is no longer running. */
  leave(): void;
}

/**
 * Runs the loop cooperatively until `future` is done (the loop has been
 * entered already): a driver ticks it from Node's event loop, and the
 * promise settles as {@link settleRun} says.
 */
export function startRun<T>(future: Future<T>, host: RunHost): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const stopWhenDone = (): void => host.stop();
    future.addDoneCallback(stopWhenDone);
    const done = (failure: { error: unknown } | null): void => {
      host.attach(null);
      future.removeDoneCallback(stopWhenDone);
      host.leave();
      settleRun(future, failure, resolve, reject);
    };
    try {
      const driver = new CooperativeDriver(host.view, done);
      host.attach(driver);
      if (!host.referenced) driver.setReferenced(false);
    } catch (e) {
      host.attach(null);
      future.removeDoneCallback(stopWhenDone);
      host.leave();
      reject(e);
    }
  });
}

/**
 * Settles a cooperative run's promise from how it ended: what an iteration
 * threw, else `future`'s outcome (a run stopped before it was done rejects
 * with ERR_LOOP_STOPPED).
 */
export function settleRun<T>(
  future: Future<T>,
  failure: { error: unknown } | null,
  resolve: (value: T) => void,
  reject: (reason: unknown) => void,
): void {
  if (failure !== null) reject(failure.error);
  else if (!future.done())
    reject(new LoopStateError('ERR_LOOP_STOPPED', 'Event loop stopped before the Future completed.'));
  else if (future.cancelled()) reject(cancelledError(future));
  else if (future.exception() !== null) reject(future.exception());
  else resolve(future.result());
}

// The CancelledError a cancelled Future's result() throws.
function cancelledError(future: Future<unknown>): unknown {
  try {
    future.result();
  } catch (e) {
    return e;
  }
  return new Error('cancelled');
}
