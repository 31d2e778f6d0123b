/**
 * The selectors' errors, each with a stable `code` and a message that names
 * the value (CPython raises KeyError/ValueError/RuntimeError in the same
 * places).
 *
 * @module
 */

/** A fileobj that is already registered, or is not. */
export class SelectorKeyError extends Error {
  /** `'ERR_ALREADY_REGISTERED'` or `'ERR_NOT_REGISTERED'`. */
  readonly code: 'ERR_ALREADY_REGISTERED' | 'ERR_NOT_REGISTERED';

  constructor(code: 'ERR_ALREADY_REGISTERED' | 'ERR_NOT_REGISTERED', message: string) {
    super(message);
    this.code = code;
  }

  override get name(): string {
    return 'SelectorKeyError';
  }
}

/** Any use of a selector after `close()`. */
export class SelectorClosedError extends Error {
  readonly code = 'ERR_SELECTOR_CLOSED';

  constructor(method: string) {
    super(`${method}() on a closed selector`);
  }

  override get name(): string {
    return 'SelectorClosedError';
  }
}
