/**
 * UringSelector: readiness on io_uring's poll requests, level-triggered as
 * poll(2) is.
 *
 * Each registered fd has at most one one-shot IORING_OP_POLL_ADD in flight.
 * When it completes the fd is reported, and the next wait arms it again,
 * in the same io_uring_enter that waits: a file still ready completes at
 * once, so a reader that left data behind is called again (multishot polls
 * would report only new arrivals). A change of events or an unregister
 * removes the poll in flight by its user data; every registration has a
 * generation of its own in that user data, so a completion of a removed or
 * replaced poll is recognised and skipped.
 *
 * The ring is shared with whoever owns the selector: completions whose user
 * data is not a poll of this selector go to the completion handler (the
 * event loop's completion-based socket operations, loop/proactor.ts).
 *
 * @module
 */
import { constants } from 'node:os';
import {
  COMPLETION_INTS,
  type FileLike,
  IoUring,
  type IoUringOptions,
  POLLERR,
  POLLIN,
  POLLOUT,
  Socket,
} from '../sys/index.js';
import { BaseSelector, type ReadyLayout } from './base.js';
import type { SelectorKey } from './key.js';
import { fromPollBits, toPollBits } from './poll-like.js';

/** User data high words at or above this are this selector's polls (the rest of the word is a generation). */
export const POLL_HIGH = 1 << 29;
/** User data high words in [IGNORED_HIGH, POLL_HIGH) are requests whose completion nobody needs. */
export const IGNORED_HIGH = 1 << 28;
const GENERATION_MASK = POLL_HIGH - 1;
const { ECANCELED } = constants.errno;

/**
 * Called with each completion that is not one of the selector's polls:
 * user data (`low`, `high` < {@link IGNORED_HIGH}), result, flags.
 */
export type CompletionHandler = (low: number, high: number, res: number, flags: number) => void;

/** UringSelector options. */
export interface UringSelectorOptions {
  /** The ring's options (its size, arena and provided buffers). */
  ring?: IoUringOptions;
}

/**
 * A selector on io_uring poll requests (see the module doc). It also owns
 * the ring that an event loop's completion-based operations share.
 *
 * @throws {OSError} ENOSYS / EPERM where io_uring is unavailable (see `IoUring.available()`)
 */
export class UringSelector<D = unknown> extends BaseSelector<D> {
  /** @internal The ring (the loop stages its own operations in it). */
  readonly ring: IoUring;
  // Per fd: the generation of its registration (0: none), whether a poll
  // is in flight for it, and the POLL* bits to ask for.
  #generation: Int32Array<ArrayBuffer> = new Int32Array(64);
  #armed = new Uint8Array(64);
  #bits: Int32Array<ArrayBuffer> = new Int32Array(64);
  #lastGeneration = 0;
  // Registered fds with no poll in flight: armed by the next wait.
  #toArm: number[] = [];
  // The last wait's readiness records: (fd, revents) pairs.
  #ready = new Int32Array(128);
  #onCompletion: CompletionHandler | null = null;

  constructor(options: UringSelectorOptions = {}) {
    super();
    this.ring = new IoUring(options.ring);
  }

  /** @internal Where completions that are not polls go. */
  setCompletionHandler(handler: CompletionHandler | null): void {
    this.#onCompletion = handler;
  }

  /**
   * @internal True when something waits to be handed to the kernel (a poll
   * to arm, a request staged): the next wait must come, whether or not
   * anything is ready (the ring's fd says nothing of these).
   */
  hasUnsubmitted(): boolean {
    return this.#toArm.length > 0 || this.ring.staged > 0;
  }

  /** The ring's fd: readable when completions wait (what a cooperative loop's libuv watches). */
  fileno(): number {
    return this.ring.fileno();
  }

  /**
   * As {@link BaseSelector.register}. A Socket's poll request holds its
   * file open: closing the Socket removes it first, so that the close is
   * real (the peer sees it). A raw fd closed while registered stays open
   * until unregistered.
   */
  override register(fileobj: FileLike, events: number, data?: D): SelectorKey<D> {
    const key = super.register(fileobj, events, data);
    if (fileobj instanceof Socket) fileobj.addBeforeClose(this.#closing);
    return key;
  }

  override unregister(fileobj: FileLike): SelectorKey<D> {
    const key = super.unregister(fileobj);
    if (fileobj instanceof Socket) fileobj.removeBeforeClose(this.#closing);
    return key;
  }

  // A registered Socket is closing: its poll goes now, not at the next wait.
  // Its key stays until unregistered but reports nothing more, as a
  // closed fd's epoll registration does.
  readonly #closing = (fd: number): void => {
    if (this.closed || fd >= this.#generation.length) return;
    const armed = this.#armed[fd] === 1;
    this.#unwatch(fd);
    if (armed) this.ring.flush();
  };

  protected backendAdd(fd: number, events: number): void {
    this.#grow(fd);
    this.#watch(fd, events);
  }

  protected backendModify(fd: number, events: number): void {
    this.#unwatch(fd);
    this.#watch(fd, events);
  }

  protected backendRemove(fd: number): void {
    this.#unwatch(fd);
  }

  protected backendWait(timeoutMs: number): number {
    const ring = this.ring;
    const toArm = this.#toArm;
    for (let i = 0; i < toArm.length; i++) {
      const fd = toArm[i] as number;
      const generation = this.#generation[fd] as number;
      if (generation === 0 || this.#armed[fd] === 1) continue;
      this.#armed[fd] = 1;
      ring.pollAdd(fd, this.#bits[fd] as number, fd, POLL_HIGH | generation);
    }
    toArm.length = 0;
    const n = ring.submit(timeoutMs !== 0, timeoutMs);
    const cq = ring.completions;
    let ready = 0;
    for (let i = 0; i < n; i++) {
      const at = i * COMPLETION_INTS;
      const low = cq[at] as number;
      const high = cq[at + 1] as number;
      const res = cq[at + 2] as number;
      if (high >= POLL_HIGH) {
        // low is the fd; skip what a removed or replaced registration left.
        if (this.#generation[low] !== (high & GENERATION_MASK)) continue;
        this.#armed[low] = 0;
        if (res === -ECANCELED) {
          toArm.push(low);
          continue;
        }
        // A failed poll (EBADF: the fd number was closed) is reported once,
        // as poll(2)'s POLLNVAL is, and not armed again until modified.
        if (res >= 0) toArm.push(low);
        if (ready * 2 >= this.#ready.length) this.#ready = grown(this.#ready, this.#ready.length * 2);
        this.#ready[ready * 2] = low;
        this.#ready[ready * 2 + 1] = res >= 0 ? res : POLLERR;
        ready++;
      } else if (high < IGNORED_HIGH) {
        this.#onCompletion?.(low, high, res, cq[at + 3] as number);
      }
    }
    return ready;
  }

  protected layout(): ReadyLayout {
    return { array: this.#ready, stride: 2, fdIndex: 0, eventsIndex: 1, tagIndex: -1 };
  }

  protected toEvents(revents: number): number {
    return fromPollBits(revents, POLLIN, POLLOUT);
  }

  protected backendClose(): void {
    this.ring.close();
  }

  #watch(fd: number, events: number): void {
    let generation = (this.#lastGeneration + 1) & GENERATION_MASK;
    if (generation === 0) generation = 1;
    this.#lastGeneration = generation;
    this.#generation[fd] = generation;
    this.#bits[fd] = toPollBits(events, POLLIN, POLLOUT);
    this.#toArm.push(fd);
  }

  // Forgets fd's registration; a poll in flight is removed (it holds the
  // file open: a socket closed meanwhile is only really closed once no
  // request refers to it).
  #unwatch(fd: number): void {
    if (this.#armed[fd] === 1) {
      this.ring.pollRemove(fd, POLL_HIGH | (this.#generation[fd] as number), 0, IGNORED_HIGH);
      this.#armed[fd] = 0;
    }
    this.#generation[fd] = 0;
  }

  #grow(fd: number): void {
    if (fd < this.#generation.length) return;
    const length = Math.max(fd + 1, this.#generation.length * 2);
    this.#generation = grown(this.#generation, length);
    this.#bits = grown(this.#bits, length);
    const armed = new Uint8Array(length);
    armed.set(this.#armed);
    this.#armed = armed;
  }
}

function grown(array: Int32Array, length: number): Int32Array<ArrayBuffer> {
  const next = new Int32Array(length);
  next.set(array);
  return next;
}
