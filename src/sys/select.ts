/**
 * `select(2)` with Python's `select.select()` signature.
 *
 * @module
 */
import { checkInt, ensureInt32, type FileLike, invalidArgType, toFd, toTimeoutMs } from './args.js';
import type { NativeSelectSet } from './binding.js';
import { native } from './native.js';

/** {@link SelectSet} mask bit: watch for reading. */
export const SELECT_READ = 1;
/** {@link SelectSet} mask bit: watch for writing. */
export const SELECT_WRITE = 2;

// Reused across calls: the fd lists are flattened into one Int32Array and the
// addon answers with indices into it, so a call allocates only its results.
let fdScratch = new Int32Array(64);
let outScratch = new Int32Array(64);

// toFd, with the usual case -- a plain fd number -- answered inline.
function fdOf(entry: unknown, name: string): number {
  return typeof entry === 'number' && entry >= 0 && (entry | 0) === entry ? entry : toFd(entry, name);
}

function checkList(list: unknown, name: string): void {
  if (!Array.isArray(list)) throw invalidArgType(name, 'an array of fds or objects with fileno()', list);
}

/**
 * Waits until some of the given files are ready, like Python's
 * `select.select(rlist, wlist, xlist, timeout)`: returns the subsets of
 * `readable`, `writable` and `exceptional` that are ready, as the same
 * objects that were passed in, in the order they were passed.
 *
 * Interrupted by a signal, the wait resumes with what is left of the timeout.
 *
 * @param readable - fds or objects with `fileno()` to watch for reading
 * @param writable - ... for writing
 * @param exceptional - ... for exceptional conditions (TCP urgent data)
 * @param timeoutMs - milliseconds to wait at most, rounded up; 0 polls;
 *   `null`/`undefined` waits without limit
 * @returns `[readableReady, writableReady, exceptionalReady]`
 * @throws {RangeError} when an fd is negative or >= FD_SETSIZE (1024): select
 *   cannot watch it (use {@link Poll} or {@link Epoll}); when timeoutMs is
 *   negative or NaN
 * @throws {TypeError} when an entry is neither an fd nor has `fileno()`
 * @throws {OSError} EBADF when an fd is not open
 *
 * @example
 * ```ts
 * const [r] = select([sock], [], [], 1000);
 * if (r.length > 0) console.log(sock.recv(1024));
 * ```
 */
export function select<R extends FileLike, W extends FileLike, X extends FileLike>(
  readable: readonly R[],
  writable: readonly W[],
  exceptional: readonly X[],
  timeoutMs?: number | null,
): [R[], W[], X[]] {
  const ms = toTimeoutMs(timeoutMs, 'error');
  checkList(readable, 'readable');
  checkList(writable, 'writable');
  checkList(exceptional, 'exceptional');
  const nr = readable.length;
  const nw = writable.length;
  const nx = exceptional.length;
  const total = nr + nw + nx;
  fdScratch = ensureInt32(fdScratch, total);
  outScratch = ensureInt32(outScratch, total + 3);
  const fds = fdScratch;
  for (let i = 0; i < nr; i++) fds[i] = fdOf(readable[i], 'readable');
  for (let i = 0; i < nw; i++) fds[nr + i] = fdOf(writable[i], 'writable');
  for (let i = 0; i < nx; i++) fds[nr + nw + i] = fdOf(exceptional[i], 'exceptional');
  const out = outScratch;
  const ready = native.select(fds, nr, nw, nx, ms, out);
  const r: R[] = [];
  const w: W[] = [];
  const x: X[] = [];
  if (ready === 0) return [r, w, x];
  const endR = 3 + (out[0] as number);
  const endW = endR + (out[1] as number);
  const endX = endW + (out[2] as number);
  for (let i = 3; i < endR; i++) r.push(readable[out[i] as number] as R);
  for (let i = endR; i < endW; i++) w.push(writable[(out[i] as number) - nr] as W);
  for (let i = endW; i < endX; i++) x.push(exceptional[(out[i] as number) - nr - nw] as X);
  return [r, w, x];
}

/**
 * `select(2)` over fd_sets kept in native memory and changed one fd at a
 * time, for event loops: unlike {@link select}, a wait rebuilds nothing.
 * Beyond Python's API; what `selectors.SelectSelector` uses.
 *
 * @example
 * ```ts
 * using set = new SelectSet();
 * set.set(sock, SELECT_READ);
 * const n = set.wait(1000);
 * for (let i = 0; i < n; i++) console.log(set.events[2 * i], set.events[2 * i + 1]);
 * ```
 */
export class SelectSet implements Disposable {
  readonly #native: NativeSelectSet = native.createSelectSet();

  /**
   * Watches fd for `mask` (SELECT_READ | SELECT_WRITE); 0 stops watching.
   *
   * @throws {RangeError} when fd >= FD_SETSIZE (select cannot watch it) or mask is not 0..3
   * @throws {OSError} EBADF when fd is not open, or the set is closed
   */
  set(fd: FileLike, mask: number): void {
    this.#native.ctl(toFd(fd, 'fd'), checkInt(mask, 'mask', 0, SELECT_READ | SELECT_WRITE));
  }

  /**
   * Waits; writes `(fd, mask)` pairs to {@link events} in fd order.
   *
   * @param timeoutMs - milliseconds, rounded up; 0 polls; negative, `null`
   *   or `undefined` waits without limit
   * @returns how many pairs
   */
  wait(timeoutMs: number | null | undefined): number {
    return this.#native.wait(toTimeoutMs(timeoutMs, 'block'));
  }

  /** The pairs of the last wait (the same array for the life of the set). */
  get events(): Int32Array {
    return this.#native.events;
  }

  /** How many fds are watched. */
  get size(): number {
    return this.#native.size();
  }

  /** Empties and closes the set; later calls raise EBADF. Idempotent. */
  close(): void {
    this.#native.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
