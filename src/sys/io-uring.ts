/**
 * io_uring, the notes' fifth I/O model: the kernel does the copy and reports
 * completion (asynchronous I/O), where select, poll and epoll only say that
 * a copy would not block.
 *
 * An {@link IoUring} stages operations in a shared array (no call into the
 * addon per operation) and {@link IoUring.submit} hands the whole batch to
 * the kernel in one io_uring_enter(2), waits if asked, and leaves the
 * completions in {@link IoUring.completions}.
 *
 * JavaScript never hands the kernel an address. The bytes an operation
 * reads or writes live in memory the ring owns and keeps mapped while the
 * kernel may use it: the {@link IoUring.arena} (sends, reads, writes and
 * socket addresses, named by offset and length, bounds-checked natively) and
 * the provided receive buffers, {@link IoUring.buffers} (the kernel picks
 * one when data arrives; named by id). Closing the ring cancels whatever is
 * in flight and waits for it; no buffer is freed under a pending request.
 *
 * @example
 * ```ts
 * if (IoUring.available()) {
 *   using ring = new IoUring();
 *   ring.timeout(50, 0, 1);          // user data 1: a 50 ms timer
 *   ring.submit(true);               // waits for it: 1 completion
 *   const [userData, , res] = ring.completions; // 1, -62 (-ETIME)
 * }
 * ```
 *
 * @module
 */
import { invalidArgType, outOfRange } from './args.js';
import type { NativeIoUring } from './binding.js';
import { native } from './native.js';

/** Staged operation codes: field 0 of a staged record (native/uring.cc). */
const OP_NOP = 0;
const OP_POLL_ADD = 1;
const OP_POLL_REMOVE = 2;
const OP_ACCEPT = 3;
const OP_CONNECT = 4;
const OP_RECV = 5;
const OP_RECV_PROVIDED = 6;
const OP_SEND = 7;
const OP_READ = 8;
const OP_WRITE = 9;
const OP_CLOSE = 10;
const OP_TIMEOUT = 11;
const OP_CANCEL = 12;
const OP_RECYCLE = 13;
const OP_SHUTDOWN = 14;

/** The completion's flags: it carries a provided buffer (its id is `flags >>> 16`). */
export const IORING_CQE_F_BUFFER = 1;
/** The completion's flags: the (multishot) request will complete again. */
export const IORING_CQE_F_MORE = 2;
/** The completion's flags: the socket had more data queued after this receive. */
export const IORING_CQE_F_SOCK_NONEMPTY = 4;
/** Ints per completion record in {@link IoUring.completions}: user data low, high, res, flags. */
export const COMPLETION_INTS = 4;
/** The largest high word of user data (JavaScript owns 62 bits of it). */
export const MAX_USER_DATA_HIGH = 2 ** 30 - 1;

const RECORD_INTS = 8;

/** IoUring options. */
export interface IoUringOptions {
  /** Submission queue entries (rounded up to a power of two; default 256, at most 32768). */
  entries?: number;
  /** Completion queue entries (default: four times `entries`). */
  completions?: number;
  /** Bytes of the arena for sends, reads, writes and addresses (default 1 MiB; mapped lazily). */
  arenaBytes?: number;
  /** Provided receive buffers: how many (a power of two, 0 for none; default 256). */
  bufferCount?: number;
  /** The size of each provided buffer in bytes (default 16 KiB). */
  bufferSize?: number;
  /**
   * IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN (default true): completions are
   * posted only when this thread submits, which batches them.
   */
  deferTaskrun?: boolean;
}

let availability: number | null = null;

/**
 * An io_uring instance: a submission and a completion queue, an arena and a
 * ring of provided receive buffers. Each staging method queues one
 * operation with its user data (`low`, an int32, and `high`, in
 * [0, 2^30)); {@link submit} sends them all. A staged operation is checked
 * when submitted: a bad one throws there and nothing of that batch is
 * submitted.
 *
 * Results are the kernel's: `res` is a byte count, an fd (accept) or
 * `-errno` (e.g. -ECANCELED, -ETIME for an expired timeout).
 */
export class IoUring implements Disposable {
  /** The bytes operations read from and write into, by offset. */
  readonly arena: Buffer;
  /** The provided receive buffers, `bufferSize` bytes each, by id. */
  readonly buffers: Buffer;
  /** The bytes per provided buffer. */
  readonly bufferSize: number;
  /** How many provided buffers there are. */
  readonly bufferCount: number;
  /** The last submit's completions: records of {@link COMPLETION_INTS} ints. */
  readonly completions: Int32Array;
  /** Submission queue entries. */
  readonly entries: number;
  readonly #ring: NativeIoUring;
  readonly #sq: Int32Array;
  readonly #capacity: number;
  #staged = 0;

  /**
   * True when io_uring works here: not when the kernel lacks it (ENOSYS) or
   * it is disabled (the kernel.io_uring_disabled sysctl, a container's
   * seccomp filter: EPERM).
   */
  static available(): boolean {
    availability ??= native.uringAvailable();
    return availability === 0;
  }

  /**
   * @throws {OSError} ENOSYS / EPERM where io_uring is unavailable (see {@link available}), ENOMEM
   * @throws {RangeError} for sizes out of range, a bufferCount that is not a power of two
   */
  constructor(options: IoUringOptions = {}) {
    if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'an object', options);
    const entries = options.entries ?? 256;
    const bufferCount = options.bufferCount ?? 256;
    const bufferSize = options.bufferSize ?? 16384;
    this.#ring = native.createIoUring(
      entries,
      options.completions ?? 0,
      options.arenaBytes ?? 1 << 20,
      bufferCount,
      bufferCount === 0 ? 0 : bufferSize,
      (options.deferTaskrun ?? true) ? 1 : 0,
    );
    this.#sq = this.#ring.sq;
    this.#capacity = this.#sq.length / RECORD_INTS;
    this.entries = this.#ring.sqEntries;
    this.completions = this.#ring.cq;
    this.arena = this.#ring.arena;
    this.buffers = this.#ring.buffers;
    this.bufferCount = bufferCount;
    this.bufferSize = bufferCount === 0 ? 0 : bufferSize;
  }

  /** The ring's fd: readable when completions are waiting (a loop can poll it). */
  fileno(): number {
    return this.#ring.fileno();
  }

  /** Operations staged since the last submit. */
  get staged(): number {
    return this.#staged;
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#ring.closed();
  }

  /** Requests the kernel holds, and io_uring_enter calls made so far. */
  stats(): { inflight: number; enters: number } {
    const [inflight, enters] = this.#ring.stats();
    return { inflight, enters };
  }

  /**
   * Submits what was staged in one io_uring_enter(2) and collects the
   * completions into {@link completions}.
   *
   * @param wait - when no completion is ready, wait for one
   * @param timeoutMs - how long to wait at most (milliseconds, -1: no limit)
   * @returns how many completion records were written
   * @throws {RangeError} for a staged operation out of range (nothing of the batch is submitted)
   * @throws {OSError} EBADF after close
   */
  submit(wait = false, timeoutMs = -1): number {
    const count = this.#staged;
    // Staged operations go with this call whether or not it throws.
    this.#staged = 0;
    return this.#ring.submit(count, wait, timeoutMs);
  }

  /**
   * Hands the kernel what is staged, without waiting and without
   * collecting completions (they wait for the next {@link submit}).
   *
   * @throws {RangeError} for a staged operation out of range
   */
  flush(): void {
    const count = this.#staged;
    this.#staged = 0;
    this.#ring.submit(count, false, 0, false);
  }

  /** Stages a no-op (it completes with res 0). */
  nop(low: number, high = 0): void {
    this.#stage(OP_NOP, -1, low, high, 0, 0, 0, 0, N_NOP);
  }

  /** Stages a poll for `events` (POLLIN, POLLOUT...): res is the revents. Multishot completes on each readiness. */
  pollAdd(fd: number, events: number, low: number, high = 0, multishot = false): void {
    this.#stage(OP_POLL_ADD, fd, low, high, events, multishot ? 1 : 0, 0, 0, N_POLL);
  }

  /** Stages the removal of the poll with user data (targetLow, targetHigh); it completes with -ECANCELED. */
  pollRemove(targetLow: number, targetHigh: number, low: number, high = 0): void {
    this.#stage(OP_POLL_REMOVE, -1, low, high, targetLow, targetHigh, 0, 0, N_TARGET);
  }

  /** Stages accept4 (non-blocking, CLOEXEC): res is the new fd. */
  accept(fd: number, low: number, high = 0, multishot = false): void {
    this.#stage(OP_ACCEPT, fd, low, high, 0, multishot ? 1 : 0, 0, 0, N_NOP);
  }

  /**
   * Writes a socket address to the arena at `offset`, for {@link connect}.
   *
   * @returns its length in bytes
   * @throws {TypeError} / {RangeError} for an address the family does not take, or no room
   */
  writeAddress(family: number, address: unknown, offset: number): number {
    return this.#ring.writeAddress(family, address, offset);
  }

  /** Stages connect to the address at arena bytes [offset, offset + length). */
  connect(fd: number, offset: number, length: number, low: number, high = 0): void {
    this.#stage(OP_CONNECT, fd, low, high, offset, length, 0, 0, N_RANGE);
  }

  /** Stages recv into arena bytes [offset, offset + length). */
  recv(fd: number, offset: number, length: number, low: number, high = 0, flags = 0): void {
    this.#stage(OP_RECV, fd, low, high, offset, length, flags, 0, N_RANGE);
  }

  /**
   * Stages recv into a provided buffer the kernel picks when data arrives
   * (none is held while waiting); the completion's flags carry its id. Give
   * it back with {@link recycle}. `maxLength` 0 means the whole buffer.
   * Multishot receives again each time data arrives, until an error or EOF.
   */
  recvProvided(fd: number, maxLength: number, low: number, high = 0, multishot = false, flags = 0): void {
    this.#stage(OP_RECV_PROVIDED, fd, low, high, 0, maxLength, flags, multishot ? 1 : 0, N_PROVIDED);
  }

  /** Stages send (with MSG_NOSIGNAL) of arena bytes [offset, offset + length). */
  send(fd: number, offset: number, length: number, low: number, high = 0, flags = 0): void {
    this.#stage(OP_SEND, fd, low, high, offset, length, flags, 0, N_RANGE);
  }

  /** Stages read(2) into arena bytes [offset, offset + length), at file `position` (-1: the current one). */
  read(fd: number, offset: number, length: number, low: number, high = 0, position = -1): void {
    const [lowPos, highPos] = splitPosition(position);
    this.#stage(OP_READ, fd, low, high, offset, length, lowPos, highPos, N_FILE);
  }

  /** Stages write(2) of arena bytes [offset, offset + length), at file `position` (-1: the current one). */
  write(fd: number, offset: number, length: number, low: number, high = 0, position = -1): void {
    const [lowPos, highPos] = splitPosition(position);
    this.#stage(OP_WRITE, fd, low, high, offset, length, lowPos, highPos, N_FILE);
  }

  /** Stages close(2) of an fd number (not of a Socket object's: close those with their close()). */
  closeFd(fd: number, low: number, high = 0): void {
    this.#stage(OP_CLOSE, fd, low, high, 0, 0, 0, 0, N_NOP);
  }

  /** Stages shutdown(2). */
  shutdown(fd: number, how: number, low: number, high = 0): void {
    this.#stage(OP_SHUTDOWN, fd, low, high, how, 0, 0, 0, N_SHUTDOWN);
  }

  /** Stages a timer of `ms` milliseconds: -ETIME when it expires, 0 once `count` other completions came first (0: never). */
  timeout(ms: number, count: number, low: number, high = 0): void {
    this.#stage(OP_TIMEOUT, -1, low, high, ms, count, 0, 0, N_TIMEOUT);
  }

  /** Stages the cancellation of the request with user data (targetLow, targetHigh). */
  cancel(targetLow: number, targetHigh: number, low: number, high = 0): void {
    this.#stage(OP_CANCEL, -1, low, high, targetLow, targetHigh, 0, 0, N_TARGET);
  }

  /** Stages the cancellation of every request on `fd`. */
  cancelFd(fd: number, low: number, high = 0): void {
    this.#stage(OP_CANCEL, fd, low, high, 0, 0, 1, 0, N_NOP);
  }

  /** Gives provided buffer `id` back to the kernel (with the next submit; no completion). */
  recycle(id: number): void {
    this.#stage(OP_RECYCLE, -1, 0, 0, id, 0, 0, 0, N_RECYCLE);
  }

  /** The bytes of provided buffer `id` (a view, valid until it is recycled). */
  buffer(id: number, length = this.bufferSize): Buffer {
    const start = id * this.bufferSize;
    return this.buffers.subarray(start, start + Math.min(length, this.bufferSize));
  }

  /**
   * Cancels every request in flight, waits for their completions (at most 2 s;
   * memory the kernel may still use then stays mapped), and closes the ring.
   * Idempotent.
   */
  close(): void {
    this.#staged = 0;
    this.#ring.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #stage(
    op: number,
    fd: number,
    low: number,
    high: number,
    a: number,
    b: number,
    c: number,
    d: number,
    names: readonly string[],
  ): void {
    let i = this.#staged;
    if (i >= this.#capacity) {
      // Full: hand the kernel what is staged, leaving the completions
      // for the next submit (and this operation's checks to this one).
      this.#staged = 0;
      this.#ring.submit(i, false, 0, false);
      i = 0;
    }
    // An Int32Array would turn 'abc' into fd 0 and 2**32 into 0: every
    // field must be an int32 already.
    if (
      (fd | 0) !== fd ||
      (low | 0) !== low ||
      (high | 0) !== high ||
      (a | 0) !== a ||
      (b | 0) !== b ||
      (c | 0) !== c ||
      (d | 0) !== d
    ) {
      throw badField([fd, low, high, a, b, c, d], names);
    }
    const sq = this.#sq;
    const at = i * RECORD_INTS;
    sq[at] = op;
    sq[at + 1] = fd;
    sq[at + 2] = low;
    sq[at + 3] = high;
    sq[at + 4] = a;
    sq[at + 5] = b;
    sq[at + 6] = c;
    sq[at + 7] = d;
    this.#staged = i + 1;
  }
}

function splitPosition(position: number): [number, number] {
  if (position === -1) return [-1, -1];
  if (typeof position !== 'number') throw invalidArgType('position', 'of type number', position);
  if (!Number.isSafeInteger(position) || position < 0) throw outOfRange('position', '-1 or an integer >= 0', position);
  return [(position % 2 ** 32) | 0, Math.floor(position / 2 ** 32) | 0];
}

// The argument names of each staging method, by record field (fd, low,
// high, a, b, c, d), for the error a bad one gets.
const N_NOP = ['fd', 'low', 'high', 'a', 'b', 'c', 'd'];
const N_POLL = ['fd', 'low', 'high', 'events', 'b', 'c', 'd'];
const N_TARGET = ['fd', 'low', 'high', 'targetLow', 'targetHigh', 'c', 'd'];
const N_RANGE = ['fd', 'low', 'high', 'offset', 'length', 'flags', 'd'];
const N_PROVIDED = ['fd', 'low', 'high', 'a', 'maxLength', 'flags', 'd'];
const N_FILE = ['fd', 'low', 'high', 'offset', 'length', 'position', 'position'];
const N_SHUTDOWN = ['fd', 'low', 'high', 'how', 'b', 'c', 'd'];
const N_TIMEOUT = ['fd', 'low', 'high', 'ms', 'count', 'c', 'd'];
const N_RECYCLE = ['fd', 'low', 'high', 'id', 'b', 'c', 'd'];

function badField(values: unknown[], names: readonly string[]): Error {
  const i = values.findIndex((v) => typeof v !== 'number' || (v | 0) !== v);
  const value = values[i];
  const name = names[i] as string;
  if (typeof value !== 'number') return invalidArgType(name, 'of type number', value);
  return outOfRange(name, 'an int32', value);
}
