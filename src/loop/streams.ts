/**
 * asyncio's streams, camelCased: a {@link StreamReader} and a
 * {@link StreamWriter} over a transport, bridged by a
 * {@link StreamReaderProtocol}.
 *
 * The protocol feeds the reader what the transport receives, and keeps
 * asyncio's write flow control (FlowControlMixin): while the transport's
 * write buffer is above its high-water mark (pauseWriting), `drain()`
 * waits; resumeWriting or the connection's end wakes it.
 *
 * openConnection / startServer (and their Unix forms) make the pair, or a
 * server handing a pair to a callback per connection, on the running loop.
 *
 * @module
 */

import { constants as osConstants } from 'node:os';
import { isThenable } from '../coro/future.js';
import { Future, getRunningLoop, isCoroutine, type Task } from '../coro/index.js';
import { invalidArgType } from '../sys/args.js';
import { OSError, type SendData } from '../sys/index.js';
import type { CreateConnectionOptions, CreateUnixConnectionOptions } from './connections.js';
import type { EventLoop } from './event-loop.js';
import type { WriteHolder } from './held-writes.js';
import type { Protocol, Transport, TransportExtraInfo } from './protocols.js';
import type { CreateServerOptions, CreateUnixServerOptions, Server } from './server.js';
import { StreamReader } from './stream-reader.js';

/**
 * A server's callback for each new connection. It runs as a Task of its
 * own (started in the loop's next iteration), which goes on with what it
 * returns: a generator coroutine, a promise (an async function's), or a
 * Future; anything else ends the Task. When the callback throws or what it
 * returns fails, the exception goes to the loop's exception handler and
 * the connection is closed (asyncio 3.12); when the Task is cancelled, the
 * connection is closed.
 */
export type ClientConnected = (reader: StreamReader, writer: StreamWriter) => unknown;

// A Future already failed with `exception`.
function failed<T>(loop: EventLoop, exception: unknown): Future<T> {
  const future = loop.createFuture<T>();
  future.setException(exception);
  return future;
}

// Settles `target` as `source` was, once it is (unless `target` is done by then).
function pipe<T>(source: Future<T>, target: Future<T>): void {
  source.addDoneCallback((done) => {
    if (target.done()) {
      if (!done.cancelled()) done.exception();
      return;
    }
    if (done.cancelled()) target.cancel();
    else if (done.exception() !== null) target.setException(done.exception());
    else target.setResult(done.result());
  });
}

/**
 * The Protocol between a stream transport and a {@link StreamReader}
 * (asyncio's StreamReaderProtocol). For a server, it also makes the
 * {@link StreamWriter} and calls the client-connected callback.
 *
 * @example
 * ```ts
 * const reader = new StreamReader({ loop });
 * const [transport, protocol] = yield* loop.createConnection(() => new StreamReaderProtocol(reader), host, port);
 * const writer = new StreamWriter(transport, protocol, reader, loop);
 * ```
 */
export class StreamReaderProtocol implements Protocol {
  readonly #loop: EventLoop;
  #reader: StreamReader | null;
  #clientConnected: ClientConnected | null;
  #transport: Transport | null = null;
  #task: Task<unknown> | null = null;
  #overTls = false;
  readonly #closed: Future<void>;
  // Write flow control (asyncio's FlowControlMixin).
  #paused = false;
  #drainWaiters: Future<void>[] = [];
  #connectionLost = false;

  /**
   * @param reader - where the received bytes go (null: nowhere)
   * @param clientConnected - for a server: run as a Task (from connectionMade) with the reader and a new writer
   * @param loop - the loop of the Futures it makes (default: the running loop)
   * @throws {LoopStateError} ERR_NO_RUNNING_LOOP without a loop and none running
   */
  constructor(
    reader: StreamReader | null,
    clientConnected: ClientConnected | null = null,
    loop: EventLoop = getRunningLoop(),
  ) {
    this.#loop = loop;
    this.#reader = reader;
    this.#clientConnected = clientConnected;
    this.#closed = loop.createFuture<void>();
  }

  /** The transport, once connected (null before connectionMade and after connectionLost). */
  get transport(): Transport | null {
    return this.#transport;
  }

  /** The Task running the client-connected callback (and what it returns), until the connection is lost. */
  get task(): Task<unknown> | null {
    return this.#task;
  }

  /**
   * Hands the transport to the reader (for its flow control) and, for a
   * server, calls the client-connected callback.
   */
  connectionMade(transport: Transport): void {
    this.#transport = transport;
    const reader = this.#reader;
    reader?.setTransport(transport);
    this.#overTls = transport.getExtraInfo('sslObject') != null;
    const clientConnected = this.#clientConnected;
    if (clientConnected === null || reader === null) return;
    this.#clientConnected = null;
    const writer = new StreamWriter(transport, this, reader, this.#loop);
    const loop = this.#loop;
    // Called as a Task's own code, not here (asyncio calls it here): an
    // async callback's awaits then belong to that Task. Called from this
    // loop callback, they would belong to whichever Task's async context
    // the loop happens to run in (the cooperative driver's), and
    // cancelling that Task would cancel this callback's read instead.
    const task = loop.createTask(() => {
      const result = clientConnected(reader, writer);
      return isCoroutine(result) || isThenable(result) || result instanceof Future ? result : loop.resolvedVoid();
    });
    this.#task = task;
    task.addDoneCallback((done) => {
      if (done.cancelled()) {
        transport.close();
        return;
      }
      const exception = done.exception();
      if (exception !== null) this.#unhandled(exception, transport, done);
    });
  }

  /** Feeds the reader. */
  dataReceived(data: Buffer): void {
    this.#reader?.feedOwned(data);
  }

  /**
   * Feeds the reader EOF. Keeps the transport open for writing (half-close)
   * except over TLS, which cannot half-close (as asyncio).
   */
  eofReceived(): boolean {
    this.#reader?.feedEof();
    return !this.#overTls;
  }

  /**
   * Ends the reader (EOF, or `exc` as its exception), settles what
   * waitClosed returns, and wakes drain() waiters (failing them with `exc`).
   */
  connectionLost(exc: Error | null): void {
    const reader = this.#reader;
    if (reader !== null) {
      if (exc === null) reader.feedEof();
      else reader.setException(exc);
    }
    if (!this.#closed.done()) {
      if (exc === null) {
        this.#closed.setResult(undefined);
      } else {
        this.#closed.setException(exc);
        // Nobody need ask for it (asyncio's __del__ retrieves it): the
        // reader and drain() report the error to who reads or writes.
        this.#closed.markRetrieved();
      }
    }
    this.#connectionLost = true;
    if (this.#paused) {
      const waiters = this.#drainWaiters;
      this.#drainWaiters = [];
      for (const waiter of waiters) {
        if (waiter.done()) continue;
        if (exc === null) waiter.setResult(undefined);
        else waiter.setException(exc);
      }
    }
    this.#reader = null;
    this.#task = null;
    this.#transport = null;
  }

  /** The transport's write buffer passed its high-water mark: drain() waits from now. */
  pauseWriting(): void {
    this.#paused = true;
  }

  /** The write buffer drained to its low-water mark: wakes drain() waiters. */
  resumeWriting(): void {
    this.#paused = false;
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const waiter of waiters) if (!waiter.done()) waiter.setResult(undefined);
  }

  /**
   * @internal drain()'s wait (asyncio's _drain_helper): done at once unless
   * writing is paused.
   */
  drainHelper(): Future<void> {
    const loop = this.#loop;
    if (this.#connectionLost) return failed(loop, connectionLostError());
    if (!this.#paused) return loop.resolvedVoid();
    // Waiters cancelled while writing stays paused would pile up: drop them.
    if (this.#drainWaiters.length >= 16) this.#drainWaiters = this.#drainWaiters.filter((w) => !w.done());
    const waiter = loop.createFuture<void>();
    this.#drainWaiters.push(waiter);
    return waiter;
  }

  /** @internal What waitClosed() follows: settled by connectionLost. */
  closeWaiter(): Future<void> {
    return this.#closed;
  }

  // A failed client-connected callback: asyncio 3.12 reports it and closes.
  #unhandled(exception: unknown, transport: Transport, future: Future<unknown>): void {
    this.#loop.callExceptionHandler({ message: 'Unhandled exception in clientConnected', exception, future });
    transport.close();
  }
}

// asyncio's ConnectionResetError('Connection lost'), the Node way.
function connectionLostError(): OSError {
  return new OSError(osConstants.errno.ECONNRESET, 'drain', '(connection lost)');
}

/**
 * The write side of a stream (asyncio's StreamWriter): writes go straight
 * to the transport, which buffers what the socket does not take at once;
 * `drain()` is where a writer waits for that buffer to go down.
 *
 * @example
 * ```ts
 * function* send(writer: StreamWriter, lines: string[]): Coroutine<void> {
 *   for (const line of lines) {
 *     writer.write(`${line}\n`);
 *     yield* writer.drain(); // waits only while the transport's buffer is above its high-water mark
 *   }
 *   writer.close();
 *   yield* writer.waitClosed();
 * }
 * ```
 */
export class StreamWriter {
  readonly #transport: Transport;
  readonly #protocol: StreamReaderProtocol;
  readonly #reader: StreamReader | null;
  readonly #loop: EventLoop;

  /**
   * openConnection and startServer make writers; make one yourself only
   * over a transport whose protocol is `protocol`.
   *
   * @param reader - the read side, whose exception drain() reports (null: none)
   */
  constructor(transport: Transport, protocol: StreamReaderProtocol, reader: StreamReader | null, loop: EventLoop) {
    this.#transport = transport;
    this.#protocol = protocol;
    this.#reader = reader;
    this.#loop = loop;
  }

  /** The transport written to. */
  get transport(): Transport {
    return this.#transport;
  }

  /**
   * Writes `data` (see {@link Transport.write}): never blocks; follow with
   * `drain()` to respect flow control.
   *
   * @throws {TypeError} for data that is not a string or ArrayBufferView
   * @throws {InvalidStateError} after writeEof()
   */
  write(data: SendData): void {
    this.#transport.write(data);
  }

  /** Writes several chunks, gathered into one sendmsg(2) when the transport's buffer is empty. @throws as {@link write} */
  writelines(chunks: readonly SendData[]): void {
    this.#transport.writev(chunks);
  }

  /** Whether writeEof() is supported (false for TLS). */
  canWriteEof(): boolean {
    return this.#transport.canWriteEof();
  }

  /** Shuts the write side down (SHUT_WR) once the buffered data is sent; reading goes on. */
  writeEof(): void {
    this.#transport.writeEof();
  }

  /**
   * Waits until the transport's write buffer is below its high-water mark:
   * done at once when writing is not paused.
   *
   * @throws (through the Future) the reader's exception (the connection's error) if it has one;
   *   {OSError} ECONNRESET once the connection is lost
   */
  drain(): Future<void> {
    // Writes the transport holds till the run ends (held-writes.ts) go now:
    // as asyncio's, drain answers for writes handed to the kernel or
    // buffered, and a send that failed shows as the connection's loss.
    (this.#transport as Partial<WriteHolder>).releaseHeld?.();
    const exception = this.#reader?.exception() ?? null;
    if (exception !== null) return failed(this.#loop, exception);
    if (!this.#transport.isClosing()) return this.#protocol.drainHelper();
    // Closing: connectionLost comes in a later iteration. As asyncio (its
    // sleep(0)), give it one, so that a lost connection is reported.
    const future = this.#loop.createFuture<void>();
    this.#loop.callSoon(() => {
      if (!future.done()) pipe(this.#protocol.drainHelper(), future);
    });
    return future;
  }

  /** Closes the transport once its buffered data is sent. Idempotent. */
  close(): void {
    this.#transport.close();
  }

  /** True once closing (close(), abort(), or the connection is lost). */
  isClosing(): boolean {
    return this.#transport.isClosing();
  }

  /**
   * Resolves once the connection is closed (the protocol's connectionLost),
   * or fails with the error that ended it. Cancelling it cancels only this wait.
   */
  waitClosed(): Future<void> {
    const future = this.#loop.createFuture<void>();
    pipe(this.#protocol.closeWaiter(), future);
    return future;
  }

  /** The transport's extra information ('peername', 'sockname', 'socket', TLS details), or `defaultValue`. */
  getExtraInfo<K extends keyof TransportExtraInfo>(name: K): TransportExtraInfo[K] | undefined;
  getExtraInfo<T = unknown>(name: string, defaultValue?: T): unknown;
  getExtraInfo(name: string, defaultValue?: unknown): unknown {
    return this.#transport.getExtraInfo(name, defaultValue);
  }

  /** "StreamWriter <transport=... reader=...>": for messages. */
  toString(): string {
    return `StreamWriter <transport=${String(this.#transport)}${this.#reader === null ? '' : ` reader=${String(this.#reader)}`}>`;
  }
}

/** What the stream functions add to the loop's options. */
export interface StreamOptions {
  /** The readers' limit in bytes (see {@link StreamReaderOptions}). Default 64 KiB. */
  limit?: number;
  /** The loop (default: the running loop). */
  loop?: EventLoop;
}

/** Options of {@link openConnection}: the reader's, and createConnection's. */
export type OpenConnectionOptions = StreamOptions & CreateConnectionOptions;
/** Options of {@link openUnixConnection}. */
export type OpenUnixConnectionOptions = StreamOptions & CreateUnixConnectionOptions;
/** Options of {@link startServer}: the readers', and createServer's. */
export type StartServerOptions = StreamOptions & CreateServerOptions;
/** Options of {@link startUnixServer}. */
export type StartUnixServerOptions = StreamOptions & CreateUnixServerOptions;

// The loop, and a reader maker that checks the limit now rather than per connection.
function streamSetup(options: StreamOptions): { loop: EventLoop; makeReader: () => StreamReader } {
  if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'an object', options);
  const loop = options.loop ?? getRunningLoop();
  const readerOptions = options.limit === undefined ? { loop } : { loop, limit: options.limit };
  new StreamReader(readerOptions);
  return { loop, makeReader: () => new StreamReader(readerOptions) };
}

// The loop's own options: all but ours.
function loopOptions<O extends StreamOptions>(options: O): Omit<O, 'limit' | 'loop'> {
  const { limit: _limit, loop: _loop, ...rest } = options;
  return rest;
}

// The pair, once `connecting` is: cancelling it cancels the connect (or
// closes the connection, if that was made already).
function pairOnceConnected(
  loop: EventLoop,
  connecting: Future<[Transport, StreamReaderProtocol]>,
  reader: StreamReader,
): Future<[StreamReader, StreamWriter]> {
  const future = loop.createFuture<[StreamReader, StreamWriter]>();
  connecting.addDoneCallback((done) => {
    if (done.cancelled()) {
      future.cancel();
      return;
    }
    const exception = done.exception();
    if (future.done()) {
      if (exception === null) done.result()[0].close();
      return;
    }
    if (exception !== null) {
      future.setException(exception);
      return;
    }
    const [transport, protocol] = done.result();
    future.setResult([reader, new StreamWriter(transport, protocol, reader, loop)]);
  });
  future.addDoneCallback((done) => {
    if (done.cancelled()) connecting.cancel();
  });
  return future;
}

/**
 * asyncio's open_connection: connects to `host`:`port` (as
 * {@link EventLoop.createConnection}, TLS included) and resolves with a
 * reader and a writer.
 *
 * @throws {TypeError} / {RangeError} for bad arguments (at once)
 * @throws {LoopStateError} ERR_NO_RUNNING_LOOP without a `loop` option outside a running loop
 * @throws (through the Future) what createConnection's Future fails with (ECONNREFUSED...)
 *
 * @example
 * ```ts
 * function* hello(): Coroutine<string> {
 *   const [reader, writer] = yield* openConnection('127.0.0.1', 8888);
 *   writer.write('hello\n');
 *   const reply = yield* reader.readLine();
 *   writer.close();
 *   yield* writer.waitClosed();
 *   return reply.toString();
 * }
 * ```
 */
export function openConnection(
  host: string,
  port: number,
  options: OpenConnectionOptions = {},
): Future<[StreamReader, StreamWriter]> {
  const { loop, makeReader } = streamSetup(options);
  const reader = makeReader();
  const protocol = new StreamReaderProtocol(reader, null, loop);
  return pairOnceConnected(
    loop,
    loop.createConnection(() => protocol, host, port, loopOptions(options)),
    reader,
  );
}

/** As {@link openConnection}, to a Unix stream socket at `path`. */
export function openUnixConnection(
  path: string,
  options: OpenUnixConnectionOptions = {},
): Future<[StreamReader, StreamWriter]> {
  const { loop, makeReader } = streamSetup(options);
  const reader = makeReader();
  const protocol = new StreamReaderProtocol(reader, null, loop);
  return pairOnceConnected(
    loop,
    loop.createUnixConnection(() => protocol, path, loopOptions(options)),
    reader,
  );
}

function checkClientConnected(clientConnected: unknown): void {
  if (typeof clientConnected !== 'function') throw invalidArgType('clientConnected', 'a function', clientConnected);
}

/**
 * asyncio's start_server: a {@link Server} (as {@link EventLoop.createServer})
 * that calls `clientConnected(reader, writer)` for each connection, as a
 * Task of its own (see {@link ClientConnected}); when that fails, the
 * loop's exception handler hears of it and the connection is closed.
 *
 * @throws {TypeError} / {RangeError} for bad arguments (at once)
 * @throws (through the Future) what createServer's Future fails with (EADDRINUSE...)
 *
 * @example
 * ```ts
 * function* echo(reader: StreamReader, writer: StreamWriter): Coroutine<void> {
 *   for (;;) {
 *     const line = yield* reader.readLine();
 *     if (line.length === 0) break;
 *     writer.write(line);
 *     yield* writer.drain();
 *   }
 *   writer.close();
 * }
 * const server = yield* startServer(echo, '127.0.0.1', 8888);
 * yield* server.serveForever();
 * ```
 */
export function startServer(
  clientConnected: ClientConnected,
  host: string | readonly string[] | null | undefined,
  port?: number,
  options: StartServerOptions = {},
): Future<Server> {
  checkClientConnected(clientConnected);
  const { loop, makeReader } = streamSetup(options);
  return loop.createServer(
    () => new StreamReaderProtocol(makeReader(), clientConnected, loop),
    host,
    port,
    loopOptions(options),
  );
}

/** As {@link startServer}, on a Unix stream socket at `path`. */
export function startUnixServer(
  clientConnected: ClientConnected,
  path: string,
  options: StartUnixServerOptions = {},
): Future<Server> {
  checkClientConnected(clientConnected);
  const { loop, makeReader } = streamSetup(options);
  return loop.createUnixServer(
    () => new StreamReaderProtocol(makeReader(), clientConnected, loop),
    path,
    loopOptions(options),
  );
}
