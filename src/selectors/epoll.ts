/**
 * EpollSelector: epoll(7), the kernel's O(ready) multiplexer.
 *
 * @module
 */
import { EPOLL_EVENT_FD_INDEX, EPOLL_EVENT_INTS, EPOLLIN, EPOLLOUT, Epoll } from '../sys/index.js';
import { BaseSelector, type ReadyLayout } from './base.js';
import { fromPollBits, toPollBits } from './poll-like.js';

/** Events one wait reports at most by default (the rest wait for the next: level-triggered). */
const MAX_EVENTS = 1024;

/** EpollSelector options. */
export interface EpollSelectorOptions {
  /**
   * Ready fds one select() reports at most (default 1,024, as libuv); the
   * others are reported by the next call, since epoll is level-triggered.
   * CPython asks for as many as are registered; pass that to do the same.
   */
  maxEvents?: number;
}

/**
 * A selector on `epoll(7)`: cost grows with the number of ready fds, not
 * the number watched. Its own fd ({@link fileno}) is readable whenever a
 * registered fd is ready, so it can be watched by another loop.
 */
export class EpollSelector<D = unknown> extends BaseSelector<D> {
  readonly #epoll: Epoll;
  readonly #layout: ReadyLayout;

  /** @throws {RangeError} for maxEvents outside 1..2^20 */
  constructor(options: EpollSelectorOptions = {}) {
    super();
    this.#epoll = new Epoll(-1, 0, { maxEvents: options.maxEvents ?? MAX_EVENTS });
    this.#layout = {
      array: this.#epoll.events,
      stride: EPOLL_EVENT_INTS,
      fdIndex: EPOLL_EVENT_FD_INDEX,
      eventsIndex: 0,
    };
  }

  /** The epoll fd. */
  fileno(): number {
    return this.#epoll.fileno();
  }

  protected backendAdd(fd: number, events: number): void {
    this.#epoll.register(fd, toPollBits(events, EPOLLIN, EPOLLOUT));
  }

  protected backendModify(fd: number, events: number): void {
    this.#epoll.modify(fd, toPollBits(events, EPOLLIN, EPOLLOUT));
  }

  protected backendRemove(fd: number): void {
    // EBADF/ENOENT: the fd was closed, which already took it out of the set.
    this.#epoll.discard(fd);
  }

  protected override backendForgetClosed(_fd: number): void {
    // close(2) already removed it from the epoll set: no epoll_ctl.
  }

  protected backendWait(timeoutMs: number): number {
    return this.#epoll.pollInto(timeoutMs);
  }

  protected layout(): ReadyLayout {
    return this.#layout;
  }

  protected toEvents(revents: number): number {
    return fromPollBits(revents, EPOLLIN, EPOLLOUT);
  }

  protected backendClose(): void {
    this.#epoll.close();
  }
}
