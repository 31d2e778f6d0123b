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
 * 4. wait in the selector (when it will block, first putting the loop's
 *    signal handlers back over any installed since: signals.ts); queue the
 *    reader/writer handles of ready fds;
 * 5. queue the timers that are due, earliest first (ties in FIFO order);
 * 6. run the callbacks that were queued at the start of this step — ones
 *    they schedule wait for the next iteration, so I/O is never starved.
 *
 * @module
 */

import { isIP } from 'node:net';
import { Future, InvalidStateError, LoopStateError, Task, type TaskTarget, WrongLoopError } from '../coro/index.js';
import { peekRunningLoop, setRunningLoop } from '../coro/running.js';
import { type ExceptionContext, type LoopLike, RUN, type Runnable } from '../coro/types.js';
import { EVENT_READ, EVENT_WRITE, type ReadyVisitor } from '../selectors/index.js';
import {
  type AddrInfo,
  type FileLike,
  type SendData,
  type SignalLike,
  type Socket,
  type SocketAddress,
  TlsSocket,
} from '../sys/index.js';
import { LoopBackend } from './backend.js';
import { connectByName } from './connect.js';
import {
  type AcceptedSocketOptions,
  type CreateConnectionOptions,
  type CreateUnixConnectionOptions,
  connectAcceptedSocket,
  createConnection,
  createUnixConnection,
} from './connections.js';
import { type CooperativeDriver, type DriverLoop, runFuture, startRun } from './cooperative.js';
import { createDatagramEndpoint, type DatagramEndpointOptions } from './datagram-endpoint.js';
import { sockRecvfrom, sockRecvfromInto, sockSendto } from './datagram-ops.js';
import { type GetAddrInfoOptions, LoopResolver } from './dns.js';
import { ExceptionReporter } from './exceptions.js';
import { type Callback, Handle, type HandleOwner, type IoSlots, TimerHandle, type Watcher } from './handle.js';
import { HeldWrites, type WriteHolder } from './held-writes.js';
import type { EntrySelector, IoEntry, IoRegistry } from './io.js';
import {
  checkCallback,
  checkMs,
  type EventLoopOptions,
  type LoopSelector,
  pickBackend,
  type RunTarget,
} from './options.js';
import type { Proactor } from './proactor.js';
import type {
  BufferedProtocol,
  DatagramProtocol,
  DatagramTransport,
  Protocol,
  ProtocolFactory,
  Transport,
} from './protocols.js';
import { RingQueue } from './ready-queue.js';
import {
  type CreateServerOptions,
  type CreateUnixServerOptions,
  createServer,
  createUnixServer,
  type Server,
} from './server.js';
import { LoopSignals } from './signals.js';
import { SockOp, sockAccept, sockConnect, sockRecv, sockRecvInto, sockSendAll } from './sock-ops.js';
import { LoopMeter, type LoopStats } from './stats.js';
import { TimerHeap } from './timer-heap.js';
import { type StartTlsOptions, startTls, tlsRecv, tlsRecvInto, tlsSendAll } from './tls-ops.js';
import type { LoopTrace } from './trace.js';

export type { SelectorName } from '../selectors/index.js';
export type { BackendName, EventLoopOptions, LoopSelector, RunTarget } from './options.js';
export type { LoopStats } from './stats.js';

/** The handler of exceptions no one else handles (a throwing callback...). */
export type ExceptionHandler = (loop: EventLoop, context: ExceptionContext) => void;

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
  readonly #ready = new RingQueue<Runnable>();
  readonly #held = new HeldWrites();
  readonly #heldFailed = (exception: unknown): void =>
    this.callExceptionHandler({ message: 'Exception releasing held writes', exception });
  readonly #timers = new TimerHeap();
  #timerSeq = 0;
  // Counters, always; the trace when one is attached (stats.ts).
  readonly #meter: LoopMeter;
  // The fd registrations (io.ts): what the selector watches, and for whom.
  readonly #io: IoRegistry;
  // The registry's tables by fd, read on the per-message path (sockOp and
  // sock-ops' drained hint) without going through it: each extra property
  // load there grows the code a coroutine inlines, and past V8's inlining
  // budget a callee is called instead (about 150 instructions per echo round
  // trip). `entries` is one array for the registry's life; `drained` is
  // replaced when it grows, which happens only when an fd is first watched.
  readonly #entries: (IoEntry | undefined)[];
  #drained: Uint8Array;
  // The same for each iteration's wait: the selector and the registry's visitor.
  readonly #selector: EntrySelector;
  readonly #onReady: ReadyVisitor<IoEntry>;
  readonly #resolvedVoid: Future<void>;
  // What the loop waits in; its completion-based socket operations on an
  // io_uring loop (else null).
  readonly #backend: LoopBackend;
  readonly #proactor: Proactor | null;
  #running = false;
  #stopping = false;
  #closed = false;
  readonly #exceptions: ExceptionReporter<EventLoop>;
  readonly #resolver = new LoopResolver(this);
  readonly #signals = new LoopSignals(this);
  #driver: CooperativeDriver | null = null;
  #inTick = false;
  #referenced = true;
  readonly #debug: boolean;

  /**
   * @throws {TypeError} for an unknown selector option
   */
  constructor(options: EventLoopOptions = {}) {
    const wake = (): void => {
      if (this.#driver !== null && !this.#inTick) this.#driver.wake();
    };
    const backend = new LoopBackend(pickBackend(options), this, this.#ready, {
      callExceptionHandler: (context) => this.callExceptionHandler(context),
      // A cooperative loop's idle wait (epoll: libuv's; select and poll: a
      // helper thread's snapshot of the fds) must see a new watch.
      ioChanged: wake,
    });
    this.#backend = backend;
    this.#io = backend.io;
    this.#proactor = backend.proactor;
    this.#entries = backend.io.entries;
    this.#drained = backend.io.drained;
    this.#selector = backend.selector;
    this.#onReady = backend.io.onReady;
    backend.connectDriver(() => this.#driver);
    // Made now rather than on first use: resolvedVoid() is then a field
    // read, which costs a coroutine's inlining budget next to nothing.
    this.#resolvedVoid = new Future<void>(this);
    this.#resolvedVoid.setResult(undefined);
    this.#debug = options.debug ?? false;
    this.#meter = new LoopMeter(
      options.slowCallbackMs ?? 100,
      this.#debug,
      (item, took) => this.#exceptions.logSlow(item, took),
      () => this.time(),
    );
    this.#exceptions = new ExceptionReporter(options.logger ?? ((message) => process.stderr.write(`${message}\n`)));
  }

  /** The selector this loop waits in. */
  get selector(): LoopSelector {
    return this.#io.selector as LoopSelector;
  }

  /** True in debug mode. */
  get debug(): boolean {
    return this.#debug;
  }

  /** How many iterations the loop has run (for measuring what one costs). */
  get iterations(): number {
    return this.#meter.iterations;
  }

  /**
   * The loop's counters since it was made (or {@link resetStats}): its
   * iterations, the time blocked in the selector against the time running
   * callbacks, events per wait, what is pending, and slow iterations. Kept
   * always, at two clock reads an iteration.
   */
  stats(): LoopStats {
    return this.#meter.snapshot({
      timers: this.#timers.size - this.#timers.cancelledCount,
      ready: this.#ready.length,
      fds: this.#closed ? 0 : this.#selector.size,
    });
  }

  /** Sets the counters of {@link stats} back to zero (the gauges -- timers, ready, fds -- stay true). */
  resetStats(): void {
    this.#meter.reset();
  }

  /**
   * Records what the loop does into `trace` -- each wait, each callback or
   * Task step, each socket operation -- until set to null. Several loops
   * may share a trace, each on a lane (a track) of its own or on one given.
   * Tracing times every callback: about 0.2 us per event (bench echo's
   * traced row says how much here).
   *
   * @param lane - a name for a new lane (default 'EventLoop (<backend>)'), or
   *   the number of one made with {@link LoopTrace.addLane}
   * @throws {TypeError} ERR_INVALID_ARG_TYPE when trace is neither a LoopTrace nor null
   * @throws {RangeError} ERR_OUT_OF_RANGE for a lane number the trace does not have
   */
  setTrace(trace: LoopTrace | null, lane?: string | number): void {
    this.#meter.setTrace(trace, lane, `EventLoop (${this.#backend.name})`);
  }

  /** The trace attached with {@link setTrace}, or null. */
  get trace(): LoopTrace | null {
    return this.#meter.trace;
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

  /** @internal True when the last receive on `fd` drained its queue (sock-ops; see io.ts). */
  recvDrained(fd: number): boolean {
    return this.#drained[fd] === 1;
  }

  /** @internal Sets or clears that hint: the next receive on `fd` waits for readiness first. */
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
    return !this.#closed && this.#io.remove(fileobj, EVENT_READ);
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
    const entry = this.#entries[sock.fileno()];
    const op = write ? entry?.writeOp : entry?.readOp;
    return op != null && op === (write ? entry?.writer : entry?.reader) && op.sock === sock
      ? op
      : this.#watchOp(sock, write);
  }

  #watchOp(sock: Socket, write: boolean): SockOp {
    this.#checkClosed();
    const op = this.#io.watchOp(sock, write, () => new SockOp(this, sock, write));
    this.#drained = this.#io.drained;
    return op;
  }

  /**
   * @internal While callbacks run: `holder.releaseHeld()` once they all
   * have, and true; outside a run, false (see held-writes.ts).
   */
  holdWrites(holder: WriteHolder): boolean {
    return this.#held.hold(holder);
  }

  /** @internal Makes `watcher` the socket's reader (or writer): a TLS socket's operations (tls-ops). */
  watchFd(sock: Socket, write: boolean, watcher: Watcher): IoSlots {
    this.#checkClosed();
    return this.#io.add(sock, write ? EVENT_WRITE : EVENT_READ, watcher);
  }

  /** @internal Stops a socket operation's watching, unless another reader or writer replaced it since. */
  unwatch(slots: IoSlots, write: boolean, watcher: Watcher): void {
    if (!this.#closed) this.#io.release(slots, write, watcher);
  }

  /**
   * asyncio's add_signal_handler: runs `callback(...args)` in the loop's
   * iteration after `signal` arrives (several arrivals before it runs: once).
   * One handler per signal: a new one replaces the old. A handler of
   * Node's own (`process.on`) keeps working beside it. Main thread only.
   *
   * @param signal - a name ('SIGINT') or number
   * @throws {TypeError} ERR_UNKNOWN_SIGNAL for an unknown name; ERR_INVALID_ARG_VALUE for SIGKILL, SIGSTOP
   *   and the faults the runtime handles (SIGSEGV...); ERR_WORKER_UNSUPPORTED_OPERATION in a worker
   * @throws {RangeError} ERR_OUT_OF_RANGE for a number outside [1, 64]
   * @throws {LoopStateError} ERR_LOOP_CLOSED after close()
   */
  addSignalHandler<A extends unknown[]>(signal: SignalLike, callback: (...args: A) => void, ...args: A): Handle {
    this.#checkClosed();
    checkCallback(callback);
    return this.#signals.add(signal, callback as unknown as Callback, args);
  }

  /**
   * Removes the handler of `signal`, restoring the action it replaced
   * (SIG_DFL for SIGINT: Ctrl-C ends the process again).
   *
   * @returns whether there was a handler (false once closed)
   * @throws what addSignalHandler throws for a bad signal
   */
  removeSignalHandler(signal: SignalLike): boolean {
    return this.#signals.remove(signal);
  }

  /** Stops watching `fileobj` for writing. @returns whether there was a writer */
  removeWriter(fileobj: FileLike): boolean {
    return !this.#closed && this.#io.remove(fileobj, EVENT_WRITE);
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
      future = runFuture(main, this);
    } catch (e) {
      this.#leave();
      return Promise.reject(e);
    }
    return startRun(future, {
      view: this.#driverView(),
      referenced: this.#referenced,
      stop: () => this.stop(),
      attach: (driver) => {
        this.#driver = driver;
      },
      leave: () => this.#leave(),
    });
  }

  // What the cooperative driver sees of the loop.
  #driverView(): DriverLoop {
    const io = this.#io;
    return {
      runOnce: () => this.#runOnce(false),
      stopping: () => this.#stopping,
      time: () => this.time(),
      setInTick: (inTick) => {
        this.#inTick = inTick;
      },
      hasReady: () => this.#ready.length > 0 || this.#backend.hasUnsubmitted(),
      applyChanges: () => io.apply(),
      nextTimerDelay: () => {
        this.#timers.purge();
        const first = this.#timers.peek();
        return first === undefined ? null : Math.max(0, first.when - this.time());
      },
      watchedPairs: () => io.watchedPairs(),
      watchedCount: () => this.#backend.watchedCount(),
      epollFd: () => this.#backend.idleFd(),
      beforeIdle: () => this.#signals.verify(),
      idled: (since) => this.#meter.idled(since, this.time()),
    };
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
    this.#exceptions.reportUnretrieved(this);
    this.#resolver.close();
    this.#signals.close();
    this.#closed = true;
    this.#ready.clear();
    this.#timers.clear();
    this.#backend.close();
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
  sockRecv(sock: Socket | TlsSocket, nbytes: number): Future<Buffer> {
    const future =
      sock instanceof TlsSocket
        ? tlsRecv(this, sock, nbytes)
        : this.#proactor !== null
          ? this.#proactor.recv(sock, nbytes)
          : sockRecv(this, sock, nbytes);
    return this.#meter.trace === null ? future : this.#meter.op('recv', sock, future);
  }

  /**
   * Receives into `buffer` (bytes `offset`..`offset + length`); resolves with the count, 0 at EOF.
   *
   * @throws {TypeError} / {RangeError} for a buffer that is no ArrayBufferView, or a range outside it
   */
  sockRecvInto(sock: Socket | TlsSocket, buffer: ArrayBufferView, offset?: number, length?: number): Future<number> {
    const future =
      sock instanceof TlsSocket
        ? tlsRecvInto(this, sock, buffer, offset, length)
        : this.#proactor !== null
          ? this.#proactor.recvInto(sock, buffer, offset, length)
          : sockRecvInto(this, sock, buffer, offset, length);
    return this.#meter.trace === null ? future : this.#meter.op('recvInto', sock, future);
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
  sockSendAll(sock: Socket | TlsSocket, data: SendData, offset?: number, length?: number): Future<void> {
    const future =
      sock instanceof TlsSocket
        ? tlsSendAll(this, sock, data, offset, length)
        : this.#proactor !== null
          ? this.#proactor.sendAll(sock, data, offset, length)
          : sockSendAll(this, sock, data, offset, length);
    if (this.#meter.trace === null) return future;
    const size = length ?? (typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength - (offset ?? 0));
    return this.#meter.op('sendAll', sock, future, size);
  }

  /** Accepts a connection: a non-blocking Socket and the peer's address. */
  sockAccept(sock: Socket): Future<[Socket, SocketAddress]> {
    const future = this.#proactor !== null ? this.#proactor.accept(sock) : sockAccept(this, sock);
    return this.#meter.trace === null ? future : this.#meter.op('accept', sock, future);
  }

  /**
   * asyncio's sock_recvfrom: receives one datagram of at most `nbytes` (the
   * rest of a longer one is discarded) as `[data, senderAddress]`; the
   * address is null for a sender without one (an unbound Unix socket).
   * Waits for readiness on every backend; cancelling stops the waiting.
   *
   * @throws {RangeError} when nbytes is not an integer in [0, 2^31 - 1]
   * @throws {OSError} (through the Future) ECONNREFUSED after an ICMP port
   *   unreachable on a connected UDP socket, EBADF...
   */
  sockRecvfrom(sock: Socket, nbytes: number): Future<[Buffer, SocketAddress | null]> {
    this.#checkClosed();
    const future = sockRecvfrom(this, sock, nbytes);
    return this.#meter.trace === null ? future : this.#meter.op('recvfrom', sock, future);
  }

  /**
   * asyncio's sock_recvfrom_into: receives one datagram into `buffer` (at
   * most `nbytes` bytes; 0: the whole buffer) as `[bytes, senderAddress]`.
   *
   * @throws {TypeError} when buffer is not a Buffer, TypedArray or DataView
   * @throws {RangeError} when nbytes is negative or more than the buffer holds
   */
  sockRecvfromInto(sock: Socket, buffer: ArrayBufferView, nbytes?: number): Future<[number, SocketAddress | null]> {
    this.#checkClosed();
    const future = sockRecvfromInto(this, sock, buffer, nbytes);
    return this.#meter.trace === null ? future : this.#meter.op('recvfromInto', sock, future);
  }

  /**
   * asyncio's sock_sendto: sends `data` as one datagram to the numeric
   * `address` (resolve names with getaddrinfo first); resolves with the
   * bytes sent, waiting for room when the socket's buffer is full. The
   * bytes must not change until the Future is done.
   *
   * @throws {TypeError} for data that is not a string or ArrayBufferView, or
   *   an address that is not one of the socket's family
   * @throws {RangeError} for a port outside [0, 65535]
   * @throws {OSError} (through the Future) EMSGSIZE, ECONNREFUSED, EISCONN...
   */
  sockSendto(sock: Socket, data: SendData, address: SocketAddress): Future<number> {
    this.#checkClosed();
    const future = sockSendto(this, sock, data, address);
    return this.#meter.trace === null ? future : this.#meter.op('sendto', sock, future);
  }

  /**
   * Connects `sock`. A host name is resolved first (getaddrinfo on a worker
   * thread); connection errors (ECONNREFUSED...) fail the Future.
   */
  sockConnect(sock: Socket, address: SocketAddress): Future<void> {
    this.#checkClosed();
    // A host name is resolved, then connected through this method again
    // with each address: that numeric connect is the one traced.
    if (typeof address !== 'string' && isIP(address[0]) === 0) return connectByName(this, sock, address[0], address[1]);
    const future = this.#proactor !== null ? this.#proactor.connect(sock, address) : sockConnect(this, sock, address);
    return this.#meter.trace === null ? future : this.#meter.op('connect', sock, future);
  }

  /**
   * asyncio's start_tls for the sock_* API: TLS over a connected (or
   * accepted) socket. Resolves, once the handshake is done, with the
   * {@link TlsSocket} that sockRecv, sockRecvInto and sockSendAll then take
   * in the socket's place. Verification is on by default (Node's roots, or
   * `ca`; the host against `serverName`). Works on every backend.
   *
   * @throws {TypeError} for bad options
   * @throws {TlsError} (CERT_HAS_EXPIRED, ERR_TLS_CERT_ALTNAME_INVALID, ERR_SSL_*...), {OSError}, or
   *   {TimeoutError} after `handshakeTimeoutMs` -- through the Future
   */
  startTls(sock: Socket, options?: StartTlsOptions): Future<TlsSocket> {
    this.#checkClosed();
    if (this.#proactor?.holdsBytes(sock) === true) {
      const busy = new InvalidStateError('startTls: a receive on this socket is in flight, or its bytes are kept');
      const future = new Future<TlsSocket>(this);
      future.setException(busy);
      return future;
    }
    const future = startTls(this, sock, options);
    return this.#meter.trace === null ? future : this.#meter.op('startTls', sock, future);
  }

  /**
   * asyncio's create_connection: resolves `host`, connects to its addresses
   * in turn until one answers, adds TLS if `options.ssl` says so, and
   * starts a transport with the protocol `protocolFactory()` makes.
   * Resolves once its connectionMade has run. TCP_NODELAY is set.
   *
   * @throws {TypeError} / {RangeError} for bad arguments
   * @throws (through the Future) the connect's OSError (ECONNREFUSED...; an Error with `errors` when every
   *   address failed differently), GetAddrInfoError, TlsError
   */
  createConnection<P extends Protocol | BufferedProtocol>(
    protocolFactory: ProtocolFactory<P>,
    host: string,
    port: number,
    options: CreateConnectionOptions = {},
  ): Future<[Transport, P]> {
    this.#checkClosed();
    return createConnection(this, protocolFactory, host, port, options);
  }

  /** As {@link createConnection}, to a Unix stream socket at `path`. */
  createUnixConnection<P extends Protocol | BufferedProtocol>(
    protocolFactory: ProtocolFactory<P>,
    path: string,
    options: CreateUnixConnectionOptions = {},
  ): Future<[Transport, P]> {
    this.#checkClosed();
    return createUnixConnection(this, protocolFactory, path, options);
  }

  /**
   * asyncio's connect_accepted_socket: a transport over a socket accepted elsewhere (TLS: the server side).
   *
   * @throws {InvalidStateError} (through the Future) on io_uring, while a sockRecv on the socket is
   *   in flight or bytes a cancelled one received are kept for the next sockRecv (the transport
   *   would never see them): as startTls
   */
  connectAcceptedSocket<P extends Protocol | BufferedProtocol>(
    protocolFactory: ProtocolFactory<P>,
    sock: Socket,
    options: AcceptedSocketOptions = {},
  ): Future<[Transport, P]> {
    this.#checkClosed();
    return connectAcceptedSocket(this, protocolFactory, sock, options);
  }

  /** @internal A connection of listening `sock` that a cancelled sockAccept kept (io_uring), if any. */
  takeKeptConnection(sock: Socket): Socket | undefined {
    return this.#proactor?.takeKeptConnection(sock)?.[0];
  }

  /** @internal Whether the completion backend may still take, or keeps, bytes of `sock` (see startTls). */
  holdsBytes(sock: Socket): boolean {
    return this.#proactor?.holdsBytes(sock) === true;
  }

  /**
   * asyncio's create_server: listens on every address of `host` (a name,
   * several, or null for all interfaces, IPv4 and IPv6) at `port` (0: one
   * the kernel picks, per socket), and gives each connection a transport
   * and a protocol from `protocolFactory`.
   *
   * @throws {TypeError} / {RangeError} for bad arguments
   * @throws (through the Future) OSError from bind (EADDRINUSE...), GetAddrInfoError
   */
  createServer(
    protocolFactory: ProtocolFactory<Protocol | BufferedProtocol>,
    host: string | readonly string[] | null | undefined,
    port?: number,
    options: CreateServerOptions = {},
  ): Future<Server> {
    this.#checkClosed();
    return createServer(this, protocolFactory, host, port, options);
  }

  /**
   * As {@link createServer}, on a Unix stream socket at `path` (a stale socket
   * file there is replaced), or, with `path` null, on `options.sock` (a
   * listening AF_UNIX stream socket).
   */
  createUnixServer(
    protocolFactory: ProtocolFactory<Protocol | BufferedProtocol>,
    path: string | null,
    options: CreateUnixServerOptions = {},
  ): Future<Server> {
    this.#checkClosed();
    return createUnixServer(this, protocolFactory, path, options);
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

  /**
   * asyncio's create_datagram_endpoint: a UDP (IPv4, IPv6) or Unix datagram
   * endpoint. Makes the socket the options ask for -- bound to `localAddr`,
   * connected to `remoteAddr` (host names resolved with getaddrinfo; a
   * string is a Unix socket path), SO_REUSEPORT / SO_BROADCAST when asked --
   * or takes `sock`; then calls `protocolFactory()` and resolves with the
   * transport and that protocol once `connectionMade` has run. The
   * transport receives into `datagramReceived`, queues what the socket
   * cannot take yet (flow control through pauseWriting/resumeWriting) and
   * reports send and receive errors to `errorReceived`. Works on every backend.
   *
   * @throws {TypeError} / {RangeError} for bad options: a sock with other
   *   options, no address and no family, a path with an IP family...
   * @throws {GetAddrInfoError} / {OSError} (through the Future) when a name does
   *   not resolve, or bind or connect fails (EADDRINUSE...)
   *
   * @example
   * ```ts
   * const [transport] = await loop.createDatagramEndpoint(
   *   () => ({ datagramReceived: (data, addr) => transport.sendto(data, addr) }),
   *   { localAddr: ['127.0.0.1', 9999] },
   * );
   * ```
   */
  createDatagramEndpoint<P extends DatagramProtocol>(
    protocolFactory: () => P,
    options: DatagramEndpointOptions,
  ): Future<[DatagramTransport, P]> {
    this.#checkClosed();
    return createDatagramEndpoint(this, protocolFactory, options);
  }

  /** Sets (or, with null, resets) the handler of unhandled exceptions. */
  setExceptionHandler(handler: ExceptionHandler | null): void {
    if (handler !== null && typeof handler !== 'function') checkCallback(handler);
    this.#exceptions.handler = handler;
  }

  /** The handler set with setExceptionHandler, or null. */
  getExceptionHandler(): ExceptionHandler | null {
    return this.#exceptions.handler;
  }

  /** Reports an exception to the handler (or logs it when none is set). */
  callExceptionHandler(context: ExceptionContext): void {
    this.#exceptions.report(this, context);
  }

  /** Logs the context: its message and the exception's stack. */
  defaultExceptionHandler(context: ExceptionContext): void {
    this.#exceptions.log(context);
  }

  /** @internal Remembers a Future whose exception nobody retrieved yet (reported at close). */
  trackUnretrieved(future: object): void {
    this.#exceptions.track(future as Future<unknown>);
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
    const timers = this.#timers;
    const ready = this.#ready;
    timers.purge();
    this.#io.apply();
    let timeoutMs: number | null = null;
    if (!block || ready.length > 0 || this.#stopping) {
      timeoutMs = 0;
    } else {
      const first = timers.peek();
      if (first !== undefined) timeoutMs = Math.max(0, first.when - this.time());
    }
    if (timeoutMs !== 0) this.#signals.verify();
    const t0 = this.time();
    const events = this.#selector.forEachReady(timeoutMs, this.#onReady);
    const now = this.time();
    this.#meter.waited(t0, now, events, timeoutMs);
    for (;;) {
      const first = timers.peek();
      if (first === undefined || first.when > now) break;
      timers.pop();
      if (!first.cancelled()) ready.push(first);
    }
    const ntodo = ready.length;
    const timed = this.#meter.timed;
    let end = 0;
    let released = false;
    // Small writes made while the callbacks run leave together after them (held-writes.ts).
    this.#held.begin();
    try {
      if (timed) {
        end = this.#meter.runTimed(ready, ntodo, now);
      } else {
        for (let i = 0; i < ntodo; i++) {
          const item = ready.shift() as Runnable;
          // Two call sites: handles (two shapes) and futures (three) each stay
          // polymorphic in V8, where one site for all five would go megamorphic.
          if (item instanceof Handle) item[RUN]();
          else item[RUN]();
        }
      }
    } finally {
      released = this.#held.end(this.#heldFailed);
    }
    // The release (its sends, a pauseWriting it calls) is the run's time too:
    // timed, the run ended with the last callback only when nothing was held.
    if (!timed || released) end = this.time();
    this.#meter.ran(now, end, ntodo);
    return ntodo;
  }

  #addHandle(fileobj: FileLike, event: number, callback: Callback, args: readonly unknown[]): Handle {
    this.#checkClosed();
    checkCallback(callback);
    const handle = new Handle(callback, args, this);
    this.#io.add(fileobj, event, handle);
    this.#drained = this.#io.drained;
    return handle;
  }
}
