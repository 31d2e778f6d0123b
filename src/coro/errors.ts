/**
 * The coroutine layer's errors, each with a stable `code`.
 *
 * @module
 */

/** The operation was cancelled (a Task's coroutine sees it at its `yield`). */
export class CancelledError extends Error {
  readonly code = 'ERR_CANCELLED';

  constructor(message = 'cancelled') {
    super(message);
  }

  override get name(): string {
    return 'CancelledError';
  }
}

/** A {@link waitFor} deadline passed. */
export class TimeoutError extends Error {
  readonly code = 'ERR_TIMEOUT';

  override get name(): string {
    return 'TimeoutError';
  }
}

/** A Future used in a state that does not allow it (result of a pending future, a second setResult...). */
export class InvalidStateError extends Error {
  readonly code = 'ERR_INVALID_STATE';

  override get name(): string {
    return 'InvalidStateError';
  }
}

/** The codes of {@link LoopStateError}. */
export type LoopStateCode = 'ERR_NO_RUNNING_LOOP' | 'ERR_LOOP_RUNNING' | 'ERR_LOOP_CLOSED' | 'ERR_LOOP_STOPPED';

/**
 * A loop used where it cannot be: none running (ERR_NO_RUNNING_LOOP),
 * already running (ERR_LOOP_RUNNING), closed (ERR_LOOP_CLOSED), or stopped
 * before the Future it was running completed (ERR_LOOP_STOPPED).
 */
export class LoopStateError extends Error {
  readonly code: LoopStateCode;

  constructor(code: LoopStateCode, message: string) {
    super(message);
    this.code = code;
  }

  override get name(): string {
    return 'LoopStateError';
  }
}

/**
 * A Future given to a loop, or yielded to a Task, that belongs to another
 * loop (ERR_OTHER_LOOP); each Future is bound to the loop that made it.
 */
export class WrongLoopError extends TypeError {
  readonly code = 'ERR_OTHER_LOOP';

  override get name(): string {
    return 'WrongLoopError';
  }
}

/** @internal A TypeError with a stable code (this layer imports nothing of sys). */
export function codedTypeError(message: string, code: string): TypeError & { code: string } {
  return Object.assign(new TypeError(message), { code });
}
