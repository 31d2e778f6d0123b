/**
 * `epoll(7)` as an object, like Python's `select.epoll()`.
 *
 * @module
 */
import { checkInt, ensureInt32, type FileLike, outOfRange, toFd, toTimeoutMs } from './args.js';
import type { NativeEpoll } from './binding.js';
import {
  EPOLL_CLOEXEC,
  EPOLL_CTL_ADD,
  EPOLL_CTL_DEL,
  EPOLL_CTL_MOD,
  EPOLL_EVENT_FD_INDEX,
  EPOLL_EVENT_INTS,
  EPOLLIN,
  EPOLLOUT,
  EPOLLPRI,
} from './constants.js';
import { native } from './native.js';

const DEFAULT_MAX_EVENTS = 1024;

/** Options of {@link Epoll} beyond Python's. */
export interface EpollOptions {
  /**
   * Records in the epoll's own result array, {@link Epoll.events}: the most
   * events one {@link Epoll.pollInto} without an `out` array reports (default 1024).
   */
  maxEvents?: number;
}

/**
 * An event mask as the kernel's u32. `EPOLLIN | EPOLLET` is negative in
 * JavaScript (bitwise operators yield int32, and EPOLLET is bit 31), so the
 * signed form is taken too.
 */
function toEventMask(events: number): number {
  return checkInt(events, 'events', -0x80000000, 0xffffffff) >>> 0;
}
const MAX_EVENTS_LIMIT = 1 << 20;

/**
 * An epoll instance of its own (one epoll fd per object, CLOEXEC), closed by
 * {@link close} or when collected.
 *
 * Timeouts are in milliseconds (Python's `epoll.poll` takes seconds).
 *
 * @example
 * ```ts
 * using ep = new Epoll();
 * ep.register(sock, EPOLLIN);
 * for (const [fd, events] of ep.poll(1000)) console.log(fd, events);
 *
 * // The allocation-free form used by the event loop:
 * const out = new Int32Array(64 * EPOLL_EVENT_INTS);
 * const n = ep.pollInto(0, out);
 * for (let i = 0; i < n; i++) {
 *   const events = out[i * EPOLL_EVENT_INTS];
 *   const fd = out[i * EPOLL_EVENT_INTS + EPOLL_EVENT_FD_INDEX];
 * }
 * ```
 */
export class Epoll implements Disposable {
  readonly #native: NativeEpoll;
  readonly #maxEvents: number;
  #out = new Int32Array(64 * EPOLL_EVENT_INTS);

  /**
   * @param sizehint - ignored by Linux; -1 or a positive number, as in Python
   * @param flags - 0 or EPOLL_CLOEXEC (the fd is always CLOEXEC)
   * @throws {RangeError} for a sizehint of 0 or below -1, unknown flags, or
   *   maxEvents outside 1..2^20
   * @throws {OSError} when the kernel refuses (EMFILE, ENOMEM)
   */
  constructor(sizehint = -1, flags = 0, options: EpollOptions = {}) {
    checkInt(sizehint, 'sizehint', -1, 0x7fffffff);
    if (sizehint === 0) throw outOfRange('sizehint', '-1 or positive', sizehint);
    checkInt(flags, 'flags', 0, 0x7fffffff);
    if ((flags & ~EPOLL_CLOEXEC) !== 0) throw outOfRange('flags', '0 or EPOLL_CLOEXEC', flags);
    this.#maxEvents = checkInt(options.maxEvents ?? DEFAULT_MAX_EVENTS, 'maxEvents', 1, MAX_EVENTS_LIMIT);
    this.#native = native.createEpoll(this.#maxEvents);
  }

  /** The epoll fd itself (it is readable whenever a registered fd is ready). */
  fileno(): number {
    return this.#native.fileno();
  }

  /**
   * Watches fd (epoll_ctl ADD).
   *
   * @param events - EPOLL* bits (default EPOLLIN | EPOLLPRI | EPOLLOUT)
   * @throws {RangeError} when events has non-EPOLL* bits
   * @throws {OSError} EEXIST when already registered; EBADF when fd is not
   *   open or the epoll is closed; EPERM for regular files
   */
  register(fd: FileLike, events: number = EPOLLIN | EPOLLPRI | EPOLLOUT): void {
    this.#native.ctl(EPOLL_CTL_ADD, toFd(fd, 'fd'), toEventMask(events));
  }

  /**
   * Changes the events of a watched fd (epoll_ctl MOD).
   *
   * @throws {OSError} ENOENT when fd is not registered
   */
  modify(fd: FileLike, events: number): void {
    this.#native.ctl(EPOLL_CTL_MOD, toFd(fd, 'fd'), toEventMask(events));
  }

  /**
   * Stops watching fd (epoll_ctl DEL).
   *
   * @throws {OSError} ENOENT when not registered; EBADF when fd was closed
   *   (closing an fd already removed it from every epoll set)
   */
  unregister(fd: FileLike): void {
    this.#native.ctl(EPOLL_CTL_DEL, toFd(fd, 'fd'), 0);
  }

  /**
   * As {@link unregister}, but what the kernel refuses is not an error: for
   * event loops removing fds that may have been closed already (EBADF) or
   * never registered (ENOENT), where building an exception would cost more
   * than the syscall. Named like `Set.delete`, not `try*`: it never blocks.
   *
   * @returns true when the fd was removed, false when the kernel had nothing to remove
   * @throws {OSError} EBADF when the epoll itself is closed
   */
  discard(fd: FileLike): boolean {
    return this.#native.ctl(EPOLL_CTL_DEL, toFd(fd, 'fd'), 0, true) === 0;
  }

  /**
   * @internal epoll_ctl ADD or MOD with a tag: the kernel returns it with
   * each event at `[i * EPOLL_EVENT_INTS + EPOLL_EVENT_TAG_INDEX]`, so a
   * selector can tell the registration an event comes from.
   *
   * @returns 0, or with `quiet` the errno the kernel refused with
   * @throws {OSError} what the kernel refuses, unless `quiet`
   */
  ctlTagged(op: number, fd: number, events: number, tag: number, quiet = false): number {
    return this.#native.ctl(op, fd, events >>> 0, quiet, tag);
  }

  /**
   * @internal Replaces the kernel's epoll instance by an empty one at the
   * same fd number: the one way to drop a registration whose fd was closed
   * while a duplicate keeps its file open. The caller registers again what
   * it watches.
   *
   * @throws {OSError} EBADF when closed; EMFILE, ENOMEM
   */
  renew(): void {
    this.#native.renew();
  }

  /**
   * Waits for events, like Python's `epoll.poll(timeout, maxevents)`.
   *
   * @param timeoutMs - milliseconds, rounded up; 0 polls; negative, `null`
   *   or `undefined` waits without limit
   * @param maxevents - at most this many events (-1: 1024)
   * @returns `[fd, events]` for each ready fd
   * @throws {RangeError} when maxevents is 0, below -1 or above 2^20
   */
  poll(timeoutMs?: number | null, maxevents = -1): [number, number][] {
    checkInt(maxevents, 'maxevents', -1, MAX_EVENTS_LIMIT);
    if (maxevents === 0) throw outOfRange('maxevents', '-1 or positive', maxevents);
    let out: Int32Array;
    let n: number;
    if (maxevents === -1 || maxevents === this.#maxEvents) {
      n = this.pollInto(timeoutMs);
      out = this.#native.events;
    } else {
      this.#out = ensureInt32(this.#out, maxevents * EPOLL_EVENT_INTS);
      out =
        this.#out.length === maxevents * EPOLL_EVENT_INTS
          ? this.#out
          : this.#out.subarray(0, maxevents * EPOLL_EVENT_INTS);
      n = this.pollInto(timeoutMs, out);
    }
    const result: [number, number][] = new Array(n);
    for (let i = 0; i < n; i++) {
      const at = i * EPOLL_EVENT_INTS;
      result[i] = [out[at + EPOLL_EVENT_FD_INDEX] as number, (out[at] as number) >>> 0];
    }
    return result;
  }

  /**
   * The allocation-free wait. The kernel writes `struct epoll_event` records
   * straight into an Int32Array: `out` when given (up to
   * `out.length / EPOLL_EVENT_INTS` records), else this epoll's own
   * {@link events} (up to `maxEvents`). Record i has its events at
   * `[i * EPOLL_EVENT_INTS]` (read them with `>>> 0`: EPOLLET is the sign
   * bit) and its fd at `[i * EPOLL_EVENT_INTS + EPOLL_EVENT_FD_INDEX]`.
   *
   * @param timeoutMs - milliseconds, rounded up; 0 polls; negative, `null`
   *   or `undefined` waits without limit
   * @returns the number of records written
   * @throws {RangeError} when `out` holds less than one record
   * @throws {OSError} EBADF when the epoll is closed
   */
  pollInto(timeoutMs: number | null | undefined, out?: Int32Array): number {
    const ms = toTimeoutMs(timeoutMs, 'block');
    return out === undefined ? this.#native.wait(ms) : this.#native.waitInto(ms, out);
  }

  /**
   * This epoll's own result array, which {@link pollInto} without `out` fills:
   * `maxEvents` records over native memory, the same array for the life of
   * the object. {@link close} frees that memory at once and leaves the array
   * empty (detached): a closed epoll holds no native memory for the
   * collector to find.
   */
  get events(): Int32Array {
    return this.#native.events;
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#native.closed();
  }

  /** Closes the epoll fd; later calls raise EBADF. Idempotent. */
  close(): void {
    this.#native.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
