/**
 * The selector contract and its one implementation; backends supply only the
 * syscalls and the layout of their result array (CPython's
 * `_BaseSelectorImpl`).
 *
 * Every method validates first, then makes the syscall, and only then
 * changes the map: a call that throws leaves the selector as it was.
 *
 * @module
 */
import { toFd, toTimeoutMs } from '../sys/args.js';
import { type FileLike, isErrnoError } from '../sys/index.js';
import { SelectorClosedError, SelectorKeyError } from './errors.js';
import { checkEvents, describeFileobj, SelectorKey } from './key.js';

/** Called with each ready key and the events it is ready for. */
export type ReadyVisitor<D> = (key: SelectorKey<D>, events: number) => void;

/** Where a backend's wait leaves its results: records of `stride` ints. */
export interface ReadyLayout {
  /** The array the last wait filled. */
  readonly array: Int32Array;
  readonly stride: number;
  readonly fdIndex: number;
  readonly eventsIndex: number;
  /**
   * Where each record holds the tag its registration was made with, or -1
   * when the backend has none (only epoll's registrations can outlive the
   * fd they were made by, so only epoll needs one).
   */
  readonly tagIndex: number;
}

/**
 * A selector: register files for EVENT_READ / EVENT_WRITE, then wait for
 * some to be ready. Backends: {@link SelectSelector}, {@link PollSelector},
 * {@link EpollSelector}; {@link DefaultSelector} is epoll.
 *
 * @example
 * ```ts
 * const sel = new DefaultSelector();
 * sel.register(sock, EVENT_READ, onReadable);
 * for (const [key, events] of sel.select(1000)) (key.data as Callback)(key, events);
 * ```
 */
export abstract class BaseSelector<D = unknown> implements Disposable {
  // Keys indexed by fd: the hot path maps a ready fd to its key with no hashing.
  #keys: (SelectorKey<D> | undefined)[] = [];
  // The tag of each fd's registration, a number never given to another: a
  // backend that reports it with events (epoll) tells a registration made by
  // an fd number closed since from the one that number has now.
  #tags: number[] = [];
  #lastTag = 0;
  // While forEachReady visits a batch: the tags of registrations removed
  // meanwhile, whose events later in the same batch are explained.
  #visiting = false;
  readonly #removedInBatch: number[] = [];
  #count = 0;
  #closed = false;
  #onClose: (() => void) | null = null;

  /**
   * Registers a file for events.
   *
   * @param fileobj - an fd or an object with `fileno()`
   * @param events - EVENT_READ, EVENT_WRITE or both
   * @param data - anything; returned in the key
   * @returns the new key
   * @throws {SelectorKeyError} ERR_ALREADY_REGISTERED when its fd is registered
   * @throws {RangeError} ERR_INVALID_EVENTS; ERR_OUT_OF_RANGE for a negative fd (or,
   *   for SelectSelector, an fd >= FD_SETSIZE)
   * @throws {TypeError} ERR_INVALID_ARG_TYPE when it is neither an fd nor has fileno()
   * @throws {OSError} from the kernel (EBADF for a closed fd on epoll and select)
   * @throws {SelectorClosedError} after close()
   */
  register(fileobj: FileLike, events: number, data?: D): SelectorKey<D> {
    this.#checkOpen('register');
    const fd = toFd(fileobj);
    checkEvents(events);
    if (this.#keys[fd] !== undefined) {
      throw new SelectorKeyError('ERR_ALREADY_REGISTERED', `${describeFileobj(fileobj, fd)} is already registered`);
    }
    let tag = (this.#lastTag + 1) | 0;
    if (tag === 0) tag = 1;
    this.#lastTag = tag;
    this.backendAdd(fd, events, tag);
    const key = new SelectorKey(fileobj, fd, events, data as D);
    while (this.#keys.length < fd) {
      this.#keys.push(undefined);
      this.#tags.push(0);
    }
    this.#keys[fd] = key;
    this.#tags[fd] = tag;
    this.#count++;
    return key;
  }

  /**
   * Unregisters a file. Works after the fd was closed (the kernel already
   * forgot it): pass the same fileobj that was registered.
   *
   * @returns the key it had
   * @throws {SelectorKeyError} ERR_NOT_REGISTERED
   */
  unregister(fileobj: FileLike): SelectorKey<D> {
    this.#checkOpen('unregister');
    const key = this.#lookup(fileobj);
    try {
      this.backendRemove(key.fd);
    } catch (e) {
      // A closed fd is already out of every kernel set (EBADF), or its
      // number now belongs to another file (ENOENT): either way it is gone.
      if (!isErrnoError(e)) throw e;
    }
    if (this.#visiting) this.#removedInBatch.push(this.#tags[key.fd] as number);
    this.#keys[key.fd] = undefined;
    this.#count--;
    return key;
  }

  /**
   * @internal Unregisters the key of `fd`, whose file the caller has closed.
   * epoll then skips its syscall: close(2) already took the fd out of the
   * epoll set, and an EPOLL_CTL_DEL by a closed fd number can only fail
   * with EBADF. (When the file was dup'ed, its registration outlives the
   * fd, and no call by this number can reach it either.)
   */
  forgetClosed(fd: number): void {
    const key = this.#keys[fd];
    if (this.#closed || key === undefined) return;
    try {
      this.backendForgetClosed(fd);
    } catch (e) {
      // The backend had let it go already (poll, after reporting POLLNVAL).
      if (!isErrnoError(e)) throw e;
    }
    if (this.#visiting) this.#removedInBatch.push(this.#tags[fd] as number);
    this.#keys[fd] = undefined;
    this.#count--;
  }

  /**
   * Changes the events and/or data of a registered file. Changing only the
   * data makes no syscall.
   *
   * @returns the new key
   * @throws {SelectorKeyError} ERR_NOT_REGISTERED
   * @throws {RangeError} ERR_INVALID_EVENTS
   */
  modify(fileobj: FileLike, events: number, data?: D): SelectorKey<D> {
    this.#checkOpen('modify');
    const key = this.#lookup(fileobj);
    checkEvents(events);
    if (events !== key.events) this.backendModify(key.fd, events, this.#tags[key.fd] as number);
    const next = new SelectorKey(key.fileobj, key.fd, events, data as D);
    this.#keys[key.fd] = next;
    return next;
  }

  /**
   * Waits until some registered files are ready.
   *
   * @param timeoutMs - milliseconds, rounded up; <= 0 polls; `null` or
   *   `undefined` waits without limit
   * @returns `[key, events]` for each ready file, events masked to what it
   *   was registered for (an error or hang-up counts for both directions)
   */
  select(timeoutMs?: number | null): [SelectorKey<D>, number][] {
    const ready: [SelectorKey<D>, number][] = [];
    this.forEachReady(timeoutMs, (key, events) => {
      ready.push([key, events]);
    });
    return ready;
  }

  /**
   * The allocation-free {@link select}: calls `visit` for each ready key,
   * in the order the kernel reported them.
   *
   * @returns how many keys were visited
   */
  forEachReady(timeoutMs: number | null | undefined, visit: ReadyVisitor<D>): number {
    this.#checkOpen('select');
    const n = this.backendWait(toTimeoutMs(timeoutMs, 'poll'));
    const { array, stride, fdIndex, eventsIndex, tagIndex } = this.layout();
    const keys = this.#keys;
    const tags = this.#tags;
    let visited = 0;
    this.#visiting = true;
    try {
      for (let i = 0; i < n; i++) {
        const at = i * stride;
        const fd = array[at + fdIndex] as number;
        const key = keys[fd];
        if (tagIndex >= 0 && (key === undefined || array[at + tagIndex] !== tags[fd])) {
          const tag = array[at + tagIndex] as number;
          if (!this.#removedInBatch.includes(tag)) this.strayEvent(tag);
          continue;
        }
        if (key === undefined) continue;
        const events = this.toEvents(array[at + eventsIndex] as number) & key.events;
        if (events === 0) continue;
        visit(key, events);
        visited++;
      }
    } finally {
      this.#visiting = false;
      this.#removedInBatch.length = 0;
    }
    return visited;
  }

  /**
   * The key of a registered file.
   *
   * @throws {SelectorKeyError} ERR_NOT_REGISTERED
   */
  getKey(fileobj: FileLike): SelectorKey<D> {
    this.#checkOpen('getKey');
    return this.#lookup(fileobj);
  }

  /** A read-only live view: registered fileobj -> key (in fd order). */
  getMap(): ReadonlyMap<FileLike, SelectorKey<D>> {
    this.#checkOpen('getMap');
    return new SelectorMapping(this);
  }

  /** Number of registered files. */
  get size(): number {
    return this.#count;
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Frees the kernel object and forgets every key. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#keys = [];
    this.#tags = [];
    this.#count = 0;
    this.backendClose();
    const onClose = this.#onClose;
    this.#onClose = null;
    onClose?.();
  }

  /**
   * @internal Calls `callback` once when the selector is closed (by anyone):
   * an owner that waits on it without calling select() -- a cooperative
   * loop, idle -- learns it will never report anything again.
   */
  whenClosed(callback: () => void): void {
    this.#onClose = callback;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** @internal The registered keys, in fd order. */
  *keys(): IterableIterator<SelectorKey<D>> {
    for (const key of this.#keys) if (key !== undefined) yield key;
  }

  /** @internal Looks a fileobj up without the closed check. */
  find(fileobj: FileLike): SelectorKey<D> | undefined {
    try {
      return this.#lookup(fileobj);
    } catch {
      return undefined;
    }
  }

  /** Watches `fd` for `events` in the kernel; `tag` names this registration (see {@link ReadyLayout.tagIndex}). */
  protected abstract backendAdd(fd: number, events: number, tag: number): void;
  /** Changes the watched events of `fd`, registered with `tag`. */
  protected abstract backendModify(fd: number, events: number, tag: number): void;
  /** Stops watching `fd`. */
  protected abstract backendRemove(fd: number): void;
  /** Stops watching `fd`, which was closed (default: as backendRemove; select and poll keep their sets in memory). */
  protected backendForgetClosed(fd: number): void {
    this.backendRemove(fd);
  }
  /** Waits up to `timeoutMs` (-1: no limit); returns the records written. */
  protected abstract backendWait(timeoutMs: number): number;
  /** Where the last wait's records are. */
  protected abstract layout(): ReadyLayout;
  /** Kernel readiness bits -> EVENT_READ | EVENT_WRITE. */
  protected abstract toEvents(revents: number): number;
  /** Frees the kernel object. */
  protected abstract backendClose(): void;
  /**
   * An event whose tag matches no registration the selector holds, and
   * which none removed during this batch explains: a registration the
   * kernel kept after its fd was closed (a dup keeps the file open). Every
   * registration the kernel reports was live when the wait began, so nothing
   * else produces one. Only for backends with tags.
   */
  protected strayEvent(_tag: number): void {}

  /** The tag `fd` is registered with (0 when it is not). */
  protected tagOf(fd: number): number {
    return this.#tags[fd] ?? 0;
  }

  #checkOpen(method: string): void {
    if (this.#closed) throw new SelectorClosedError(method);
  }

  // CPython's _fileobj_lookup: by fd, or, when fileno() fails (a closed
  // socket), by identity among the registered fileobjs.
  #lookup(fileobj: FileLike): SelectorKey<D> {
    let fd: number;
    try {
      fd = toFd(fileobj);
    } catch (e) {
      for (const key of this.#keys) if (key !== undefined && key.fileobj === fileobj) return key;
      throw e;
    }
    const key = this.#keys[fd];
    if (key === undefined) {
      throw new SelectorKeyError('ERR_NOT_REGISTERED', `${describeFileobj(fileobj, fd)} is not registered`);
    }
    return key;
  }
}

/** The live read-only view {@link BaseSelector.getMap} returns. */
class SelectorMapping<D> implements ReadonlyMap<FileLike, SelectorKey<D>> {
  constructor(readonly selector: BaseSelector<D>) {}

  get size(): number {
    return this.selector.size;
  }

  get(fileobj: FileLike): SelectorKey<D> | undefined {
    return this.selector.find(fileobj);
  }

  has(fileobj: FileLike): boolean {
    return this.selector.find(fileobj) !== undefined;
  }

  *entries(): MapIterator<[FileLike, SelectorKey<D>]> {
    for (const key of this.selector.keys()) yield [key.fileobj, key];
  }

  *keys(): MapIterator<FileLike> {
    for (const key of this.selector.keys()) yield key.fileobj;
  }

  *values(): MapIterator<SelectorKey<D>> {
    yield* this.selector.keys();
  }

  forEach(callback: (value: SelectorKey<D>, key: FileLike, map: ReadonlyMap<FileLike, SelectorKey<D>>) => void): void {
    for (const key of this.selector.keys()) callback(key, key.fileobj, this);
  }

  [Symbol.iterator](): MapIterator<[FileLike, SelectorKey<D>]> {
    return this.entries();
  }
}
