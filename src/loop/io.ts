/**
 * The loop's fd registrations: which reader and writer each fd has, what the
 * selector watches for it, and the interest changes waiting for the next
 * wait (libuv's batching: a reader removed and added back within one
 * iteration costs no syscall).
 *
 * Registrations are kept by fd number, as asyncio keeps them, and know the
 * file they were made for: a new file at the number of one closed while
 * watched replaces the stale registration. Sockets' own operations
 * (sock-ops.ts) sit in the same reader and writer slots as addReader's
 * handles, and keep here their per-fd hint that the last receive drained
 * the socket.
 *
 * Nothing here runs a callback: {@link IoRegistry.onReady} queues the
 * watchers of ready fds for the loop's iteration (event-loop.ts).
 *
 * @module
 */
import type { ExceptionContext, Runnable } from '../coro/types.js';
import {
  type BaseSelector,
  createSelector,
  EVENT_READ,
  EVENT_WRITE,
  SELECTOR_NAMES,
  type SelectorKey,
  type SelectorName,
} from '../selectors/index.js';
import { UringSelector } from '../selectors/uring.js';
import { describe, invalidArgValue, toFd } from '../sys/args.js';
import type { IoUringOptions } from '../sys/index.js';
import { type FileLike, isErrnoError, Socket } from '../sys/index.js';
import { ARENA_BYTES } from './arena-slots.js';
import type { IoSlots, Watcher } from './handle.js';
import type { RingQueue } from './ready-queue.js';
import type { SockOp } from './sock-ops.js';

/** @internal The selector as the registry sees it: its keys' data are the registrations. */
export type EntrySelector = BaseSelector<IoEntry>;

/** @internal One fd's registration: its reader, writer and what the selector watches. */
export class IoEntry implements IoSlots {
  reader: Watcher | null = null;
  writer: Watcher | null = null;
  /** The events the selector watches now. */
  registered = 0;
  /** Queued for an interest change before the next wait. */
  dirty = false;
  /** Lost all interest and was kept registered for one more iteration. */
  idle = false;
  /** The socket operations (sock-ops) for each direction, made on first use and reused. */
  readOp: SockOp | null = null;
  writeOp: SockOp | null = null;

  constructor(
    readonly fileobj: FileLike,
    readonly fd: number,
  ) {}

  wanted(): number {
    return (this.reader === null ? 0 : EVENT_READ) | (this.writer === null ? 0 : EVENT_WRITE);
  }
}

/**
 * The selector a loop option names, or the one given (which must be empty:
 * the loop dispatches every ready key as its own).
 *
 * @throws {TypeError} ERR_INVALID_ARG_VALUE for anything else, or a selector with keys
 */
export function makeSelector(selector: BaseSelector<unknown> | SelectorName | 'io_uring' | undefined): EntrySelector {
  if (selector === undefined) return createSelector<IoEntry>('epoll');
  if (selector === 'io_uring') return new UringSelector<IoEntry>({ ring: LOOP_RING });
  if (typeof selector === 'string' && SELECTOR_NAMES.includes(selector)) return createSelector<IoEntry>(selector);
  if (typeof selector === 'object' && selector !== null && 'forEachReady' in selector) {
    const { size } = selector as BaseSelector;
    if (size !== 0) {
      throw invalidArgValue(
        `The "selector" option must be an empty selector: the loop registers its own keys. Received one with ${size} key${size === 1 ? '' : 's'}`,
      );
    }
    return selector as unknown as EntrySelector;
  }
  throw invalidArgValue(
    `The "selector" option must be a selector or 'select' | 'poll' | 'epoll' ('io_uring' too as "backend"). Received ${describe(selector)}`,
  );
}

/**
 * An io_uring loop's ring: an arena for sends and connects' addresses (see
 * proactor.ts), 1,024 provided receive buffers of 16 KiB, a submission
 * queue of 1,024 and a completion queue of 4,096 entries (a wait at a
 * thousand busy connections completes a thousand receives and sends).
 * Both are mapped lazily: only pages the kernel or a copy touches cost memory.
 */
const LOOP_RING: IoUringOptions = {
  entries: 1024,
  completions: 4096,
  arenaBytes: ARENA_BYTES,
  bufferCount: 1024,
  bufferSize: 16 * 1024,
  deferTaskrun: false,
};

/** What the registry needs of its loop. */
export interface IoOwner {
  /** Reports what went wrong outside any callback (an fd closed while watched). */
  callExceptionHandler(context: ExceptionContext): void;
  /** A watch was added: a cooperative loop's idle wait must see it. */
  ioChanged(): void;
}

/** A loop's fd registrations and pending interest changes, over its selector. */
export class IoRegistry {
  readonly selector: EntrySelector;
  readonly #ready: RingQueue<Runnable>;
  readonly #owner: IoOwner;
  /** By fd; one array for the registry's life (the loop reads it directly on the per-message path). */
  readonly entries: (IoEntry | undefined)[] = [];
  #dirty: IoEntry[] = [];
  #spareDirty: IoEntry[] = [];
  /**
   * By fd: 1 when the last receive drained the socket's queue (sock-ops'
   * hint: the next receive waits for readiness first). Read and written by
   * the loop directly, on the per-message path; grown (replaced) when an fd
   * is first watched, so a write beyond it -- an fd never watched -- is
   * dropped, costing only a wasted attempt.
   */
  drained = new Uint8Array(64);

  /** The selector's visitor: queues the reader and/or writer of a ready fd. */
  readonly onReady = (key: SelectorKey<IoEntry>, events: number): void => {
    const entry = key.data;
    if ((events & EVENT_READ) !== 0 && entry.reader !== null) this.#ready.push(entry.reader);
    if ((events & EVENT_WRITE) !== 0 && entry.writer !== null) this.#ready.push(entry.writer);
  };

  constructor(selector: EntrySelector, ready: RingQueue<Runnable>, owner: IoOwner) {
    this.selector = selector;
    this.#ready = ready;
    this.#owner = owner;
  }

  /**
   * Makes `watcher` the reader (or writer) of `fileobj`, replacing (and
   * disarming) the one it had.
   *
   * @throws what the selector throws for an fd it refuses (EBADF, FD_SETSIZE...)
   */
  add(fileobj: FileLike, event: number, watcher: Watcher): IoEntry {
    return this.addAt(fileobj, this.#fdOf(fileobj), event, watcher);
  }

  /** As {@link add}, for a file whose fd the caller has read already. */
  addAt(fileobj: FileLike, fd: number, event: number, watcher: Watcher): IoEntry {
    let entry = this.entries[fd];
    if (entry !== undefined && entry.fileobj !== fileobj) {
      // The fd number now belongs to another file (the old one was closed
      // while watched): forget the stale registration first.
      this.#drop(entry);
      entry = undefined;
    }
    if (entry === undefined) {
      entry = new IoEntry(fileobj, fd);
      this.selector.register(fileobj, event, entry);
      entry.registered = event;
      while (this.entries.length < fd) this.entries.push(undefined);
      this.entries[fd] = entry;
      if (fd >= this.drained.length) {
        const grown = new Uint8Array(Math.max(fd + 1, this.drained.length * 2));
        grown.set(this.drained);
        this.drained = grown;
      }
    } else {
      const old = event === EVENT_READ ? entry.reader : entry.writer;
      old?.disarm();
      if ((entry.registered & event) === 0) this.#markDirty(entry);
    }
    if (event === EVENT_READ) entry.reader = watcher;
    else entry.writer = watcher;
    this.#owner.ioChanged();
    return entry;
  }

  /**
   * Makes the socket's operation for one direction (made by `make` the
   * first time, then kept with the fd's registration) its reader or writer.
   *
   * @throws what {@link add} throws for a socket the selector refuses
   */
  watchOp(sock: Socket, write: boolean, make: () => SockOp): SockOp {
    const fd = sock.fileno();
    const old = this.entries[fd];
    const kept = old !== undefined && old.fileobj === sock ? (write ? old.writeOp : old.readOp) : null;
    const op = kept ?? make();
    const entry = this.addAt(sock, fd, write ? EVENT_WRITE : EVENT_READ, op);
    if (write) entry.writeOp = op;
    else entry.readOp = op;
    op.slots = entry;
    return op;
  }

  /** Empties `fileobj`'s reader (or writer) slot. @returns whether it held one */
  remove(fileobj: FileLike, event: number): boolean {
    let fd: number;
    try {
      fd = this.#fdOf(fileobj);
    } catch {
      return false;
    }
    const entry = this.entries[fd];
    if (entry === undefined || entry.fileobj !== fileobj) return false;
    if ((event === EVENT_READ ? entry.reader : entry.writer) === null) return false;
    this.#clear(entry, event);
    return true;
  }

  /** Empties a slot `watcher` holds, unless another reader or writer replaced it since. */
  release(slots: IoSlots, write: boolean, watcher: Watcher): void {
    // The watcher still holds the slot, so the entry is still this fd's:
    // dropping an entry disarms its watchers, which then never get here.
    const entry = slots as IoEntry;
    if ((write ? entry.writer : entry.reader) !== watcher) return;
    this.#clear(entry, write ? EVENT_WRITE : EVENT_READ);
  }

  /** `[fd, events]` pairs of what the selector watches (a helper thread's snapshot). */
  watchedPairs(): Int32Array {
    const pairs: number[] = [];
    for (const key of this.selector.keys()) pairs.push(key.fd, key.events);
    return Int32Array.from(pairs);
  }

  /** Forgets every registration (the loop is closing; the selector is closed next). */
  clear(): void {
    this.entries.length = 0;
    this.#dirty = [];
    this.#spareDirty = [];
  }

  // Batched interest changes, right before the wait: only what still
  // differs from what the selector watches costs a syscall.
  //
  // An fd that lost all interest stays registered for one more iteration:
  // a sock_* operation removes its reader when data arrives, and the Task it
  // wakes adds the reader back only in the next iteration's callbacks, so
  // dropping at once would cost an epoll_ctl DEL and ADD per message. The
  // price is at most one spurious wake-up, if the fd turns ready meanwhile.
  /** Applies the interest changes made since the last wait. */
  apply(): void {
    const dirty = this.#dirty;
    if (dirty.length === 0) return;
    // Two lists in turn, reused: an entry marked while these are applied
    // (an idle one kept one more iteration) goes on the other.
    this.#dirty = this.#spareDirty;
    let i = 0;
    try {
      for (; i < dirty.length; i++) this.#applyEntry(dirty[i] as IoEntry);
    } finally {
      // After a throw, what was not applied yet waits for the next iteration.
      for (let j = i + 1; j < dirty.length; j++) this.#dirty.push(dirty[j] as IoEntry);
      dirty.length = 0;
      this.#spareDirty = dirty;
    }
  }

  #fdOf(fileobj: FileLike): number {
    // A closed socket's fileno() throws: its entry is found by identity,
    // without building that error first when the socket says it is closed.
    if (fileobj instanceof Socket && fileobj.closed) {
      const entry = this.#entryByIdentity(fileobj);
      if (entry !== undefined) return entry.fd;
    }
    try {
      return toFd(fileobj);
    } catch (e) {
      const entry = this.#entryByIdentity(fileobj);
      if (entry !== undefined) return entry.fd;
      throw e;
    }
  }

  #entryByIdentity(fileobj: FileLike): IoEntry | undefined {
    for (const entry of this.entries) if (entry !== undefined && entry.fileobj === fileobj) return entry;
    return undefined;
  }

  #clear(entry: IoEntry, event: number): void {
    if (event === EVENT_READ) {
      entry.reader?.disarm();
      entry.reader = null;
    } else {
      entry.writer?.disarm();
      entry.writer = null;
    }
    this.#markDirty(entry);
  }

  #markDirty(entry: IoEntry): void {
    if (entry.dirty) return;
    entry.dirty = true;
    this.#dirty.push(entry);
  }

  #applyEntry(entry: IoEntry): void {
    entry.dirty = false;
    if (this.entries[entry.fd] !== entry) return;
    const wanted = entry.wanted();
    if (wanted !== 0) entry.idle = false;
    if (wanted === entry.registered) return;
    if (wanted === 0) {
      if (entry.idle) {
        this.#drop(entry);
      } else {
        entry.idle = true;
        this.#markDirty(entry);
      }
      return;
    }
    try {
      this.selector.modify(entry.fileobj, wanted, entry);
      entry.registered = wanted;
    } catch (exception) {
      // The fd was closed while watched: its callbacks can never run.
      if (!isErrnoError(exception)) throw exception;
      this.#drop(entry);
      this.#owner.callExceptionHandler({
        message: `fd ${entry.fd} was closed while watched; its callbacks are dropped`,
        exception,
      });
    }
  }

  #drop(entry: IoEntry): void {
    entry.reader?.disarm();
    entry.writer?.disarm();
    entry.reader = null;
    entry.writer = null;
    if (this.entries[entry.fd] === entry) this.entries[entry.fd] = undefined;
    try {
      // By fd, not fileobj: the socket is often closed by now, and a closed
      // socket's fileno() throws, which made the selector build an error and
      // search every key for it -- per connection, with 1,000 registered.
      // A closed socket is out of the kernel's set already: no syscall.
      if (entry.fileobj instanceof Socket && entry.fileobj.closed) this.selector.forgetClosed(entry.fd);
      else this.selector.unregister(entry.fd);
    } catch {
      // Not registered any more: nothing to undo.
    }
    entry.registered = 0;
  }
}
