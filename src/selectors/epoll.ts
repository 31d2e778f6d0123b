/**
 * EpollSelector: epoll(7), the kernel's O(ready) multiplexer.
 *
 * @module
 */
import {
  EPOLL_CTL_ADD,
  EPOLL_CTL_MOD,
  EPOLL_EVENT_FD_INDEX,
  EPOLL_EVENT_INTS,
  EPOLLIN,
  EPOLLOUT,
  Epoll,
} from '../sys/index.js';
import { BaseSelector, type ReadyLayout } from './base.js';
import { fromPollBits, toPollBits } from './poll-like.js';

/**
 * The records of the epoll's own result array: enough for every ready fd
 * while at most this many are registered; beyond, select() waits into an
 * array of its own, grown with the registrations.
 */
const OWN_EVENTS = 1024;

/** Where a record holds its registration's tag: the high half of epoll_data (x86-64 is little-endian). */
const TAG_INDEX = EPOLL_EVENT_FD_INDEX + 1;

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
  // Tags of events that matched no registration: the last wait's and this one's.
  #lastStrays: number[] = [];
  #strays: number[] = [];
  #renewDue = false;
  #renewHooks: { before: () => void; after: () => void } | null = null;

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
      tagIndex: TAG_INDEX,
    };
    this.#layout = this.#own;
  }

  /** The epoll fd. */
  fileno(): number {
    return this.#epoll.fileno();
  }

  protected backendAdd(fd: number, events: number, tag: number): void {
    this.#ctl(EPOLL_CTL_ADD, fd, events, tag);
  }

  protected backendModify(fd: number, events: number, tag: number): void {
    this.#ctl(EPOLL_CTL_MOD, fd, events, tag);
  }

  #ctl(op: number, fd: number, events: number, tag: number): void {
    this.#epoll.ctlTagged(op, fd, toPollBits(events, EPOLLIN, EPOLLOUT), tag);
  }

  protected backendRemove(fd: number): void {
    // EBADF/ENOENT: the fd was closed, which already took it out of the set.
    this.#epoll.discard(fd);
  }

  protected override backendForgetClosed(_fd: number): void {
    // close(2) already removed it from the epoll set: no epoll_ctl.
  }

  // The classic epoll trap: a registered fd closed while a dup keeps its file
  // open stays in the kernel's set, and no epoll_ctl can name it any more
  // (its number is closed, or belongs to another file). Level-triggered, it
  // is reported by every wait: the loop would spin, or run the callbacks of
  // whatever file has the number now. Its events carry a tag no current
  // registration has; one seen in two waits in a row (a registration removed
  // during a batch shows at most once) makes the next wait renew the set.
  protected override strayEvent(tag: number): void {
    if (this.#lastStrays.includes(tag)) this.#renewDue = true;
    this.#strays.push(tag);
  }

  /**
   * @internal Called around each renewal of the kernel's set (the epoll fd
   * keeps its number but names a new instance): a watcher of that fd
   * (libuv's, for a cooperative loop) stops before and starts after.
   */
  whenRenewed(before: () => void, after: () => void): void {
    this.#renewHooks = { before, after };
  }

  #renew(): void {
    this.#renewDue = false;
    this.#lastStrays.length = 0;
    this.#strays.length = 0;
    const hooks = this.#renewHooks;
    hooks?.before();
    try {
      this.#epoll.renew();
      for (const key of this.keys()) {
        // A file closed behind the selector fails (EBADF): it was out of the
        // old set too, and its key stays until unregistered, as before.
        this.#epoll.ctlTagged(
          EPOLL_CTL_ADD,
          key.fd,
          toPollBits(key.events, EPOLLIN, EPOLLOUT),
          this.tagOf(key.fd),
          true,
        );
      }
    } finally {
      hooks?.after();
    }
  }

  protected backendWait(timeoutMs: number): number {
    if (this.#renewDue) this.#renew();
    if (this.#strays.length > 0 || this.#lastStrays.length > 0) {
      const last = this.#lastStrays;
      last.length = 0;
      this.#lastStrays = this.#strays;
      this.#strays = last;
    }
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
