/**
 * Cooperative mode: the loop runs inside Node's own event loop instead of
 * owning the thread. Each tick is one non-blocking iteration; between ticks
 * Node runs its own callbacks, timers and microtasks (so async functions
 * work as coroutines). While the loop is idle it sleeps in libuv, never in
 * a busy loop:
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
import { FdWatcher, WaitThread } from '../sys/watch.js';

/** What the driver needs of the loop. */
export interface DriverLoop {
  /** Runs one iteration without blocking; false when the loop should stop driving. */
  tick(): boolean;
  /** Callbacks are queued. */
  hasReady(): boolean;
  /** Milliseconds until the earliest timer, or null. */
  nextTimerDelay(): number | null;
  /** Watched (fd, mask) pairs, for the helper thread. */
  watchedPairs(): Int32Array;
  /** How many fds the selector watches for users (what keeps the process alive). */
  watchedCount(): number;
  /** The epoll fd, when the selector is epoll. */
  epollFd(): number | null;
}

/** The longest delay a Node timer takes (2^31 - 1 ms). */
const MAX_NODE_TIMER_MS = 0x7fffffff;

export class CooperativeDriver {
  readonly #loop: DriverLoop;
  readonly #onDone: () => void;
  #watcher: FdWatcher | null = null;
  #thread: WaitThread | null = null;
  #timer: NodeJS.Timeout | null = null;
  #immediate: NodeJS.Immediate | null = null;
  #referenced = true;
  #stopped = false;
  readonly #tickBound = (): void => this.#tick();

  /**
   * @param onDone - called once the loop says to stop (main finished, stop(), close())
   */
  constructor(loop: DriverLoop, onDone: () => void) {
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
    this.#clearTimers();
    this.#thread?.disarm();
    if (!this.#loop.tick()) {
      this.stop();
      this.#onDone();
      return;
    }
    if (this.#loop.hasReady()) {
      this.wake();
      return;
    }
    this.#armIdle();
  }

  // Sleep until an fd is ready or the earliest timer is due.
  #armIdle(): void {
    if (this.#stopped || this.#immediate !== null) return;
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
