/**
 * EpollSelector: epoll(7), the kernel's O(ready) multiplexer.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import {
  EPOLL_CTL_ADD,
  EPOLL_CTL_MOD,
  EPOLL_EVENT_FD_INDEX,
  EPOLL_EVENT_INTS,
  EPOLLIN,
  EPOLLOUT,
  Epoll,
  isErrnoError,
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

/** Waits between attempts to renew the kernel's set while the process has no fd to spare. */
const RENEW_BACKOFF_WAITS = 64;

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
  // A stale registration was seen: renew the kernel's set before the next wait.
  #renewDue = false;
  // Waits to let pass before trying again after a renewal failed (EMFILE).
  #renewBackoff = 0;
  // fileno() was handed out: some other poller may watch the epoll fd, and a
  // renewal would silently drop its registration (the old instance closes).
  #exposed = false;
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

  /**
   * The epoll fd: readable whenever a registered fd is ready, so another
   * poller can watch it. Once handed out, the selector never renews its
   * kernel set (see the README: a registration that outlives its fd is then
   * only skipped, never dropped -- unregister before closing).
   */
  fileno(): number {
    this.#exposed = true;
    return this.#epoll.fileno();
  }

  /** @internal The epoll fd for an owner that watches it through {@link whenRenewed}'s hooks. */
  ownFileno(): number {
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
  // whatever file has the number now. Its events carry a tag no registration
  // has (base.ts skips them); the next wait first renews the kernel's set.
  protected override strayEvent(_tag: number): void {
    this.#renewDue = true;
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
    // Only the registrations the old set still holds are made again: a key
    // whose fd was closed behind the selector lost its registration then,
    // and its number may name another file now.
    const live = this.#liveTags();
    const hooks = this.#renewHooks;
    hooks?.before();
    try {
      try {
        this.#epoll.renew();
      } catch (e) {
        // EMFILE, ENOMEM: the old set stays as it was; try again later.
        if (!isErrnoError(e)) throw e;
        this.#renewBackoff = RENEW_BACKOFF_WAITS;
        return;
      }
      for (const key of this.keys()) {
        const tag = this.tagOf(key.fd);
        if (live !== null && !live.has(tag)) continue;
        this.#epoll.ctlTagged(EPOLL_CTL_ADD, key.fd, toPollBits(key.events, EPOLLIN, EPOLLOUT), tag, true);
      }
    } finally {
      hooks?.after();
    }
  }

  // The tags of the kernel's registrations, from /proc/self/fdinfo of the
  // epoll fd (one line per registration: "tfd: N events: E data: D ...",
  // D the hex epoll_data, whose high half is the tag); null if unreadable.
  #liveTags(): Set<number> | null {
    let text: string;
    try {
      text = readFileSync(`/proc/self/fdinfo/${this.#epoll.fileno()}`, 'latin1');
    } catch {
      return null;
    }
    const tags = new Set<number>();
    for (const match of text.matchAll(/^tfd:\s*\d+\s+events:\s*[0-9a-f]+\s+data:\s*([0-9a-f]+)/gm)) {
      const hex = match[1] as string;
      tags.add(hex.length > 8 ? Number.parseInt(hex.slice(0, -8), 16) | 0 : 0);
    }
    return tags;
  }

  protected backendWait(timeoutMs: number): number {
    if (this.#renewDue && !this.#exposed) {
      if (this.#renewBackoff > 0) this.#renewBackoff--;
      else this.#renew();
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
