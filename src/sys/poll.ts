/**
 * `poll(2)` as an object, like Python's `select.poll()`.
 *
 * @module
 */
import { checkInt, type FileLike, toFd, toTimeoutMs } from './args.js';
import type { NativePoll } from './binding.js';
import { POLLIN, POLLOUT, POLLPRI } from './constants.js';
import { native } from './native.js';

/**
 * A set of fds watched with `poll(2)`. The `struct pollfd` array lives in
 * native memory and each register/modify/unregister changes one entry, so a
 * wait passes it to the kernel as it is: no per-call conversion.
 *
 * Timeouts are in milliseconds (as in Python's `poll.poll`).
 *
 * @example
 * ```ts
 * const p = new Poll();
 * p.register(sock, POLLIN);
 * for (const [fd, revents] of p.poll(1000)) {
 *   if (revents & POLLIN) console.log(fd, 'is readable');
 * }
 * p.close();
 * ```
 */
export class Poll implements Disposable {
  readonly #native: NativePoll = native.createPoll();
  #events: Int32Array = this.#native.events;

  /**
   * Watches `fd` for `events`; an fd already watched gets the new events.
   *
   * @param events - POLL* bits (default POLLIN | POLLPRI | POLLOUT)
   * @throws {RangeError} when the fd is negative or events has non-POLL* bits
   * @throws {OSError} EBADF when the Poll is closed
   */
  register(fd: FileLike, events: number = POLLIN | POLLPRI | POLLOUT): void {
    const grown = this.#native.ctl(1, toFd(fd, 'fd'), checkInt(events, 'events', 0, 0xffff));
    if (grown !== undefined) this.#events = grown;
  }

  /**
   * Changes the events of a watched fd.
   *
   * @throws {OSError} ENOENT when fd is not registered; EBADF when closed
   */
  modify(fd: FileLike, events: number): void {
    this.#native.ctl(2, toFd(fd, 'fd'), checkInt(events, 'events', 0, 0xffff));
  }

  /**
   * Stops watching fd.
   *
   * @throws {OSError} ENOENT when fd is not registered; EBADF when closed
   */
  unregister(fd: FileLike): void {
    this.#native.ctl(3, toFd(fd, 'fd'), 0);
  }

  /**
   * Waits for events, like Python's `poll.poll(timeout)`.
   *
   * @param timeoutMs - milliseconds, rounded up; 0 polls; negative,
   *   `null` or `undefined` waits without limit
   * @returns `[fd, revents]` for each ready fd (revents may also hold
   *   POLLERR, POLLHUP, POLLNVAL)
   * @throws {OSError} EBADF when closed
   */
  poll(timeoutMs?: number | null): [number, number][] {
    const n = this.pollInto(timeoutMs);
    const out = this.#events;
    const result: [number, number][] = new Array(n);
    for (let i = 0; i < n; i++) result[i] = [out[2 * i] as number, out[2 * i + 1] as number];
    return result;
  }

  /**
   * The allocation-free wait: writes `(fd, revents)` pairs into `out` when
   * given (it must hold `2 * size` entries), else into this poll's own
   * {@link events} array, and returns how many pairs.
   *
   * @param timeoutMs - milliseconds, rounded up; 0 polls; negative, `null`
   *   or `undefined` waits without limit
   * @throws {RangeError} when `out` is too small
   * @throws {OSError} EBADF when closed
   */
  pollInto(timeoutMs: number | null | undefined, out?: Int32Array): number {
    const ms = toTimeoutMs(timeoutMs, 'block');
    return out === undefined ? this.#native.wait(ms) : this.#native.waitInto(ms, out);
  }

  /**
   * The pairs the last {@link pollInto} without `out` wrote. Registering
   * more fds may replace the array with a larger one: read this after each
   * wait, don't keep it.
   */
  get events(): Int32Array {
    return this.#events;
  }

  /** How many fds are registered. */
  get size(): number {
    return this.#native.size();
  }

  /** True once {@link close} has been called. */
  get closed(): boolean {
    return this.#native.closed();
  }

  /** Frees the set; later calls raise EBADF. Idempotent. */
  close(): void {
    this.#native.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
