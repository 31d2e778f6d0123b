/**
 * TLS on the loop: `startTls` (asyncio's start_tls, for the sock_* API) and
 * the sock_* operations on the {@link TlsSocket} it gives. Each is the
 * sock_* template -- try at once, else wait for readiness and try again --
 * with one difference: what to wait for is OpenSSL's to say. A receive can
 * need the socket writable (a TLS 1.3 key update to answer) and a send
 * readable, so the waiting is per TLS socket, not per direction: a
 * {@link TlsChannel} holds the socket's receive (or handshake) and its
 * sends, and watches the fd for what each of them waits on.
 *
 * This works on every backend, io_uring's included: its loop watches
 * readiness too (UringSelector), and OpenSSL reads and writes the fd itself.
 *
 * Sends on one TLS socket go in the order they were started: OpenSSL must
 * be called again with the same bytes after a want, so a second send waits
 * for the first instead of replacing it. A receive started while another
 * waits replaces it, as on a plain socket (the first stays pending).
 *
 * @module
 */
import type { CancelHook } from '../coro/future.js';
import { Future, type LoopLike, TimeoutError } from '../coro/index.js';
import { RUN } from '../coro/types.js';
import { checkInt, invalidArgType, invalidArgValue } from '../sys/args.js';
import {
  type SendData,
  type Socket,
  TLS_WANT_READ,
  TLS_WANT_WRITE,
  TlsContext,
  type TlsContextOptions,
  type TlsSocket,
} from '../sys/index.js';
import type { IoSlots, Watcher } from './handle.js';
import { byteSize, MAX_IO, rangeLength, rangeStart, SMALL_SEND, utf8 } from './sock-args.js';

/** @internal What the TLS operations need of the loop. */
export interface TlsLoop extends LoopLike {
  /**
   * Makes `watcher` the fd's reader (or writer), replacing the one it had.
   *
   * @throws what addReader throws for a socket the selector refuses
   */
  watchFd(sock: Socket, write: boolean, watcher: Watcher): IoSlots;
  /** Stops `watcher`'s watching, unless another reader (or writer) replaced it since. */
  unwatch(slots: IoSlots, write: boolean, watcher: Watcher): void;
  /** A done Future<void>, shared: what an operation that completed at once returns. */
  resolvedVoid(): Future<void>;
}

/** Options of `loop.startTls`: a {@link TlsContext}'s, or the context itself, and the connection's own. */
export interface StartTlsOptions extends Omit<TlsContextOptions, 'server'> {
  /** The accepting side (needs `cert` and `key`, or a server `context`). Default false. */
  serverSide?: boolean;
  /**
   * Client: the server's name, sent as SNI and checked against its
   * certificate (an IP address: checked against its IP names). Without it
   * only the chain is checked.
   */
  serverName?: string;
  /** A context to use instead of one made from the options above (reuse one for many connections). */
  context?: TlsContext;
  /** Client: where the session is kept for resumption (default: the name and the peer's address). */
  sessionKey?: string;
  /** Give up the handshake after this many milliseconds (default 60,000, as asyncio). */
  handshakeTimeoutMs?: number;
}

// What the channel's receive side is doing.
const NONE = 0;
const HANDSHAKE = 1;
const RECV_INTO = 2;
const RECV = 3;
type ReadKind = typeof NONE | typeof HANDSHAKE | typeof RECV_INTO | typeof RECV;

// A send waiting for its turn (the one under way is in the channel's fields).
interface QueuedSend {
  future: Future<void>;
  bytes: ArrayBufferView;
  offset: number;
  end: number;
}

// The fd's reader or writer slot: readiness goes to the channel.
class Side implements Watcher {
  slots: IoSlots | null = null;
  constructor(
    readonly channel: TlsChannel,
    readonly write: boolean,
  ) {}

  [RUN](): void {
    this.channel.ready(this.write);
  }

  disarm(): void {
    // Another reader or writer took the slot, or the fd's watch ended (its
    // socket closed): what waits on it stays pending, as a replaced
    // reader's operation does.
    this.slots = null;
  }
}

const channels = new WeakMap<TlsSocket, TlsChannel>();

/** @internal A TLS socket's operations in flight on one loop, and the fd watching they need. */
export class TlsChannel implements CancelHook {
  readonly #loop: TlsLoop;
  readonly tls: TlsSocket;
  readonly #reader = new Side(this, false);
  readonly #writer = new Side(this, true);
  // The receive (or handshake): what it does, its Future, its buffer and
  // range, and the readiness it waits for (TLS_WANT_* or 0).
  #readKind: ReadKind = NONE;
  #readFuture: Future<never> | null = null;
  #readTarget: ArrayBufferView | null = null;
  #readOffset = 0;
  #readEnd = 0;
  #readWant = 0;
  // The send under way, and those after it.
  #sendFuture: Future<void> | null = null;
  #sendBytes: ArrayBufferView | null = null;
  #sendOffset = 0;
  #sendEnd = 0;
  #sendWant = 0;
  // OpenSSL has seen the send under way (a send promoted from the queue
  // has not, until its first attempt): only then can it hold part of it.
  #sendTried = false;
  #queue: QueuedSend[] = [];
  // A send was cancelled halfway: OpenSSL holds part of a record it must
  // finish with those bytes, so no other send can follow.
  #sendBroken = false;
  // The last thing done was a send that went at once: the answer is not
  // here yet, so (with nothing decrypted in hand) a receive waits first.
  drained = false;

  constructor(loop: TlsLoop, tls: TlsSocket) {
    this.#loop = loop;
    this.tls = tls;
    tls.dontWait(); // the loop's thread never blocks, on a blocking socket too
  }

  /** The channel of `tls` on `loop` (a new one when it was used on another loop). */
  static of(loop: TlsLoop, tls: TlsSocket): TlsChannel {
    let channel = channels.get(tls);
    if (channel === undefined || channel.#loop !== loop) {
      channel = new TlsChannel(loop, tls);
      channels.set(tls, channel);
    }
    return channel;
  }

  /** Waits for `want` to receive (or shake hands) for `future`, replacing a receive still waiting. */
  armRead(
    future: Future<never>,
    kind: ReadKind,
    target: ArrayBufferView | null,
    offset: number,
    end: number,
    want: number,
  ): void {
    this.#readFuture = future;
    this.#readKind = kind;
    this.#readTarget = target;
    this.#readOffset = offset;
    this.#readEnd = end;
    this.#readWant = want;
    future.setCancelHook(this);
    this.#sync();
  }

  /** True while a send is under way (a new one queues behind it). */
  get sending(): boolean {
    return this.#sendFuture !== null;
  }

  /** The send must fail at once: an earlier one was cancelled halfway. */
  get sendBroken(): boolean {
    return this.#sendBroken;
  }

  /** Sends bytes [offset, end) after those under way; `want` when the first attempt was made already. */
  armSend(future: Future<void>, bytes: ArrayBufferView, offset: number, end: number, want: number): void {
    future.setCancelHook(this);
    if (this.#sendFuture !== null) {
      this.#queue.push({ future, bytes, offset, end });
      return;
    }
    this.#startSend(future, bytes, offset, end, want, true);
  }

  #startSend(
    future: Future<void>,
    bytes: ArrayBufferView,
    offset: number,
    end: number,
    want: number,
    tried: boolean,
  ): void {
    this.#sendFuture = future;
    this.#sendTried = tried;
    this.#sendBytes = bytes;
    this.#sendOffset = offset;
    this.#sendEnd = end;
    this.#sendWant = want;
    this.#sync();
  }

  /** @internal The fd is ready for reading (or writing): go on with what waits for it. */
  ready(write: boolean): void {
    const want = write ? TLS_WANT_WRITE : TLS_WANT_READ;
    if (this.#readFuture !== null && this.#readWant === want) this.#continueRead();
    if (this.#sendFuture !== null && this.#sendWant === want) this.#continueSend();
    this.#sync();
  }

  /** @internal A Future of this channel was cancelled. */
  futureCancelled(future: Future<unknown>): void {
    if (future === this.#readFuture) {
      this.#readFuture = null;
      this.#readTarget = null;
      this.#readWant = 0;
    } else if (future === this.#sendFuture) {
      if (this.#sendTried && this.#sendWant !== 0) this.#sendBroken = true;
      this.#sendFuture = null;
      this.#sendBytes = null;
      this.#sendWant = 0;
      this.#nextSend();
    } else {
      const at = this.#queue.findIndex((queued) => queued.future === future);
      if (at >= 0) this.#queue.splice(at, 1);
    }
    this.#sync();
  }

  #continueRead(): void {
    const future = this.#readFuture as Future<never>;
    let result: unknown;
    try {
      result = this.#attemptRead();
    } catch (error) {
      this.#readFuture = null;
      this.#readWant = 0;
      future.setException(error);
      return;
    }
    if (result === WAITING) return;
    this.#readFuture = null;
    this.#readTarget = null;
    this.#readWant = 0;
    // The waiter may start its next receive from here, in this pass.
    future.resolveFromLoop(result as never);
  }

  // The receive's attempt: its result, or WAITING with #readWant set.
  #attemptRead(): unknown {
    const tls = this.tls;
    if (this.#readKind === HANDSHAKE) {
      const rc = tls.tryHandshake();
      if (rc < 0) return this.#waitRead(rc);
      return tls;
    }
    const target = this.#readTarget as ArrayBufferView;
    const n = tls.tryRecvInto(target, this.#readOffset, this.#readEnd - this.#readOffset);
    if (n < 0) return this.#waitRead(n);
    this.drained = false;
    return this.#readKind === RECV ? received(target as Buffer, n) : n;
  }

  #waitRead(want: number): typeof WAITING {
    this.#readWant = want;
    return WAITING;
  }

  #continueSend(): void {
    const future = this.#sendFuture as Future<void>;
    let want: number;
    try {
      want = this.sendMore();
    } catch (error) {
      this.#sendFuture = null;
      this.#sendBytes = null;
      this.#sendWant = 0;
      this.#failQueue(error);
      future.setException(error);
      return;
    }
    if (want !== 0) return;
    this.#sendFuture = null;
    this.#sendBytes = null;
    this.drained = true;
    this.#nextSend();
    future.resolveFromLoop(undefined);
  }

  /**
   * Sends on from the send's offset until all went (0) or OpenSSL wants
   * readiness (the want, also kept as what the send waits for).
   *
   * @throws what TlsSocket.trySend throws
   */
  sendMore(): number {
    const tls = this.tls;
    const bytes = this.#sendBytes as ArrayBufferView;
    const end = this.#sendEnd;
    let offset = this.#sendOffset;
    this.#sendTried = true;
    while (offset < end) {
      const n = tls.trySend(bytes, offset, end - offset);
      if (n < 0) {
        this.#sendOffset = offset;
        this.#sendWant = n;
        return n;
      }
      offset += n;
    }
    this.#sendOffset = end;
    this.#sendWant = 0;
    return 0;
  }

  #nextSend(): void {
    const next = this.#queue.shift();
    if (next === undefined) return;
    if (this.#sendBroken) {
      next.future.setException(brokenSend());
      this.#failQueue(brokenSend());
      return;
    }
    this.#startSend(next.future, next.bytes, next.offset, next.end, TLS_WANT_WRITE, false);
    // Its first attempt comes with the next writability (the socket took
    // the last bytes, so that is the next pass).
  }

  #failQueue(error: unknown): void {
    const queue = this.#queue;
    this.#queue = [];
    for (const queued of queue) queued.future.setException(error);
  }

  // Watches the fd for what the waiting operations want, and for nothing else.
  #sync(): void {
    const wantRead =
      (this.#readFuture !== null && this.#readWant === TLS_WANT_READ) ||
      (this.#sendFuture !== null && this.#sendWant === TLS_WANT_READ);
    const wantWrite =
      (this.#readFuture !== null && this.#readWant === TLS_WANT_WRITE) ||
      (this.#sendFuture !== null && this.#sendWant === TLS_WANT_WRITE);
    this.#watch(this.#reader, wantRead);
    this.#watch(this.#writer, wantWrite);
  }

  #watch(side: Side, wanted: boolean): void {
    if (wanted) {
      if (side.slots === null) side.slots = this.#loop.watchFd(this.tls.socket, side.write, side);
    } else if (side.slots !== null) {
      const slots = side.slots;
      side.slots = null;
      this.#loop.unwatch(slots, side.write, side);
    }
  }
}

const WAITING = Symbol('waiting');

function received(buffer: Buffer, n: number): Buffer {
  // Copy a small result out rather than pin the whole buffer.
  return n < buffer.length >>> 1 ? Buffer.from(buffer.subarray(0, n)) : buffer.subarray(0, n);
}

function brokenSend(): Error {
  const error = new Error('an earlier send on this TLS socket was cancelled halfway: no other send can follow');
  return Object.assign(error, { code: 'ERR_TLS_SEND_CANCELLED' });
}

function resolved<T>(loop: LoopLike, value: T): Future<T> {
  const future = new Future<T>(loop);
  future.setResult(value);
  return future;
}

function failed<T>(loop: LoopLike, error: unknown): Future<T> {
  const future = new Future<T>(loop);
  future.setException(error);
  return future;
}

/**
 * @internal Receives up to `nbytes` decrypted bytes; an empty Buffer means the peer
 * closed with close_notify.
 *
 * @throws {TypeError} / {RangeError} when nbytes is not an integer in [0, 2^31 - 1]
 */
export function tlsRecv(loop: TlsLoop, tls: TlsSocket, nbytes: number): Future<Buffer> {
  checkInt(nbytes, 'nbytes', 0, MAX_IO);
  return receive<Buffer>(loop, tls, RECV, Buffer.allocUnsafe(nbytes), 0, nbytes);
}

/**
 * @internal Receives into `buffer` (from `offset`, at most `length` bytes); resolves
 * with the count, 0 at close_notify.
 *
 * @throws {TypeError} / {RangeError} for a buffer that is no ArrayBufferView, or a range outside it
 */
export function tlsRecvInto(
  loop: TlsLoop,
  tls: TlsSocket,
  buffer: ArrayBufferView,
  offset?: number,
  length?: number,
): Future<number> {
  const size = byteSize(buffer);
  const start = rangeStart(size, offset);
  return receive<number>(loop, tls, RECV_INTO, buffer, start, start + rangeLength(size, start, length));
}

function receive<T>(
  loop: TlsLoop,
  tls: TlsSocket,
  kind: typeof RECV | typeof RECV_INTO,
  buffer: ArrayBufferView,
  start: number,
  end: number,
): Future<T> {
  const channel = TlsChannel.of(loop, tls);
  let want = TLS_WANT_READ;
  // After a send that went at once the answer is not here yet: with
  // nothing decrypted in hand, wait for readiness rather than try a read
  // that can only say "want read" (one recv syscall saved per message).
  if (!(channel.drained && !tls.closed && !tls.hasPending())) {
    let n: number;
    try {
      n = tls.tryRecvInto(buffer, start, end - start);
    } catch (error) {
      return failed(loop, error);
    }
    if (n >= 0) {
      channel.drained = false;
      return resolved(loop, (kind === RECV ? received(buffer as Buffer, n) : n) as T);
    }
    want = n;
  }
  channel.drained = false;
  const future = new Future<T>(loop);
  channel.armRead(future as Future<never>, kind, buffer, start, end, want);
  return future;
}

/**
 * @internal Sends all of `data` through TLS (for bytes: from `offset`, `length` of
 * them), after the sends on this socket still under way. A send of at most
 * 64 KiB never needs the caller's bytes after this returns; a larger one
 * reads them until its Future is done.
 *
 * @throws {TypeError} / {RangeError} for a range outside the bytes, or one given with a string
 */
export function tlsSendAll(
  loop: TlsLoop,
  tls: TlsSocket,
  data: SendData,
  offset?: number,
  length?: number,
): Future<void> {
  const bytes = typeof data === 'string' ? utf8(data, offset, length) : data;
  const size = byteSize(bytes);
  const start = rangeStart(size, offset);
  const end = start + rangeLength(size, start, length);
  const channel = TlsChannel.of(loop, tls);
  if (channel.sendBroken) return failed(loop, brokenSend());
  if (channel.sending) {
    // Behind the send under way; a small one lets go of the caller's bytes now.
    const own = data !== bytes || end - start > SMALL_SEND ? bytes : copy(bytes, start, end);
    const future = new Future<void>(loop);
    channel.armSend(future, own, own === bytes ? start : 0, own === bytes ? end : end - start, TLS_WANT_WRITE);
    return future;
  }
  let sent = start;
  let want = 0;
  try {
    while (sent < end) {
      const n = tls.trySend(bytes, sent, end - sent);
      if (n < 0) {
        want = n;
        break;
      }
      sent += n;
    }
  } catch (error) {
    return failed(loop, error);
  }
  if (want === 0) {
    channel.drained = true;
    return loop.resolvedVoid();
  }
  // OpenSSL holds the record it began; the call that finishes it must see
  // the same bytes from `sent` on. A small rest is copied (as the plain
  // sockSendAll does), so the caller may reuse its buffer at once.
  const own = data !== bytes || end - sent > SMALL_SEND ? bytes : copy(bytes, sent, end);
  const future = new Future<void>(loop);
  channel.armSend(future, own, own === bytes ? sent : 0, own === bytes ? end : end - sent, want);
  return future;
}

function copy(bytes: ArrayBufferView, start: number, end: number): Buffer {
  return Buffer.from(new Uint8Array(bytes.buffer, bytes.byteOffset + start, end - start));
}

// Contexts made from options, reused by later calls with the same options:
// a context parses its roots once, and keeps the sessions that let the next
// connection to a server resume instead of a full handshake.
const contexts = new Map<string, TlsContext>();
const MAX_CONTEXTS = 32;

function contextFor(options: StartTlsOptions, serverSide: boolean): TlsContext {
  if (options.context !== undefined) {
    if (!(options.context instanceof TlsContext)) throw invalidArgType('context', 'a TlsContext', options.context);
    if (options.context.server !== serverSide) {
      throw invalidArgValue(
        `The "context" option is a ${options.context.server ? 'server' : 'client'} context, for a ${serverSide ? 'server' : 'client'} side`,
      );
    }
    return options.context;
  }
  const { ca, cert, key, alpn, minVersion, maxVersion, rejectUnauthorized, requestCert } = options;
  const contextOptions: TlsContextOptions = {
    server: serverSide,
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
    ...(alpn === undefined ? {} : { alpn }),
    ...(minVersion === undefined ? {} : { minVersion }),
    ...(maxVersion === undefined ? {} : { maxVersion }),
    ...(rejectUnauthorized === undefined ? {} : { rejectUnauthorized }),
    ...(requestCert === undefined ? {} : { requestCert }),
  };
  const cacheKey = JSON.stringify(contextOptions, (_name, value: unknown) =>
    Buffer.isBuffer(value) ? value.toString('latin1') : value,
  );
  let context = contexts.get(cacheKey);
  if (context === undefined) {
    context = new TlsContext(contextOptions);
    if (contexts.size >= MAX_CONTEXTS) contexts.delete(contexts.keys().next().value as string);
    contexts.set(cacheKey, context);
  }
  return context;
}

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 60_000;

/**
 * @internal asyncio's start_tls for the sock_* API: wraps a connected (or accepted)
 * socket in TLS and shakes hands; resolves with the {@link TlsSocket} the
 * sock_* operations then take in its place. Contexts made from the options
 * are kept and reused for the same options (so are their sessions).
 *
 * @throws {TypeError} for bad options (synchronously)
 * @throws {TlsError} / {OSError} / {TimeoutError} (through the Future) when the handshake fails
 */
export function startTls(loop: TlsLoop, sock: Socket, options: StartTlsOptions = {}): Future<TlsSocket> {
  if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'an object', options);
  const serverSide = options.serverSide ?? false;
  if (typeof serverSide !== 'boolean') throw invalidArgType('serverSide', 'a boolean', serverSide);
  const timeoutMs =
    options.handshakeTimeoutMs === undefined
      ? DEFAULT_HANDSHAKE_TIMEOUT_MS
      : checkInt(options.handshakeTimeoutMs, 'handshakeTimeoutMs', 1, 2 ** 31 - 1);
  const context = contextFor(options, serverSide);
  const tls = context.wrapSocket(sock, {
    ...(options.serverName === undefined ? {} : { serverHostname: options.serverName }),
    ...(options.sessionKey === undefined ? {} : { sessionKey: options.sessionKey }),
  });
  tls.dontWait();
  let rc: number;
  try {
    rc = tls.tryHandshake();
  } catch (error) {
    return failed(loop, error);
  }
  if (rc === 0) return resolved(loop, tls);
  const future = new Future<TlsSocket>(loop);
  const channel = TlsChannel.of(loop, tls);
  channel.armRead(future as Future<never>, HANDSHAKE, null, 0, 0, rc);
  const timer = loop.callLater(timeoutMs, () => {
    if (future.done()) return;
    channel.futureCancelled(future);
    future.setException(new TimeoutError(`the TLS handshake took longer than ${timeoutMs} ms`));
  });
  future.addDoneCallback(() => timer.cancel());
  return future;
}
