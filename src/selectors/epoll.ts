/**
 * EpollSelector: epoll(7), the kernel's O(ready) multiplexer.
 *
 * @module
 */
import { EPOLL_EVENT_FD_INDEX, EPOLL_EVENT_INTS, EPOLLIN, EPOLLOUT, Epoll } from '../sys/index.js';
import { BaseSelector, type ReadyLayout } from './base.js';
import { fromPollBits, toPollBits } from './poll-like.js';

/**
 * The records of the epoll's own result array: enough for every ready fd
 * while at most this many are registered; beyond, select() waits into an
 * array of its own, grown with the registrations.
 */
const OWN_EVENTS = 1024;

/** EpollSelector options. */
export interface EpollSelectorOptions {
  /**
   * Ready fds one select() reports at most; the others are reported by the
   * next call, since epoll is level-triggered (libuv caps at 1,024). By
   * default there is no cap: every ready key, as CPython's selector, which
   * asks for as many events as there are registered fds.
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
  // The epoll's own array; with no maxEvents, the larger one select() waits
  // into once more fds are registered than the own array has records for.
  readonly #own: ReadyLayout;
  #grown: ReadyLayout | null = null;
  #layout: ReadyLayout;
  readonly #capped: boolean;

  /** @throws {RangeError} for maxEvents outside 1..2^20 */
  constructor(options: EpollSelectorOptions = {}) {
    super();
    this.#capped = options.maxEvents !== undefined;
    this.#epoll = new Epoll(-1, 0, { maxEvents: options.maxEvents ?? OWN_EVENTS });
    this.#own = {
      array: this.#epoll.events,
      stride: EPOLL_EVENT_INTS,
      fdIndex: EPOLL_EVENT_FD_INDEX,
      eventsIndex: 0,
    };
    this.#layout = this.#own;
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
    const records = this.size;
    if (this.#capped || records <= OWN_EVENTS) {
      this.#layout = this.#own;
      return this.#epoll.pollInto(timeoutMs);
    }
    // More registered fds than the own array holds: room for every one of
    // them (doubling, so it settles), or a ready fd would wait for a later call.
    let grown = this.#grown;
    if (grown === null || grown.array.length < records * EPOLL_EVENT_INTS) {
      grown = { ...this.#own, array: new Int32Array(2 ** Math.ceil(Math.log2(records)) * EPOLL_EVENT_INTS) };
      this.#grown = grown;
    }
    this.#layout = grown;
    return this.#epoll.pollInto(timeoutMs, grown.array);
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
