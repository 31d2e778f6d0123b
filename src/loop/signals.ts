/**
 * The loop's signal handlers, as asyncio's `add_signal_handler`: one
 * handler per signal (a new one replaces the old), run as an ordinary
 * Handle in the loop's iteration, never inside the signal handler.
 *
 * The native handler only records the signal and writes an eventfd (a
 * {@link SignalWatch}); the loop watches that fd with an ordinary reader, so
 * it works on every backend, wakes an owning loop blocked in its wait
 * (select/poll/epoll_wait return EINTR, retry, and find the eventfd
 * readable) and a cooperative one idling in libuv. The reader queues the
 * handles of the signals that arrived; they run in the next iteration.
 *
 * Main thread only, as in asyncio: the first handler of a loop in a worker
 * throws TypeError ERR_WORKER_UNSUPPORTED_OPERATION and changes nothing.
 *
 * @module
 */
import type { Runnable } from '../coro/types.js';
import { catchableSignal, type SignalLike, SignalWatch, signalNumber, verifySignals } from '../sys/signals.js';
import { type Callback, Handle, type HandleOwner } from './handle.js';

/** What the signal handlers need of their loop. */
export interface SignalLoop extends HandleOwner {
  addReader(fd: number, callback: () => void): unknown;
  removeReader(fd: number): boolean;
  schedule(item: Runnable): void;
}

/** One loop's signal handlers, over one SignalWatch opened with the first. */
export class LoopSignals {
  readonly #loop: SignalLoop;
  #watch: SignalWatch | null = null;
  readonly #handlers = new Map<number, Handle>();
  readonly #onWake = (): void => this.#dispatch();

  constructor(loop: SignalLoop) {
    this.#loop = loop;
  }

  /**
   * Makes `callback(...args)` the handler of `signal`.
   *
   * @throws what {@link catchableSignal} throws; TypeError ERR_WORKER_UNSUPPORTED_OPERATION off the main thread
   */
  add(signal: SignalLike, callback: Callback, args: readonly unknown[]): Handle {
    const signo = catchableSignal(signal);
    let watch = this.#watch;
    const opened = watch === null;
    if (watch === null) watch = new SignalWatch({ capacity: 1 });
    try {
      // The signal first: a refusal (another loop has it) leaves the selector untouched.
      watch.add(signo);
      if (opened) this.#loop.addReader(watch.fileno(), this.#onWake);
    } catch (e) {
      // Closing a new watch restores the action; an old one's add changed nothing when it threw.
      if (opened) watch.close();
      throw e;
    }
    this.#watch = watch;
    this.#handlers.get(signo)?.cancel();
    const handle = new Handle(callback, args, this.#loop);
    this.#handlers.set(signo, handle);
    return handle;
  }

  /**
   * Removes the handler of `signal`; the action it replaced comes back.
   *
   * @returns whether there was one
   * @throws what {@link signalNumber} throws
   */
  remove(signal: SignalLike): boolean {
    const signo = signalNumber(signal);
    const handle = this.#handlers.get(signo);
    if (handle === undefined) return false;
    handle.cancel();
    this.#handlers.delete(signo);
    const watch = this.#watch as SignalWatch;
    watch.remove(signo);
    if (this.#handlers.size === 0) {
      this.#watch = null;
      this.#closeWatch(watch);
    }
    return true;
  }

  /** Before the loop blocks: our handlers back over any that replaced them (see sys/signals.ts). */
  verify(): void {
    if (this.#watch !== null) verifySignals();
  }

  /** Removes every handler and restores the actions they replaced (the loop is closing). */
  close(): void {
    for (const signo of [...this.#handlers.keys()]) this.remove(signo);
  }

  #closeWatch(watch: SignalWatch): void {
    if (!watch.closed) this.#loop.removeReader(watch.fileno());
    watch.close();
  }

  // The wake fd's reader: queue the handler of each signal that arrived.
  #dispatch(): void {
    const watch = this.#watch;
    if (watch === null) return;
    watch.read();
    for (const [signo, handle] of this.#handlers) if (watch.pending(signo)) this.#loop.schedule(handle);
  }
}
