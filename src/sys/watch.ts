/**
 * Ways to sleep inside Node's own event loop until fds are ready, for event
 * loops that share the thread with Node (iomux's cooperative mode).
 *
 * @module
 */
import type { NativeFdWatcher, NativeWaitThread } from './binding.js';
import type { OSError } from './errors.js';
import { native } from './native.js';

/**
 * libuv watches `fd` for readability (a uv_poll_t) and calls `callback` on
 * this thread each time it is readable while started. Watch an epoll fd
 * with it: it is readable whenever any fd registered in it is ready.
 *
 * Like any Node handle it keeps the process alive while started, unless unref'ed.
 */
export class FdWatcher implements Disposable {
  readonly #native: NativeFdWatcher;

  /**
   * @param callback - called on readability; called once with an OSError
   *   instead (EBADF) when the kernel reports an error on the fd, after which
   *   the watcher is stopped
   * @throws {OSError} when libuv refuses the fd
   */
  constructor(fd: number, callback: (error?: OSError) => void) {
    this.#native = new native.FdWatcher(fd, callback);
  }

  /**
   * Starts calling back on readability.
   *
   * @throws {OSError} EBADF once closed, or when the fd was closed since
   */
  start(): void {
    this.#native.start();
  }

  /** Stops calling back. */
  stop(): void {
    this.#native.stop();
  }

  /** Keeps the process alive while started (the default). */
  ref(): void {
    this.#native.ref();
  }

  /** Lets the process exit even while started. */
  unref(): void {
    this.#native.unref();
  }

  /** Stops and frees the libuv handle. Idempotent. */
  close(): void {
    this.#native.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * A helper thread that blocks in select(2) or poll(2) on a snapshot of
 * (fd, mask) pairs (mask 1: read, 2: write) and calls `callback` on this
 * thread once something is ready. It keeps the process alive only while
 * armed. For backends with no fd of their own to hand to libuv.
 */
export class WaitThread implements Disposable {
  readonly #native: NativeWaitThread;

  constructor(callback: () => void) {
    this.#native = new native.WaitThread(callback);
  }

  /**
   * Waits on `pairs` in the helper thread (replacing any wait under way);
   * calls back once when one is ready.
   *
   * @param keepAlive - keep the process alive while waiting (default true)
   */
  arm(pairs: Int32Array, keepAlive = true): void {
    this.#native.arm(pairs, keepAlive);
  }

  /** Cancels the wait under way without calling back. */
  disarm(): void {
    this.#native.disarm();
  }

  /** Stops and joins the thread. Idempotent. */
  close(): void {
    this.#native.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
