/**
 * What a loop waits in: its selector (select, poll, epoll, or io_uring's
 * polls) with the fd registrations over it (io.ts), and on io_uring the
 * completion-based socket operations sharing the ring (proactor.ts). What
 * differs between the backends is answered here, so the loop itself does
 * not ask which one it runs on.
 *
 * @module
 */

import type { Future } from '../coro/future.js';
import type { LoopLike, Runnable } from '../coro/types.js';
import {
  type BaseSelector,
  EpollSelector,
  PollSelector,
  type SelectorName,
  SelectSelector,
} from '../selectors/index.js';
import { UringSelector } from '../selectors/uring.js';
import { type EntrySelector, type IoOwner, IoRegistry, makeSelector } from './io.js';
import { Proactor } from './proactor.js';
import type { RingQueue } from './ready-queue.js';

/** What the backend needs of the loop's cooperative driver, when one runs. */
export interface DriverHooks {
  wake(): void;
  pauseWatch(): void;
  resumeWatch(): void;
}

/** The loop a backend serves. */
export interface BackendLoop extends LoopLike {
  resolvedVoid(): Future<void>;
}

/** A loop's selector, registrations and (on io_uring) proactor. */
export class LoopBackend {
  readonly selector: EntrySelector;
  readonly io: IoRegistry;
  /** What it waits in: 'select', 'poll', 'epoll', 'io_uring', or a custom selector's class name. */
  readonly name: string;
  /** The completion-based socket operations: on io_uring only. */
  readonly proactor: Proactor | null = null;
  #driver: () => DriverHooks | null = () => null;

  /**
   * @throws {TypeError} for an unknown selector or backend option
   * @throws {OSError} where io_uring is unavailable (for 'io_uring')
   */
  constructor(
    choice: BaseSelector<unknown> | SelectorName | 'io_uring' | undefined,
    loop: BackendLoop,
    ready: RingQueue<Runnable>,
    owner: IoOwner,
  ) {
    const selector = makeSelector(choice);
    this.selector = selector;
    this.name = backendName(selector);
    this.io = new IoRegistry(selector, ready, owner);
    if (selector instanceof UringSelector) {
      // Staged from a promise job outside the loop's iteration, an
      // operation needs the idle loop woken to be submitted.
      this.proactor = new Proactor(loop, selector.ring, () => owner.ioChanged());
      selector.setCompletionHandler(this.proactor.onCompletion);
    }
    // Closed behind the loop's back while a cooperative run idles: wake it,
    // so that its next select() fails the run instead of leaving it pending.
    selector.whenClosed(() => this.#driver()?.wake());
    if (selector instanceof EpollSelector) {
      selector.whenRenewed(
        () => this.#driver()?.pauseWatch(),
        () => this.#driver()?.resumeWatch(),
      );
    }
  }

  /** Where the backend finds the loop's cooperative driver (null when none runs). */
  connectDriver(driver: () => DriverHooks | null): void {
    this.#driver = driver;
  }

  /**
   * The fd libuv can watch while a cooperative run idles -- readable when
   * something is ready: epoll's own, or the ring's -- or null (select and
   * poll: a helper thread waits instead).
   */
  idleFd(): number | null {
    const selector = this.selector;
    if (selector instanceof EpollSelector) return selector.ownFileno();
    if (selector instanceof UringSelector) return selector.fileno();
    return null;
  }

  /** Work the kernel has not been handed yet (io_uring: staged requests, polls to arm): the loop must iterate. */
  hasUnsubmitted(): boolean {
    return this.selector instanceof UringSelector && this.selector.hasUnsubmitted();
  }

  /** What keeps a cooperative run alive: watched fds and requests in flight. */
  watchedCount(): number {
    return this.selector.size + (this.proactor?.inflight ?? 0);
  }

  /** Forgets every registration and operation, and closes the selector (and ring). */
  close(): void {
    this.io.clear();
    this.proactor?.close();
    this.selector.close();
  }
}

function backendName(selector: BaseSelector<unknown>): string {
  if (selector instanceof UringSelector) return 'io_uring';
  if (selector instanceof EpollSelector) return 'epoll';
  if (selector instanceof PollSelector) return 'poll';
  if (selector instanceof SelectSelector) return 'select';
  return selector.constructor.name;
}
