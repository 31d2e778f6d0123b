/**
 * Selectors by backend name, for code that lets its user choose one (the
 * event loop's `selector` option, the benchmarks' `--selector`).
 *
 * @module
 */
import { invalidArgValue } from '../sys/args.js';
import type { BaseSelector } from './base.js';
import { EpollSelector } from './epoll.js';
import { PollSelector } from './poll.js';
import { SelectSelector } from './select.js';

/** The selector backends by name. */
export type SelectorName = 'select' | 'poll' | 'epoll';

/** The backend names, in the order the notes introduce them. */
export const SELECTOR_NAMES: readonly SelectorName[] = Object.freeze(['select', 'poll', 'epoll']);

/**
 * A new selector on the named backend.
 *
 * @throws {TypeError} ERR_INVALID_ARG_VALUE for any other name
 */
export function createSelector<D = unknown>(name: SelectorName): BaseSelector<D> {
  switch (name) {
    case 'epoll':
      return new EpollSelector<D>();
    case 'poll':
      return new PollSelector<D>();
    case 'select':
      return new SelectSelector<D>();
    default:
      throw invalidArgValue(`The selector name must be 'select', 'poll' or 'epoll'. Received ${String(name)}`);
  }
}
