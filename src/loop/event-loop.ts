/**
 * EventLoop: asyncio's selector event loop.
 *
 * One iteration ({@link EventLoop} `#runOnce`, the only place callbacks run):
 *
 * 1. purge cancelled timers (compact the heap when more than half are);
 * 2. apply pending interest changes to the selector (batched: a reader
 *    removed and added back within one iteration costs no syscall);
 * 3. compute the timeout: 0 if callbacks are ready or the loop is stopping,
 *    else until the earliest timer, else without limit;
 * 4. wait in the selector; queue the reader/writer handles of ready fds;
 * 5. queue the timers that are due, earliest first (ties in FIFO order);
 * 6. run the callbacks that were queued at the start of this step — ones
 *    they schedule wait for the next iteration, so I/O is never starved.
 *
 * @module
 */

import { isIP } from 'node:net';
import { ensureFuture, Future, LoopStateError, Task, type TaskTarget, WrongLoopError } from '../coro/index.js';
import { peekRunningLoop, setRunningLoop } from '../coro/running.js';
import { type ExceptionContext, type LoopLike, RUN, type Runnable } from '../coro/types.js';
import {
  type BaseSelector,
  EpollSelector,
  EVENT_READ,
  EVENT_WRITE,
  PollSelector,
  type SelectorKey,
  SelectSelector,
} from '../selectors/index.js';
import { describe, invalidArgType, invalidArgValue, outOfRange, toFd } from '../sys/args.js';
import {
  type AddrInfo,
  AF_INET,
  AF_INET6,
  type FileLike,
  isErrnoError,
  type SendData,
  SOCK_STREAM,
  Socket,
  type SocketAddress,
} from '../sys/index.js';
import { CooperativeDriver, type DriverLoop } from './cooperative.js';
import { type GetAddrInfoOptions, LoopResolver } from './dns.js';
import { type Callback, Handle, type HandleOwner, type IoSlots, TimerHandle, type Watcher } from './handle.js';
import { RingQueue } from './ready-queue.js';
import { SockOp, sockAccept, sockConnect, sockRecv, sockRecvInto, sockSendAll } from './sock-ops.js';
import { TimerHeap } from './timer-heap.js';

/** Cooperative mode: one tick runs at most this many iterations ... */
const COOPERATIVE_MAX_ITERATIONS = 64;
/** ... and stops starting new ones after this many milliseconds. */
const COOPERATIVE_SLICE_MS = 2;

/** The selector backends by name. */
export type SelectorName = 'select' | 'poll' | 'epoll';

/** A selector the loop can run on (its key data is the loop's own: don't register fds in it yourself). */
export type LoopSelector = BaseSelector;

// The selector as the loop itself sees it.
type EntrySelector = BaseSelector<IoEntry>;

/** EventLoop options. */
export interface EventLoopOptions {
  /** A selector instance, or a backend name (default 'epoll'). The loop closes it on close(). */
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

/** The handler of exceptions no one else handles (a throwing callback...). */
export type ExceptionHandler = (loop: EventLoop, context: ExceptionContext) => void;

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

function makeSelector(selector: EventLoopOptions['selector']): EntrySelector {
  switch (selector ?? 'epoll') {
    case 'epoll':
      return new EpollSelector<IoEntry>();
    case 'poll':
      return new PollSelector<IoEntry>();
    case 'select':
      return new SelectSelector<IoEntry>();
    default:
      if (typeof selector === 'object' && selector !== null && 'forEachReady' in selector) {
        // The loop keeps its own data in the keys and dispatches every ready
        // key as its own: a key someone else registered would be run as one.
        const { size } = selector as BaseSelector;
        if (size !== 0) {
          throw invalidArgValue(
            `The "selector" option must be an empty selector: the loop registers its own keys. Received one with ${size} key${size === 1 ? '' : 's'}`,
          );
        }
        return selector as unknown as EntrySelector;
      }
      throw invalidArgValue(
        `The "selector" option must be a selector or 'select' | 'poll' | 'epoll'. Received ${describe(selector)}`,
      );
  }
}

function checkCallback(callback: unknown): void {
  if (typeof callback !== 'function') throw invalidArgType('callback', 'a function', callback);
}

function checkMs(value: unknown, name: string): number {
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value);
  if (Number.isNaN(value)) throw outOfRange(name, 'a number of milliseconds', value);
  return value;
}

declare module '../coro/types.js' {
  /** The running loop is an EventLoop: `getRunningLoop().sockRecv(...)` type-checks. */
  interface RunningLoop extends EventLoop {}
}

/**
 * An event loop on a selector, as asyncio's. It runs callbacks (callSoon,
 * callLater, callAt), I/O callbacks (addReader, addWriter) and Tasks.
 *
 * `runForever()` / `runUntilComplete()` own the thread: they block in
 * select/poll/epoll_wait, exactly like Python, until stopped.
 *
 * @example
 * ```ts
 * const loop = new EventLoop({ selector: 'epoll' });
 * function* main(): Coroutine<string> {
 *   yield* sleep(10);
 *   return 'done';
 * }
 * console.log(loop.runUntilComplete(main()));
 * loop.close();
 * ```
 */
export class EventLoop implements LoopLike, HandleOwner {
  readonly #selector: EntrySelector;
  readonly #ready = new RingQueue<Runnable>();
  readonly #timers = new TimerHeap();
  #timerSeq = 0;
  #iterations = 0;
  #io: (IoEntry | undefined)[] = [];
  #dirty: IoEntry[] = [];
  #spareDirty: IoEntry[] = [];
  // By fd: 1 when the last receive drained the socket's queue (sock-ops).
  #drained = new Uint8Array(64);
  readonly #resolvedVoid: Future<void>;
  #running = false;
  #stopping = false;
  #closed = false;
  #exceptionHandler: ExceptionHandler | null = null;
  readonly #resolver = new LoopResolver(this);
  #driver: CooperativeDriver | null = null;
  #inTick = false;
  #referenced = true;
  readonly #debug: boolean;
  readonly #slowCallbackMs: number;
  readonly #logger: (message: string) => void;
  readonly #unretrieved = new Set<WeakRef<Future<unknown>>>();
  readonly #onReady = (key: SelectorKey<IoEntry>, events: number): void => {
    const entry = key.data;
    if ((events & EVENT_READ) !== 0 && entry.reader !== null) this.#ready.push(entry.reader);
    if ((events & EVENT_WRITE) !== 0 && entry.writer !== null) this.#ready.push(entry.writer);
  };

  /**
   * @throws {TypeError} for an unknown selector option
   */
  constructor(options: EventLoopOptions = {}) {
    this.#selector = makeSelector(options.selector);
    // Closed behind the loop's back while a cooperative run idles: wake it,
    // so that its next select() fails the run instead of leaving it pending.
    this.#selector.whenClosed(() => this.#driver?.wake());
    if (this.#selector instanceof EpollSelector) {
      this.#selector.whenRenewed(
        () => this.#driver?.pauseWatch(),
        () => this.#driver?.resumeWatch(),
      );
    }
    // Made now rather than on first use: resolvedVoid() is then a field
    // read, which costs a coroutine's inlining budget next to nothing.
    this.#resolvedVoid = new Future<void>(this);
    this.#resolvedVoid.setResult(undefined);
    this.#debug = options.debug ?? false;
    this.#slowCallbackMs = options.slowCallbackMs ?? 100;
    this.#logger = options.logger ?? ((message) => process.stderr.write(`${message}\n`));
  }

  /** The selector this loop waits in. */
  get selector(): LoopSelector {
    return this.#selector as LoopSelector;
  }

  /** True in debug mode. */
  get debug(): boolean {
    return this.#debug;
  }

  /** How many iterations the loop has run (for measuring what one costs). */
  get iterations(): number {
    return this.#iterations;
  }

  /** The loop's clock: monotonic milliseconds (fractional). */
  time(): number {
    return performance.now();
  }

  /**
   * Schedules `callback(...args)` for the next iteration; callbacks run in
   * the order they were scheduled.
   *
   * @throws {TypeError} when callback is not a function
   * @throws {LoopStateError} ERR_LOOP_CLOSED after close()
   */
  callSoon<A extends unknown[]>(callback: (...args: A) => void, ...args: A): Handle {
    this.#checkClosed();
    checkCallback(callback);
    const handle = new Handle(callback as unknown as Callback, args, this);
    this.schedule(handle);
    return handle;
  }

  /** @internal True when the last receive on `fd` drained its queue (a hint: waiting first is always correct). */
  recvDrained(fd: number): boolean {
    return this.#drained[fd] === 1;
  }

  /**
   * @internal Sets the hint: the next receive on `fd` waits for readiness
   * first (after a short read or a send). The table grows when an fd is
   * first watched, not here: this stays a store, and for an fd beyond it
   * (never watched yet) the hint is dropped -- only a wasted attempt.
   */
  markDrained(fd: number, drained: boolean): void {
    this.#drained[fd] = drained ? 1 : 0;
  }

  /** @internal A done Future<void>, shared: what a socket operation that completed at once returns. */
  resolvedVoid(): Future<void> {
    return this.#resolvedVoid;
  }

  /** @internal Queues a Future's done callbacks or a Task's step (see LoopLike). */
  schedule(item: Runnable): void {
    this.#checkClosed();
    this.#ready.push(item);
    if (this.#driver !== null && !this.#inTick) this.#driver.wake();
  }

  /**
   * asyncio's `call_soon_threadsafe`, kept under its name for code ported
   * from Python: it is {@link callSoon}. JavaScript gives no other thread
   * this object (a worker has its own objects), and callSoon from a Node
   * timer, a promise continuation or an event emitter already wakes a
   * cooperative loop that is waiting. To wake a loop from another worker,
   * write an eventfd it reads ({@link addReader}).
   */
  callSoonThreadsafe<A extends unknown[]>(callback: (...args: A) => void, ...args: A): Handle {
    return this.callSoon(callback, ...args);
  }

  /**
   * Schedules `callback(...args)` after `delayMs` milliseconds.
   *
   * @throws {TypeError} when delayMs is not a number or callback not a function
   * @throws {RangeError} when delayMs is NaN
   */
  callLater<A extends unknown[]>(delayMs: number, callback: (...args: A) => void, ...args: A): TimerHandle {
    return this.callAt(this.time() + checkMs(delayMs, 'delayMs'), callback, ...args);
  }

  /**
   * Schedules `callback(...args)` at loop time `when` (see {@link time}).
   * Timers due at the same time run in the order they were scheduled.
   */
  callAt<A extends unknown[]>(when: number, callback: (...args: A) => void, ...args: A): TimerHandle {
    this.#checkClosed();
    checkMs(when, 'when');
    checkCallback(callback);
    const timer = new TimerHandle(when, this.#timerSeq++, callback as unknown as Callback, args, this);
    this.#timers.push(timer);
    if (this.#driver !== null && !this.#inTick) this.#driver.wake();
    return timer;
  }

  /**
   * Calls `callback(...args)` whenever `fileobj` is readable, until
   * removeReader. One reader per fd: a new one replaces the old.
   *
   * @throws {OSError} when the selector refuses the fd (EBADF, EPERM for regular files)
   * @throws {RangeError} for SelectSelector and an fd >= FD_SETSIZE
   */
  addReader<A extends unknown[]>(fileobj: FileLike, callback: (...args: A) => void, ...args: A): Handle {
    return this.#addHandle(fileobj, EVENT_READ, callback as unknown as Callback, args);
  }

  /** Stops watching `fileobj` for reading. @returns whether there was a reader */
  removeReader(fileobj: FileLike): boolean {
    return this.#removeIo(fileobj, EVENT_READ);
  }

  /** As {@link addReader}, for writability. */
  addWriter<A extends unknown[]>(fileobj: FileLike, callback: (...args: A) => void, ...args: A): Handle {
    return this.#addHandle(fileobj, EVENT_WRITE, callback as unknown as Callback, args);
  }

  /**
   * @internal The socket's operation for one direction (sock-ops), as its
   * reader or writer: kept with the fd's registration and reused, message
   * after message. The usual case costs a lookup: an operation started
   * while the last one on the socket completes finds it in the slot still,
   * and nothing changes.
   *
   * @throws what addReader throws for a socket the selector refuses
   */
  sockOp(sock: Socket, write: boolean): SockOp {
    const entry = this.#io[sock.fileno()];
    const op = write ? entry?.writeOp : entry?.readOp;
    return op != null && op === (write ? entry?.writer : entry?.reader) && op.sock === sock
      ? op
      : this.#watchOp(sock, write);
  }

  #watchOp(sock: Socket, write: boolean): SockOp {
    this.#checkClosed();
    const fd = sock.fileno();
    const old = this.#io[fd];
    const kept = old !== undefined && old.fileobj === sock ? (write ? old.writeOp : old.readOp) : null;
    const op = kept ?? new SockOp(this, sock, write);
    const entry = this.#addIo(sock, fd, write ? EVENT_WRITE : EVENT_READ, op);
    if (write) entry.writeOp = op;
    else entry.readOp = op;
    op.slots = entry;
    return op;
  }

  /** @internal Stops a socket operation's watching, unless another reader or writer replaced it since. */
  unwatch(slots: IoSlots, write: boolean, watcher: Watcher): void {
    // The watcher still holds the slot, so the entry is still this fd's:
    // dropping an entry disarms its watchers, which then never get here.
    const entry = slots as IoEntry;
    if (this.#closed || (write ? entry.writer : entry.reader) !== watcher) return;
    this.#clearIo(entry, write ? EVENT_WRITE : EVENT_READ);
  }

  /** Stops watching `fileobj` for writing. @returns whether there was a writer */
  removeWriter(fileobj: FileLike): boolean {
    return this.#removeIo(fileobj, EVENT_WRITE);
  }

  /**
   * Runs until {@link stop} is called, blocking the thread in the selector.
   *
   * @throws {LoopStateError} ERR_LOOP_RUNNING when this or another loop is running; ERR_LOOP_CLOSED
   */
  runForever(): void {
    this.#enter();
    try {
      for (;;) {
        this.#runOnce();
        if (this.#stopping) break;
      }
    } finally {
      this.#leave();
    }
  }

  /**
   * Runs until `target` is done and returns its result (or throws its
   * exception). A generator object is wrapped in a Task.
   *
   * @throws the target's exception; CancelledError when it was cancelled
   */
  runUntilComplete<T>(target: Future<T> | Generator<unknown, T, unknown>): T {
    this.#checkClosed();
    const future = target instanceof Future ? target : this.createTask(target);
    if (future.loop !== this) throw new WrongLoopError('the Future belongs to another loop');
    const stopWhenDone = (): void => this.stop();
    future.addDoneCallback(stopWhenDone);
    try {
      this.runForever();
    } finally {
      future.removeDoneCallback(stopWhenDone);
    }
    if (!future.done()) throw new LoopStateError('ERR_LOOP_STOPPED', 'Event loop stopped before the Future completed.');
    return future.result();
  }

  /**
   * Cooperative mode: runs `main` to its end while Node's own event loop
   * keeps running (its timers, I/O, microtasks and async functions). Each
   * step is one non-blocking iteration; while idle, the loop sleeps in libuv
   * (epoll: libuv watches the epoll fd; select/poll: a helper thread), never
   * in a busy loop. Resolves with main's result, rejects with its error.
   *
   * @param main - a generator object, a Future, a promise, or a function returning one
   * @throws {LoopStateError} (through the promise) when this or another loop is running, or it is closed
   *
   * @example
   * ```ts
   * const loop = new EventLoop();
   * const body = await loop.run(async () => {
   *   await loop.sockConnect(sock, ['127.0.0.1', 8080]);
   *   await loop.sockSendAll(sock, request);
   *   return await loop.sockRecv(sock, 65536);
   * });
   * ```
   */
  run<T>(main: RunTarget<T>): Promise<T> {
    try {
      this.#enter();
    } catch (e) {
      return Promise.reject(e);
    }
    let future: Future<T>;
    try {
      // A function runs as a Task's own code, as createTask(fn) runs it
      // (currentTask(), cancellation, the AbortSignal), from the first iteration.
      if (typeof main === 'function') future = new Task<T>(main as TaskTarget<T>, this);
      else
        future =
          main instanceof Future ? main : (ensureFuture(main as Generator<unknown, T, unknown>, this) as Future<T>);
      if (future.loop !== this) throw new WrongLoopError('the Future belongs to another loop');
    } catch (e) {
      this.#leave();
      return Promise.reject(e);
    }
    return new Promise<T>((resolve, reject) => {
      const stopWhenDone = (): void => this.stop();
      future.addDoneCallback(stopWhenDone);
      let failure: { error: unknown } | null = null;
      const view: DriverLoop = {
        tick: () => {
          // Iterate while iterations find work, up to a bound, then give
          // Node its turn: busy I/O does not pay a trip through libuv per
          // event, and Node's own callbacks and microtasks still run often.
          this.#inTick = true;
          const deadline = this.time() + COOPERATIVE_SLICE_MS;
          try {
            for (let i = 0; i < COOPERATIVE_MAX_ITERATIONS; i++) {
              const ran = this.#runOnce(false);
              if (this.#stopping || ran === 0 || this.time() >= deadline) break;
            }
          } catch (error) {
            failure = { error };
            return false;
          } finally {
            this.#inTick = false;
          }
          return !this.#stopping;
        },
        hasReady: () => this.#ready.length > 0,
        nextTimerDelay: () => {
          this.#timers.purge();
          const first = this.#timers.peek();
          return first === undefined ? null : Math.max(0, first.when - this.time());
        },
        watchedPairs: () => {
          const pairs: number[] = [];
          for (const key of this.#selector.keys()) pairs.push(key.fd, key.events);
          return Int32Array.from(pairs);
        },
        watchedCount: () => this.#selector.size,
        epollFd: () => (this.#selector instanceof EpollSelector ? this.#selector.fileno() : null),
      };
      const done = (): void => {
        this.#driver = null;
        future.removeDoneCallback(stopWhenDone);
        this.#leave();
        if (failure !== null) reject(failure.error);
        else if (!future.done())
          reject(new LoopStateError('ERR_LOOP_STOPPED', 'Event loop stopped before the Future completed.'));
        else if (future.cancelled()) reject(peekError(future));
        else if (future.exception() !== null) reject(future.exception());
        else resolve(future.result());
      };
      try {
        this.#driver = new CooperativeDriver(view, done);
        if (!this.#referenced) this.#driver.setReferenced(false);
      } catch (e) {
        this.#driver = null;
        this.#leave();
        reject(e);
      }
    });
  }

  /**
   * Cooperative mode: lets the process exit even while this loop has work
   * (like an unref'ed Node handle). Takes effect at once when running.
   */
  unref(): void {
    this.#referenced = false;
    this.#driver?.setReferenced(false);
  }

  /** Undoes unref(): the loop keeps the process alive while it has fds, timers or callbacks. */
  ref(): void {
    this.#referenced = true;
    this.#driver?.setReferenced(true);
  }

  /** Stops runForever after the current iteration. */
  stop(): void {
    this.#stopping = true;
    if (this.#driver !== null && !this.#inTick) this.#driver.wake();
  }

  /** True while runForever / runUntilComplete runs. */
  isRunning(): boolean {
    return this.#running;
  }

  /** True once closed. */
  isClosed(): boolean {
    return this.#closed;
  }

  /**
   * Closes the loop: drops pending callbacks and timers, closes the
   * selector, and reports exceptions no one retrieved. Idempotent.
   *
   * @throws {LoopStateError} ERR_LOOP_RUNNING while running
   */
  close(): void {
    if (this.#running) throw new LoopStateError('ERR_LOOP_RUNNING', 'Cannot close a running event loop');
    if (this.#closed) return;
    for (const ref of this.#unretrieved) {
      const future = ref.deref();
      if (future?.hasUnretrievedException() === true) {
        this.callExceptionHandler({
          message: `${future instanceof Task ? 'Task' : 'Future'} exception was never retrieved`,
          exception: future.exception(),
          future,
        });
      }
    }
    this.#unretrieved.clear();
    this.#resolver.close();
    this.#closed = true;
    this.#ready.clear();
    this.#timers.clear();
    this.#io = [];
    this.#dirty = [];
    this.#spareDirty = [];
    this.#selector.close();
  }

  /** A new Future on this loop. */
  createFuture<T = unknown>(): Future<T> {
    this.#checkClosed();
    return new Future<T>(this);
  }

  /**
   * A new Task running `target` on this loop: a generator object, a
   * promise, or a function returning one (it gets the task's AbortSignal).
   */
  createTask<T>(target: TaskTarget<T>, name?: string): Task<T> {
    this.#checkClosed();
    return new Task<T>(target, this, name);
  }

  /**
   * Receives up to `nbytes` from a socket; resolves with the data (empty at EOF).
   * Tries at once, then waits for readability.
   *
   * @throws {TypeError} / {RangeError} when nbytes is not an integer in [0, 2^31 - 1]
   */
  sockRecv(sock: Socket, nbytes: number): Future<Buffer> {
    return sockRecv(this, sock, nbytes);
  }

  /**
   * Receives into `buffer` (bytes `offset`..`offset + length`); resolves with the count, 0 at EOF.
   *
   * @throws {TypeError} / {RangeError} for a buffer that is no ArrayBufferView, or a range outside it
   */
  sockRecvInto(sock: Socket, buffer: ArrayBufferView, offset?: number, length?: number): Future<number> {
    return sockRecvInto(this, sock, buffer, offset, length);
  }

  /**
   * Sends all of `data`, across partial writes and full buffers. For bytes,
   * `offset` and `length` (in bytes) send a part without a subarray. A send
   * of at most 64 KiB may reuse its buffer as soon as this returns (the
   * unsent rest is copied when it has to wait); a larger one must leave its
   * bytes unchanged until the Future is done.
   *
   * @throws {TypeError} / {RangeError} for a range outside the bytes, or one given with a string
   */
  sockSendAll(sock: Socket, data: SendData, offset?: number, length?: number): Future<void> {
    return sockSendAll(this, sock, data, offset, length);
  }

  /** Accepts a connection: a non-blocking Socket and the peer's address. */
  sockAccept(sock: Socket): Future<[Socket, SocketAddress]> {
    return sockAccept(this, sock);
  }

  /**
   * Connects `sock`. A host name is resolved first (getaddrinfo on a worker
   * thread); connection errors (ECONNREFUSED...) fail the Future.
   */
  sockConnect(sock: Socket, address: SocketAddress): Future<void> {
    this.#checkClosed();
    if (typeof address === 'string' || isIP(address[0]) !== 0) return sockConnect(this, sock, address);
    const [host, port] = address;
    const family = sock.family;
    const future = this.createFuture<void>();
    const lookup = this.getaddrinfo(host, port, { family, type: SOCK_STREAM });
    lookup.addDoneCallback((done) => {
      if (future.done()) return;
      if (done.exception() !== null) {
        future.setException(done.exception());
        return;
      }
      const first = done.result().find((info) => info.family === family);
      if (first === undefined) {
        future.setException(
          Object.assign(
            new Error(
              `getaddrinfo found no ${family === AF_INET ? 'IPv4' : family === AF_INET6 ? 'IPv6' : ''} address for ${host}`,
            ),
            { code: 'ENOTFOUND' },
          ),
        );
        return;
      }
      const connected = sockConnect(this, sock, first.address);
      connected.addDoneCallback((c) => {
        if (future.done()) return;
        if (c.cancelled()) future.cancel();
        else if (c.exception() !== null) future.setException(c.exception());
        else future.setResult(undefined);
      });
      future.addDoneCallback((f) => {
        if (f.cancelled()) connected.cancel();
      });
    });
    future.addDoneCallback((f) => {
      if (f.cancelled()) lookup.cancel();
    });
    return future;
  }

  /**
   * Resolves a host and port without blocking the loop: numeric addresses at
   * once, names with getaddrinfo(3) on a worker thread whose completion the
   * loop watches through an eventfd.
   *
   * @throws {GetAddrInfoError} (through the Future) ENOTFOUND, EAI_AGAIN...
   */
  getaddrinfo(host: string, port: number, options?: GetAddrInfoOptions): Future<AddrInfo[]> {
    this.#checkClosed();
    return this.#resolver.lookup(host, port, options);
  }

  /** Sets (or, with null, resets) the handler of unhandled exceptions. */
  setExceptionHandler(handler: ExceptionHandler | null): void {
    if (handler !== null && typeof handler !== 'function') checkCallback(handler);
    this.#exceptionHandler = handler;
  }

  /** The handler set with setExceptionHandler, or null. */
  getExceptionHandler(): ExceptionHandler | null {
    return this.#exceptionHandler;
  }

  /** Reports an exception to the handler (or logs it when none is set). */
  callExceptionHandler(context: ExceptionContext): void {
    const handler = this.#exceptionHandler;
    if (handler === null) {
      this.defaultExceptionHandler(context);
      return;
    }
    try {
      handler(this, context);
    } catch (exception) {
      this.defaultExceptionHandler({ message: 'Unhandled error in exception handler', exception });
      this.defaultExceptionHandler(context);
    }
  }

  /** Logs the context: its message and the exception's stack. */
  defaultExceptionHandler(context: ExceptionContext): void {
    const { exception } = context;
    const detail =
      exception instanceof Error
        ? (exception.stack ?? String(exception))
        : exception === undefined
          ? ''
          : String(exception);
    this.#logger(detail === '' ? context.message : `${context.message}\n${detail}`);
  }

  /** @internal */
  trackUnretrieved(future: object): void {
    this.#unretrieved.add(new WeakRef(future as Future<unknown>));
    if (this.#unretrieved.size > 1024) {
      for (const ref of this.#unretrieved) {
        if (ref.deref()?.hasUnretrievedException() !== true) this.#unretrieved.delete(ref);
      }
    }
  }

  /** @internal */
  timerCancelled(handle: TimerHandle): void {
    this.#timers.noteCancelled(handle);
  }

  #checkClosed(): void {
    if (this.#closed) throw new LoopStateError('ERR_LOOP_CLOSED', 'Event loop is closed');
  }

  #enter(): void {
    this.#checkClosed();
    if (this.#running) throw new LoopStateError('ERR_LOOP_RUNNING', 'This event loop is already running');
    if (peekRunningLoop() !== null) {
      throw new LoopStateError('ERR_LOOP_RUNNING', 'Cannot run the event loop while another loop is running');
    }
    setRunningLoop(this);
    this.#running = true;
  }

  #leave(): void {
    this.#stopping = false;
    this.#running = false;
    setRunningLoop(null);
  }

  // The one iteration (see the module doc for the order).
  // Returns how many callbacks it ran.
  #runOnce(block = true): number {
    this.#iterations++;
    const timers = this.#timers;
    const ready = this.#ready;
    timers.purge();
    this.#applyInterest();
    let timeoutMs: number | null = null;
    if (!block || ready.length > 0 || this.#stopping) {
      timeoutMs = 0;
    } else {
      const first = timers.peek();
      if (first !== undefined) timeoutMs = Math.max(0, first.when - this.time());
    }
    this.#selector.forEachReady(timeoutMs, this.#onReady);
    const now = this.time();
    for (;;) {
      const first = timers.peek();
      if (first === undefined || first.when > now) break;
      timers.pop();
      if (!first.cancelled()) ready.push(first);
    }
    const ntodo = ready.length;
    for (let i = 0; i < ntodo; i++) {
      const item = ready.shift() as Runnable;
      if (this.#debug) this.#runTimed(item);
      // Two call sites: handles (two shapes) and futures (three) each stay
      // polymorphic in V8, where one site for all five would go megamorphic.
      else if (item instanceof Handle) item[RUN]();
      else item[RUN]();
    }
    return ntodo;
  }

  #runTimed(item: Runnable): void {
    const t0 = this.time();
    item[RUN]();
    const took = this.time() - t0;
    if (took >= this.#slowCallbackMs) {
      // A handle, a done Future's callbacks, or a pending one's step
      // (a Task's coroutine, a socket operation's retry).
      const what =
        item instanceof Handle
          ? item.describe()
          : item instanceof Future && item.done()
            ? `the done callbacks of ${String(item)}`
            : String(item);
      this.#logger(`Executing ${what} took ${took.toFixed(1)} ms (slow callback)`);
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
    for (const entry of this.#io) if (entry !== undefined && entry.fileobj === fileobj) return entry;
    return undefined;
  }

  #addHandle(fileobj: FileLike, event: number, callback: Callback, args: readonly unknown[]): Handle {
    this.#checkClosed();
    checkCallback(callback);
    const fd = this.#fdOf(fileobj);
    const handle = new Handle(callback, args, this);
    this.#addIo(fileobj, fd, event, handle);
    return handle;
  }

  #addIo(fileobj: FileLike, fd: number, event: number, watcher: Watcher): IoEntry {
    let entry = this.#io[fd];
    if (entry !== undefined && entry.fileobj !== fileobj) {
      // The fd number now belongs to another file (the old one was closed
      // while watched): forget the stale registration first.
      this.#dropEntry(entry);
      entry = undefined;
    }
    if (entry === undefined) {
      entry = new IoEntry(fileobj, fd);
      this.#selector.register(fileobj, event, entry);
      entry.registered = event;
      while (this.#io.length < fd) this.#io.push(undefined);
      this.#io[fd] = entry;
      if (fd >= this.#drained.length) {
        const grown = new Uint8Array(Math.max(fd + 1, this.#drained.length * 2));
        grown.set(this.#drained);
        this.#drained = grown;
      }
    } else {
      const old = event === EVENT_READ ? entry.reader : entry.writer;
      old?.disarm();
      if ((entry.registered & event) === 0) this.#markDirty(entry);
    }
    if (event === EVENT_READ) entry.reader = watcher;
    else entry.writer = watcher;
    // A cooperative loop's helper thread waits on a snapshot of the fds: re-arm it.
    if (this.#driver !== null && !this.#inTick) this.#driver.wake();
    return entry;
  }

  #removeIo(fileobj: FileLike, event: number): boolean {
    if (this.#closed) return false;
    let fd: number;
    try {
      fd = this.#fdOf(fileobj);
    } catch {
      return false;
    }
    const entry = this.#io[fd];
    if (entry === undefined || entry.fileobj !== fileobj) return false;
    if ((event === EVENT_READ ? entry.reader : entry.writer) === null) return false;
    this.#clearIo(entry, event);
    return true;
  }

  #clearIo(entry: IoEntry, event: number): void {
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

  // Batched interest changes, right before the wait: only what still
  // differs from what the selector watches costs a syscall.
  //
  // An fd that lost all interest stays registered for one more iteration:
  // a sock_* operation removes its reader when data arrives, and the Task it
  // wakes adds the reader back only in the next iteration's callbacks, so
  // dropping at once would cost an epoll_ctl DEL and ADD per message. The
  // price is at most one spurious wake-up, if the fd turns ready meanwhile.
  #applyInterest(): void {
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

  #applyEntry(entry: IoEntry): void {
    entry.dirty = false;
    if (this.#io[entry.fd] !== entry) return;
    const wanted = entry.wanted();
    if (wanted !== 0) entry.idle = false;
    if (wanted === entry.registered) return;
    if (wanted === 0) {
      if (entry.idle) {
        this.#dropEntry(entry);
      } else {
        entry.idle = true;
        this.#markDirty(entry);
      }
      return;
    }
    try {
      this.#selector.modify(entry.fileobj, wanted, entry);
      entry.registered = wanted;
    } catch (exception) {
      // The fd was closed while watched: its callbacks can never run.
      if (!isErrnoError(exception)) throw exception;
      this.#dropEntry(entry);
      this.callExceptionHandler({
        message: `fd ${entry.fd} was closed while watched; its callbacks are dropped`,
        exception,
      });
    }
  }

  #dropEntry(entry: IoEntry): void {
    entry.reader?.disarm();
    entry.writer?.disarm();
    entry.reader = null;
    entry.writer = null;
    if (this.#io[entry.fd] === entry) this.#io[entry.fd] = undefined;
    try {
      // By fd, not fileobj: the socket is often closed by now, and a closed
      // socket's fileno() throws, which made the selector build an error and
      // search every key for it -- per connection, with 1,000 registered.
      // A closed socket is out of the kernel's set already: no syscall.
      if (entry.fileobj instanceof Socket && entry.fileobj.closed) this.#selector.forgetClosed(entry.fd);
      else this.#selector.unregister(entry.fd);
    } catch {
      // Not registered any more: nothing to undo.
    }
    entry.registered = 0;
  }
}

function peekError(future: Future<unknown>): unknown {
  try {
    future.result();
  } catch (e) {
    return e;
  }
  return new Error('cancelled');
}
