/**
 * StreamReader: asyncio's, camelCased, sizes in bytes. A protocol (or a
 * test) feeds it bytes with feedData / feedEof / setException; a coroutine
 * reads them with read, readExactly, readUntil and readLine, each returning
 * the loop's Future (`yield* reader.readLine()` in a generator coroutine,
 * `await reader.readLine()` in an async function).
 *
 * One read waits at a time, as in asyncio. A read waiting for data is
 * re-tried each time bytes, EOF or an exception arrive, and takes bytes out
 * of the buffer only in the attempt that completes it: cancelling its
 * Future loses nothing.
 *
 * Flow control follows asyncio's: while the buffer holds more than twice
 * the limit and no read waits for more, the transport is paused
 * (pauseReading); it resumes once reads bring the buffer down to the limit,
 * or when a read has to wait for more bytes than the buffer holds.
 *
 * @module
 */
import { Future, getRunningLoop, InvalidStateError } from '../coro/index.js';
import type { LoopLike } from '../coro/types.js';
import { invalidArgType, invalidArgValue, outOfRange } from '../sys/args.js';
import type { ReadTransport } from './protocols.js';

/** The default limit of a StreamReader, in bytes (asyncio's _DEFAULT_LIMIT). */
export const DEFAULT_STREAM_LIMIT = 65536;

/**
 * EOF came before the read was complete (readExactly, readUntil): `partial`
 * holds the bytes read (taken out of the buffer), `expected` the count
 * asked for (null for readUntil).
 */
export class IncompleteReadError extends Error {
  readonly code = 'ERR_INCOMPLETE_READ';
  /** The bytes that were read before EOF. */
  readonly partial: Buffer;
  /** How many bytes were asked for; null when reading up to a separator. */
  readonly expected: number | null;

  constructor(partial: Buffer, expected: number | null) {
    super(`${partial.length} bytes read on a total of ${expected === null ? 'undefined' : expected} expected bytes`);
    this.partial = partial;
    this.expected = expected;
  }

  override get name(): string {
    return 'IncompleteReadError';
  }
}

/**
 * readUntil found no separator within the reader's limit (or found it
 * beyond). The bytes stay in the buffer; `consumed` says how many bytes
 * to read (read(consumed)) to get past them.
 */
export class LimitOverrunError extends Error {
  readonly code = 'ERR_LIMIT_OVERRUN';
  /** How many bytes of the buffer the overrun covers. */
  readonly consumed: number;

  constructor(message: string, consumed: number) {
    super(message);
    this.consumed = consumed;
  }

  override get name(): string {
    return 'LimitOverrunError';
  }
}

/**
 * readLine met a line longer than the reader's limit (asyncio raises
 * ValueError). Unlike readUntil it drops the bytes: up to and including
 * the newline if it was found, else the whole buffer. `cause` is the
 * {@link LimitOverrunError}.
 */
export class LineTooLongError extends RangeError {
  readonly code = 'ERR_LINE_TOO_LONG';

  override get name(): string {
    return 'LineTooLongError';
  }
}

/**
 * A read started while another one is still waiting for data (asyncio's
 * RuntimeError "... already waiting for incoming data").
 */
export class ConcurrentReadError extends Error {
  readonly code = 'ERR_CONCURRENT_READ';

  override get name(): string {
    return 'ConcurrentReadError';
  }
}

/** What the reader needs of its transport: flow control of the read side. */
export type ReadingControl = Pick<ReadTransport, 'pauseReading' | 'resumeReading'>;

/** StreamReader options. */
export interface StreamReaderOptions {
  /**
   * Bytes: the longest line or chunk readUntil / readLine accept, and the
   * flow-control mark (pause above twice it). Default 64 KiB.
   */
  limit?: number;
  /** The loop of the read Futures (default: the running loop, when the first read starts). */
  loop?: LoopLike;
}

/** What a separator may be: a string (UTF-8) or bytes; readUntil also takes a list of them. */
export type StreamSeparator = string | Uint8Array;

// A waiting read: re-tried on each arrival; true once its Future is settled.
type Attempt = () => boolean;

const EMPTY = Buffer.alloc(0);
// The smallest buffer grown, and the size from which a read that empties
// the buffer hands the buffer's own memory out instead of a copy.
const MIN_CAPACITY = 4096;
const HANDOFF = 16384;
// A buffer that grew past this (a long readExactly, read() until EOF) is
// let go once emptied, rather than kept for the life of the connection.
const KEEP_AT_MOST = 1 << 20;

/**
 * A buffer of incoming bytes with asyncio's read methods.
 *
 * @example
 * ```ts
 * function* greet(reader: StreamReader, writer: StreamWriter): Coroutine<void> {
 *   const name = (yield* reader.readLine()).toString().trim();
 *   writer.write(`hello ${name}\n`);
 *   yield* writer.drain();
 * }
 * ```
 */
export class StreamReader {
  readonly #limit: number;
  #loop: LoopLike | null;
  // The bytes: buf[start, end).
  #buf: Buffer = EMPTY;
  #start = 0;
  #end = 0;
  #eof = false;
  #exception: unknown = null;
  #transport: ReadingControl | null = null;
  #paused = false;
  #waiter: Future<unknown> | null = null;
  #attempt: Attempt | null = null;
  // The n of a read(n) waiting on an empty buffer (0: none): feedOwned hands it the next bytes.
  #readN = 0;

  /**
   * @throws {TypeError} ERR_INVALID_ARG_TYPE when limit is not a number
   * @throws {RangeError} ERR_OUT_OF_RANGE when limit is not a positive integer
   */
  constructor(options: StreamReaderOptions = {}) {
    const limit = options.limit ?? DEFAULT_STREAM_LIMIT;
    if (typeof limit !== 'number') throw invalidArgType('limit', 'of type number', limit);
    if (!Number.isSafeInteger(limit) || limit <= 0) throw outOfRange('limit', 'a positive integer', limit);
    this.#limit = limit;
    this.#loop = options.loop ?? null;
  }

  /** The limit in bytes. */
  get limit(): number {
    return this.#limit;
  }

  /** Bytes in the buffer now. */
  get bufferSize(): number {
    return this.#end - this.#start;
  }

  /** True while the reader keeps its transport paused (flow control). */
  get paused(): boolean {
    return this.#paused;
  }

  /**
   * The transport whose reading this reader pauses and resumes (the
   * protocol sets it in connectionMade).
   *
   * @throws {InvalidStateError} when a transport is already set
   */
  setTransport(transport: ReadingControl): void {
    if (this.#transport !== null) throw new InvalidStateError('the StreamReader already has a transport');
    this.#transport = transport;
  }

  /** The exception set with setException, or null. */
  exception(): unknown {
    return this.#exception;
  }

  /**
   * Makes the waiting read (and every later one) fail with `exception`.
   * Bytes already in the buffer stay there.
   */
  setException(exception: unknown): void {
    this.#exception = exception;
    this.#wake();
  }

  /**
   * Adds bytes to the buffer (copied) and wakes the waiting read; pauses the
   * transport when the buffer passes twice the limit and no read waits.
   *
   * @throws {TypeError} ERR_INVALID_ARG_TYPE for data that is not bytes
   * @throws {InvalidStateError} after feedEof()
   */
  feedData(data: Uint8Array): void {
    if (!(data instanceof Uint8Array)) throw invalidArgType('data', 'an instance of Buffer or Uint8Array', data);
    if (this.#eof) throw new InvalidStateError('feedData after feedEof');
    if (data.byteLength === 0) return;
    this.#append(data);
    this.#wake();
    const transport = this.#transport;
    if (transport !== null && !this.#paused && this.#waiter === null && this.#end - this.#start > 2 * this.#limit) {
      // A transport that is closing ignores this (and never resumes): the
      // flag only says what was asked.
      this.#paused = true;
      transport.pauseReading();
    }
  }

  /** No more bytes will come: wakes the waiting read. */
  feedEof(): void {
    this.#eof = true;
    this.#wake();
  }

  /** True once EOF was fed and the buffer is empty. */
  atEof(): boolean {
    return this.#eof && this.#end === this.#start;
  }

  /**
   * Reads up to `n` bytes: what the buffer holds (waiting for at least one
   * byte if it is empty), at most n. With n < 0 (the default), reads until
   * EOF and returns everything. An empty Buffer means EOF (or n = 0).
   *
   * @param n - bytes; negative for all until EOF
   * @throws {RangeError} ERR_OUT_OF_RANGE when n is not an integer
   * @throws the exception set with setException, {ConcurrentReadError} -- through the Future
   */
  read(n = -1): Future<Buffer> {
    checkCount(n, 'n', Number.MIN_SAFE_INTEGER);
    if (n < 0) {
      // Until EOF, the bytes wait in the buffer (not paused: the read waits
      // for them), so a cancelled read(-1) loses none either.
      return this.#begin(
        'read',
        () => !this.#eof,
        () => this.#take(this.bufferSize),
      );
    }
    const future = this.#begin(
      'read',
      () => n > 0 && !this.#eof && this.#end === this.#start,
      () => this.#take(Math.min(n, this.bufferSize)),
    );
    // Waiting for any bytes at all: the next arrival may be handed over whole (feedOwned).
    if (this.#waiter === future) this.#readN = n;
    return future;
  }

  /**
   * @internal feedData for bytes the reader may keep as they are (a
   * transport's dataReceived Buffer is its protocol's): a read(n) waiting
   * on an empty buffer gets them with no copy in or out.
   */
  feedOwned(data: Buffer): void {
    const n = this.#readN;
    if (n > 0 && this.#end === this.#start && this.#exception === null && !this.#eof && data.byteLength > 0) {
      const waiter = this.#waiter as Future<Buffer>;
      this.#waiter = null;
      this.#attempt = null;
      this.#readN = 0;
      if (data.byteLength <= n) {
        waiter.setResult(data);
        return;
      }
      waiter.setResult(data.subarray(0, n));
      this.feedData(data.subarray(n));
      return;
    }
    this.feedData(data);
  }

  /**
   * Reads exactly `n` bytes.
   *
   * @param n - bytes, at least 0
   * @throws {RangeError} ERR_OUT_OF_RANGE when n is negative or not an integer
   * @throws {IncompleteReadError} (through the Future) when EOF comes first: the bytes read are its `partial`
   */
  readExactly(n: number): Future<Buffer> {
    checkCount(n, 'n', 0);
    return this.#begin(
      'readExactly',
      () => n > this.bufferSize && !this.#eof,
      () => {
        if (n <= this.bufferSize) return this.#take(n);
        throw new IncompleteReadError(this.#take(this.bufferSize), n);
      },
    );
  }

  /**
   * Reads up to and including `separator` (or the first of several to
   * end: the shortest result wins).
   *
   * @param separator - a string (UTF-8), bytes, or a list of them; not empty
   * @throws {TypeError} ERR_INVALID_ARG_VALUE for an empty separator or list
   * @throws {LimitOverrunError} (through the Future) when the buffer passes the limit without a
   *   separator, or the separator starts beyond it; the bytes stay in the buffer
   * @throws {IncompleteReadError} (through the Future) at EOF without a separator: `partial` has the rest
   */
  readUntil(separator: StreamSeparator | readonly StreamSeparator[] = '\n'): Future<Buffer> {
    const search = new SeparatorSearch(separatorList(separator), this.#limit);
    let found: number | LimitOverrunError = WAIT;
    return this.#begin(
      'readUntil',
      () => {
        found = search.find(this.#buf, this.#start, this.#end);
        return found === WAIT && !this.#eof;
      },
      () => {
        if (found instanceof LimitOverrunError) throw found;
        if (found === WAIT) throw new IncompleteReadError(this.#take(this.bufferSize), null);
        return this.#take(found);
      },
    );
  }

  /**
   * Reads one line, up to and including '\n'. At EOF returns what is left
   * (without a newline; empty once all is read).
   *
   * @throws {LineTooLongError} (through the Future) for a line longer than the limit: its bytes are dropped
   */
  readLine(): Future<Buffer> {
    const search = new SeparatorSearch(NEWLINE, this.#limit);
    let found: number | LimitOverrunError = WAIT;
    return this.#begin(
      'readLine',
      () => {
        found = search.find(this.#buf, this.#start, this.#end);
        return found === WAIT && !this.#eof;
      },
      () => {
        if (found === WAIT) return this.#take(this.bufferSize);
        if (!(found instanceof LimitOverrunError)) return this.#take(found);
        // As asyncio: drop the line through its newline if the buffer has
        // it there, else everything.
        const at = this.#start + found.consumed;
        this.#discard(at < this.#end && this.#buf[at] === 0x0a ? found.consumed + 1 : this.bufferSize);
        throw new LineTooLongError(found.message, { cause: found });
      },
    );
  }

  /**
   * The lines until EOF (`for await (const line of reader)`), each with its '\n'.
   *
   * @throws what {@link readLine} throws
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer, void, undefined> {
    for (;;) {
      const line = await this.readLine();
      if (line.length === 0) return;
      yield line;
    }
  }

  /** "StreamReader <1024 bytes eof limit=65536 paused>": for messages. */
  toString(): string {
    const info = [`${this.bufferSize} bytes`];
    if (this.#eof) info.push('eof');
    if (this.#limit !== DEFAULT_STREAM_LIMIT) info.push(`limit=${this.#limit}`);
    if (this.#waiter !== null) info.push('waiting');
    if (this.#exception !== null) info.push(`exception=${String(this.#exception)}`);
    if (this.#paused) info.push('paused');
    return `StreamReader <${info.join(' ')}>`;
  }

  // Starts a read: `mustWait()` says whether it has to wait for more bytes
  // (asked only while no exception is set); `finish()` completes it from the
  // buffer, or throws what fails it. The Future is settled at once when the
  // read need not wait.
  #begin<T>(name: string, mustWait: () => boolean, finish: () => T): Future<T> {
    if (this.#loop === null) this.#loop = getRunningLoop();
    const future = new Future<T>(this.#loop);
    if (this.#waiter !== null) {
      future.setException(
        new ConcurrentReadError(`${name}() called while another read is already waiting for incoming data`),
      );
      return future;
    }
    const attempt = (): boolean => {
      if (this.#exception !== null) {
        future.setException(this.#exception);
        return true;
      }
      try {
        if (mustWait()) return false;
        future.setResult(finish());
      } catch (e) {
        future.setException(e);
      }
      return true;
    };
    if (attempt()) return future;
    this.#waiter = future as Future<unknown>;
    this.#attempt = attempt;
    // Cancelled while waiting: nothing was taken; the next read may start.
    future.setCancelHook(this);
    if (this.#paused) {
      // The read needs bytes the paused transport holds back (asyncio's _wait_for_data).
      this.#paused = false;
      this.#transport?.resumeReading();
    }
    return future;
  }

  /** @internal The waiting read's Future was cancelled. */
  futureCancelled(future: Future<unknown>): void {
    if (this.#waiter !== future) return;
    this.#waiter = null;
    this.#attempt = null;
    this.#readN = 0;
  }

  // Re-tries the waiting read after an arrival. (Settling its Future runs
  // no code of the reader's user: done callbacks run in a later iteration.)
  #wake(): void {
    const attempt = this.#attempt;
    if (attempt === null || !attempt()) return;
    this.#waiter = null;
    this.#attempt = null;
    this.#readN = 0;
  }

  #append(data: Uint8Array): void {
    const n = data.byteLength;
    if (this.#end + n > this.#buf.length) this.#makeRoom(n);
    this.#buf.set(data, this.#end);
    this.#end += n;
  }

  // Room for n more bytes at the end: slide the bytes to the front when
  // they fill at most half the buffer afterwards (each byte then moves at
  // most once per doubling), else a buffer twice as large.
  #makeRoom(n: number): void {
    const size = this.#end - this.#start;
    const capacity = this.#buf.length;
    if (2 * (size + n) <= capacity) {
      this.#buf.copy(this.#buf, 0, this.#start, this.#end);
    } else {
      const grown = Buffer.allocUnsafe(Math.max(size + n, 2 * capacity, MIN_CAPACITY));
      this.#buf.copy(grown, 0, this.#start, this.#end);
      this.#buf = grown;
    }
    this.#start = 0;
    this.#end = size;
  }

  // The first n bytes, out of the buffer; resumes a paused transport once
  // the buffer is down to the limit (asyncio's _maybe_resume_transport).
  #take(n: number): Buffer {
    let out: Buffer;
    if (n === 0) {
      out = EMPTY;
    } else if (n === this.#end - this.#start && n >= HANDOFF) {
      // All of it, and large: hand the memory out rather than copy it.
      out = this.#buf.subarray(this.#start, this.#end);
      this.#buf = EMPTY;
      this.#start = 0;
      this.#end = 0;
    } else {
      out = Buffer.allocUnsafe(n);
      this.#buf.copy(out, 0, this.#start, this.#start + n);
      this.#discard(n);
      return out;
    }
    this.#resumeIfDrained();
    return out;
  }

  #discard(n: number): void {
    this.#start += n;
    if (this.#start === this.#end) {
      this.#start = 0;
      this.#end = 0;
      if (this.#buf.length > KEEP_AT_MOST && this.#buf.length > 4 * this.#limit) this.#buf = EMPTY;
    }
    this.#resumeIfDrained();
  }

  #resumeIfDrained(): void {
    if (this.#paused && this.#end - this.#start <= this.#limit) {
      this.#paused = false;
      this.#transport?.resumeReading();
    }
  }
}

// What SeparatorSearch.find returns when no separator is in the buffer yet.
const WAIT = -1;

/**
 * asyncio's readuntil search over a buffer that grows between calls: it
 * resumes where the last call left off, and gives the end of the earliest
 * ending separator. The separators are sorted shortest first.
 */
class SeparatorSearch {
  readonly #separators: readonly Buffer[];
  readonly #limit: number;
  #offset = 0;

  constructor(separators: readonly Buffer[], limit: number) {
    this.#separators = separators;
    this.#limit = limit;
  }

  /**
   * The length of the buffer's bytes up to the end of the earliest-ending
   * separator; WAIT when none is there yet; the LimitOverrunError when the
   * bytes searched pass the limit without a separator, or it starts beyond.
   */
  find(buf: Buffer, start: number, end: number): number | LimitOverrunError {
    const seps = this.#separators;
    const buflen = end - start;
    if (buflen - this.#offset < (seps[0] as Buffer).length) return WAIT;
    const view = buf.subarray(start, end);
    let matchStart = -1;
    let matchEnd = -1;
    for (const sep of seps) {
      const at = view.indexOf(sep, this.#offset);
      if (at !== -1 && (matchEnd === -1 || at + sep.length < matchEnd)) {
        matchStart = at;
        matchEnd = at + sep.length;
      }
    }
    if (matchEnd !== -1) {
      if (matchStart <= this.#limit) return matchEnd;
      return new LimitOverrunError('Separator is found, but chunk is longer than limit', matchStart);
    }
    // A separator may still end in bytes yet to come: look again from where
    // the longest one could start.
    this.#offset = Math.max(0, buflen + 1 - (seps.at(-1) as Buffer).length);
    if (this.#offset <= this.#limit) return WAIT;
    return new LimitOverrunError('Separator is not found, and chunk exceed the limit', this.#offset);
  }
}

// readLine's separator, and readUntil's default.
const NEWLINE: readonly Buffer[] = [Buffer.from('\n')];

// readUntil's separators as bytes (copies: a caller's array may change
// while the read waits), shortest first.
function separatorList(separator: StreamSeparator | readonly StreamSeparator[]): readonly Buffer[] {
  if (separator === '\n') return NEWLINE;
  const list = Array.isArray(separator) ? (separator as readonly StreamSeparator[]) : [separator as StreamSeparator];
  if (list.length === 0) throw invalidArgValue('The "separator" list must hold at least one separator');
  const separators = list
    .map((sep) => {
      if (typeof sep === 'string' || sep instanceof Uint8Array) return Buffer.from(sep);
      throw invalidArgType('separator', 'a string, a Buffer or a Uint8Array', sep);
    })
    .sort((a, b) => a.length - b.length);
  if ((separators[0] as Buffer).length === 0) {
    throw invalidArgValue('The "separator" argument must be at least one byte long');
  }
  return separators;
}

// A read's count: an integer >= min.
function checkCount(n: unknown, name: string, min: number): void {
  if (typeof n !== 'number') throw invalidArgType(name, 'of type number', n);
  if (!Number.isInteger(n)) throw outOfRange(name, 'an integer', n);
  if (n < min) throw outOfRange(name, `>= ${min}`, n);
}
