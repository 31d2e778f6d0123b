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

/** A loop used where it cannot be: none running, already running, closed. */
export class LoopStateError extends Error {
  readonly code: 'ERR_NO_RUNNING_LOOP' | 'ERR_LOOP_RUNNING' | 'ERR_LOOP_CLOSED';

  constructor(code: 'ERR_NO_RUNNING_LOOP' | 'ERR_LOOP_RUNNING' | 'ERR_LOOP_CLOSED', message: string) {
    super(message);
    this.code = code;
  }

  override get name(): string {
    return 'LoopStateError';
  }
}
