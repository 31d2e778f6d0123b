/**
 * Argument checks on the TypeScript side, worded exactly as the addon's
 * (`The "fd" argument must be an integer. Received 1.5`) and carrying Node's
 * stable codes: ERR_INVALID_ARG_TYPE, ERR_INVALID_ARG_VALUE, ERR_OUT_OF_RANGE.
 * Internal to iomux, but for {@link FileLike}.
 *
 * @module
 */

/** Anything with a file descriptor: an fd number, or an object with `fileno()`. */
export type FileLike = number | { fileno(): number };

type Coded<E extends Error> = E & { code: string };

function withCode<E extends Error>(error: E, code: string): Coded<E> {
  return Object.assign(error, { code });
}

/** Describes a received value as Node's argument errors do. */
export function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  switch (typeof value) {
    case 'number':
    case 'bigint':
      return String(value);
    case 'string': {
      const s = value.length > 28 ? `${value.slice(0, 25)}...` : value;
      return `type string ('${s}')`;
    }
    case 'boolean':
      return `type boolean (${value})`;
    case 'function':
      return 'function';
    case 'symbol':
      return 'type symbol';
    default:
      return `an instance of ${(value as object).constructor?.name ?? 'Object'}`;
  }
}

export function invalidArgType(name: string, expected: string, value: unknown): Coded<TypeError> {
  return withCode(
    new TypeError(`The "${name}" argument must be ${expected}. Received ${describe(value)}`),
    'ERR_INVALID_ARG_TYPE',
  );
}

export function invalidArgValue(message: string): Coded<TypeError> {
  return withCode(new TypeError(message), 'ERR_INVALID_ARG_VALUE');
}

export function outOfRange(name: string, expected: string, value: unknown): Coded<RangeError> {
  return withCode(
    new RangeError(`The "${name}" argument must be ${expected}. Received ${describe(value)}`),
    'ERR_OUT_OF_RANGE',
  );
}

/** An integer number in [min, max]. */
export function checkInt(value: unknown, name: string, min: number, max: number): number {
  // The throws live in badInt: this stays small enough for V8 to inline on
  // hot paths (sockSendAll checks an offset and a length per message).
  if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) return value;
  return badInt(value, name, min, max);
}

function badInt(value: unknown, name: string, min: number, max: number): never {
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value);
  if (!Number.isInteger(value)) throw outOfRange(name, 'an integer', value);
  throw outOfRange(name, `>= ${min} and <= ${max}`, value);
}

/**
 * The fd of a file-like: the number itself or what `fileno()` returns.
 *
 * @throws {TypeError} when it is neither an integer nor has `fileno()`
 * @throws {RangeError} when the fd is negative or not an integer
 */
export function toFd(fileobj: unknown, name = 'fileobj'): number {
  let fd: unknown = fileobj;
  if (typeof fileobj !== 'number') {
    const fileno = (fileobj as { fileno?: unknown } | null | undefined)?.fileno;
    if (typeof fileno !== 'function') {
      throw invalidArgType(name, 'an fd number or an object with a fileno() method', fileobj);
    }
    fd = fileno.call(fileobj);
    if (typeof fd !== 'number') throw invalidArgType(`${name}.fileno()`, 'of type number', fd);
  }
  if (!Number.isInteger(fd)) throw outOfRange(name, 'an integer file descriptor', fd);
  if ((fd as number) < 0) throw outOfRange(name, 'a file descriptor >= 0', fd);
  if ((fd as number) > 0x7fffffff) throw outOfRange(name, 'a file descriptor <= 2147483647', fd);
  return fd as number;
}

const MAX_TIMEOUT_MS = 0x7fffffff;

/**
 * A timeout in milliseconds as the kernel takes it: whole ms rounded up (a
 * sub-millisecond wait never becomes a busy 0), -1 for "no limit".
 * `null`/`undefined`/`Infinity` block without limit. A negative value
 * blocks without limit (`'block'`, like Python's poll and epoll), is an
 * error (`'error'`, like Python's select) or polls (`'poll'`, like Python's
 * selectors, which also clamp a huge value to 2^31 - 1 ms rather than refuse it).
 *
 * @throws {TypeError} when it is not a number
 * @throws {RangeError} when it is NaN; above 2^31 - 1 ms (but under `'poll'`); negative under `'error'`
 */
export function toTimeoutMs(timeoutMs: unknown, negative: 'block' | 'error' | 'poll'): number {
  if (timeoutMs === undefined || timeoutMs === null) return -1;
  if (typeof timeoutMs !== 'number') throw invalidArgType('timeoutMs', 'of type number', timeoutMs);
  if (Number.isNaN(timeoutMs)) throw outOfRange('timeoutMs', 'a number of milliseconds', timeoutMs);
  if (timeoutMs < 0) {
    if (negative === 'error') throw outOfRange('timeoutMs', 'non-negative', timeoutMs);
    return negative === 'poll' ? 0 : -1;
  }
  if (timeoutMs === Number.POSITIVE_INFINITY) return -1;
  const ms = Math.ceil(timeoutMs);
  if (ms <= MAX_TIMEOUT_MS) return ms;
  if (negative === 'poll') return MAX_TIMEOUT_MS;
  throw outOfRange('timeoutMs', `<= ${MAX_TIMEOUT_MS}`, timeoutMs);
}

/** Grows a scratch array to at least `n` entries (doubling, so it settles fast). */
export function ensureInt32(array: Int32Array<ArrayBuffer>, n: number): Int32Array<ArrayBuffer> {
  if (array.length >= n) return array;
  let size = Math.max(array.length, 16);
  while (size < n) size *= 2;
  return new Int32Array(size);
}
