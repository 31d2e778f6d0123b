/**
 * Errors from the kernel, shaped like Node's own (`code`, negative `errno`,
 * `syscall`, message `"connect ECONNREFUSED 127.0.0.1:1"`) and named like
 * Python's (`OSError`, `BlockingIOError`).
 *
 * @module
 */
import { constants as osConstants } from 'node:os';

import { native } from './binding.js';

const { EAGAIN, EINPROGRESS, EALREADY } = native.constants as Record<string, number>;

/**
 * An error reported by a system call.
 *
 * @example
 * ```ts
 * try { sock.connect(['127.0.0.1', 1]); }
 * catch (e) { if (e instanceof OSError && e.code === 'ECONNREFUSED') retryLater(); }
 * ```
 */
export class OSError extends Error {
  /** The errno name, e.g. `'ECONNREFUSED'`. */
  readonly code: string;
  /** The negated errno number, as in Node (`-111` for ECONNREFUSED). */
  readonly errno: number;
  /** The failing call, e.g. `'connect'` or `'epoll_ctl'`. */
  readonly syscall: string;

  /**
   * @param errno - the positive errno value from the kernel
   * @param syscall - the name of the failing call
   * @param detail - what it acted on (an address, an fd), appended to the message
   */
  constructor(errno: number, syscall: string, detail = '') {
    const code = errnoName(errno);
    super(detail === '' ? `${syscall} ${code}` : `${syscall} ${code} ${detail}`);
    this.code = code;
    this.errno = -errno;
    this.syscall = syscall;
  }

  override get name(): string {
    return this.constructor.name;
  }
}

/**
 * The operation would block on a non-blocking fd: `code` is `'EAGAIN'`
 * (also EWOULDBLOCK), `'EINPROGRESS'` (a connect under way) or `'EALREADY'`.
 * Python raises the same class in the same places.
 */
export class BlockingIOError extends OSError {}

// errno number -> name, from the OS's own table (libuv's getSystemErrorName
// does not know EINPROGRESS and others). Aliases keep the first name Node
// lists, which is the usual one (EAGAIN over EWOULDBLOCK).
const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(osConstants.errno)) {
  if (!errnoNames.has(value)) errnoNames.set(value, name);
}

function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

/**
 * True when `error` is an {@link OSError}, optionally with the given `code`.
 *
 * @example
 * ```ts
 * if (isErrnoError(e, 'ENOENT')) { ... }
 * ```
 */
export function isErrnoError(error: unknown, code?: string): error is OSError {
  return error instanceof OSError && (code === undefined || error.code === code);
}

/** The factory native code calls to build the errors it throws. @internal */
export function makeErrnoError(errno: number, syscall: string, detail: string): OSError {
  if (errno === EAGAIN || errno === EINPROGRESS || errno === EALREADY) {
    return new BlockingIOError(errno, syscall, detail);
  }
  return new OSError(errno, syscall, detail);
}
