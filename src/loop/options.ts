/**
 * What an EventLoop is made with (its options and backend) and how its
 * methods check their arguments.
 *
 * @module
 */
import type { Future } from '../coro/index.js';
import type { BaseSelector, SelectorName } from '../selectors/index.js';
import { invalidArgType, invalidArgValue, outOfRange } from '../sys/args.js';

/** A selector the loop can run on (its key data is the loop's own: don't register fds in it yourself). */
export type LoopSelector = BaseSelector;

/** The loop's I/O backends: the three selectors, and io_uring's completions. */
export type BackendName = SelectorName | 'io_uring';

/** EventLoop options. */
export interface EventLoopOptions {
  /**
   * What the loop waits in (default 'epoll'). 'io_uring' makes it a
   * completion-based loop (asyncio's proactor): the sock_* operations are
   * requests the kernel completes, readers and writers are io_uring polls.
   */
  backend?: BackendName;
  /** A selector instance, or a backend name (as `backend`). The loop closes it on close(). */
  selector?: BaseSelector<unknown> | SelectorName;
  /** Debug mode: warn about callbacks slower than `slowCallbackMs`. */
  debug?: boolean;
  /** The debug threshold in milliseconds (default 100). */
  slowCallbackMs?: number;
  /** Where warnings and unhandled exceptions are written (default: stderr). */
  logger?: (message: string) => void;
}

/** What run() drives: a coroutine, a Future, a promise, or a function returning one. */
export type RunTarget<T> =
  | Future<T>
  | Generator<unknown, T, unknown>
  | PromiseLike<T>
  | ((signal: AbortSignal) => Future<T> | Generator<unknown, T, unknown> | PromiseLike<T>);

// The selector (or backend name) the options ask for.
export function pickBackend(options: EventLoopOptions): BaseSelector<unknown> | SelectorName | 'io_uring' | undefined {
  if (options.backend === undefined) return options.selector;
  if (options.selector !== undefined) {
    throw invalidArgValue('The "backend" and "selector" options cannot both be given');
  }
  return options.backend;
}

export function checkCallback(callback: unknown): void {
  if (typeof callback !== 'function') throw invalidArgType('callback', 'a function', callback);
}

export function checkMs(value: unknown, name: string): number {
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value);
  if (Number.isNaN(value)) throw outOfRange(name, 'a number of milliseconds', value);
  return value;
}
