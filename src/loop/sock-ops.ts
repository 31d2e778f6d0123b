/**
 * The loop's socket operations, all one template (asyncio's sock_*): try the
 * syscall at once; if it would block, wait for readiness and try again.
 * Each returns a Future; cancelling it stops the waiting. (A send that
 * completes at once returns the loop's one shared done Future.)
 *
 * One refinement for receives: a short read (fewer bytes than asked) means
 * the socket's receive queue was empty, and a completed send means the reply
 * to it has not come yet; either way the next receive on that socket skips
 * the attempt that could only say EAGAIN and waits for readiness straight
 * away -- in request/response traffic that is one syscall saved per message,
 * and (interest changes being batched) the wait costs none. Waiting first is
 * always correct: a socket with data is reported ready at once.
 *
 * A socket should have one pending operation per direction: a second
 * receive replaces the first one's reader (as in asyncio).
 *
 * @module
 */
import { Future, type LoopLike } from '../coro/index.js';
import { RUN } from '../coro/types.js';
import { checkInt, invalidArgType, invalidArgValue } from '../sys/args.js';
import { OSError, type SendData, SO_ERROR, SOL_SOCKET, type Socket, type SocketAddress } from '../sys/index.js';
import { native } from '../sys/native.js';
import type { IoSlots, Watcher } from './handle.js';

/** What the operations need of the loop. */
export interface IoLoop extends LoopLike {
  createFuture<T>(): Future<T>;
  /**
   * Makes `watcher` the socket's reader (or writer): it runs when the socket
   * is ready. Returns the fd's registration, which the operation keeps so
   * that giving the slot up later needs no lookup by fd.
   */
  watch(sock: Socket, write: boolean, watcher: Watcher): IoSlots;
  /** Undoes watch(), unless another reader (or writer) replaced `watcher` since. */
  unwatch(slots: IoSlots, write: boolean, watcher: Watcher): void;
  /**
   * Undoes watch() in two halves around the wake-up of a completed
   * operation's waiter: release() gives the slot up, settleWatch() drops
   * the interest unless the waiter took the slot again meanwhile.
   */
  release(slots: IoSlots, write: boolean, watcher: Watcher): void;
  settleWatch(slots: IoSlots): void;
  /** A done Future<void>, shared: what an operation that completed at once returns. */
  resolvedVoid(): Future<void>;
  /** True when the last receive on `fd` drained its queue (see the module doc). */
  recvDrained(fd: number): boolean;
  /** Sets or clears that hint (a short read or a send sets it). */
  markDrained(fd: number, drained: boolean): void;
}

const AGAIN = Symbol('again');
const EINPROGRESS = 115;
const EALREADY = 114;
const EISCONN = 106;
const EINTR = 4;

// The operations. One class with a kind, not a subclass per operation: the
// Future methods then see three shapes (Future, Task, IoFuture) and their
// property accesses stay polymorphic rather than megamorphic.
// The readers come first: an operation writes when its kind is >= SEND_ALL.
const RECV_INTO = 0;
const RECV = 1;
const ACCEPT = 2;
const SEND_ALL = 3;
const CONNECT = 4;
type Op = typeof RECV_INTO | typeof RECV | typeof SEND_ALL | typeof ACCEPT | typeof CONNECT;

/**
 * A socket operation in flight. {@link start} runs the attempt at once
 * (unless told the queue is empty) and, while it would block, again each
 * time the socket is ready; it stops watching once it settles or is
 * cancelled. The operation is its own reader or writer (a Watcher): waiting
 * allocates nothing beyond the Future, and its state lives in fields.
 */
class IoFuture<T> extends Future<T> implements Watcher {
  readonly #ioLoop: IoLoop;
  readonly #sock: Socket;
  readonly #op: Op;
  // RECV_INTO / RECV: the buffer; SEND_ALL: the bytes; CONNECT: the address.
  readonly #target: ArrayBufferView | SocketAddress | null;
  // The byte range: RECV_INTO / RECV receive into [#offset, #end); SEND_ALL
  // sends [#offset, #end), #offset advancing as it goes.
  #offset: number;
  readonly #end: number;
  // The fd's slots while it is the socket's reader or writer, else null.
  #slots: IoSlots | null = null;

  constructor(
    loop: IoLoop,
    sock: Socket,
    op: Op,
    target: ArrayBufferView | SocketAddress | null,
    offset: number,
    end: number,
  ) {
    super(loop);
    this.#ioLoop = loop;
    this.#sock = sock;
    this.#op = op;
    this.#target = target;
    // Always numbers, checked by the caller: the addon then reads each
    // with one N-API call.
    this.#offset = offset;
    this.#end = end;
  }

  /**
   * Tries now (unless `waitFirst`), else waits for readiness.
   *
   * @throws what addReader/addWriter throw for a socket the selector refuses
   */
  start(waitFirst: boolean): this {
    if (!waitFirst) {
      let result: unknown;
      try {
        result = this.#attempt();
      } catch (error) {
        this.setException(error);
        return this;
      }
      if (result !== AGAIN) {
        this.setResult(result as T);
        return this;
      }
    }
    this.#slots = this.#ioLoop.watch(this.#sock, this.#op >= SEND_ALL, this);
    return this;
  }

  /**
   * @internal The loop runs it: as the socket's reader or writer when the
   * socket is ready (retry), else for its done callbacks once settled.
   */
  override [RUN](): void {
    if (this.#slots !== null) this.#retry();
    else this.runDoneCallbacks();
  }

  /** @internal Another reader or writer replaced it, or the fd's watch ended: stop retrying. */
  disarm(): void {
    this.#slots = null;
  }

  override cancel(message?: string): boolean {
    if (!super.cancel(message)) return false;
    this.#unwatch();
    return true;
  }

  // The socket is ready: try again; done, wake the waiter at once.
  #retry(): void {
    if (this.done()) return;
    let result: unknown;
    try {
      result = this.#attempt();
    } catch (error) {
      this.#unwatch();
      this.setException(error);
      return;
    }
    if (result === AGAIN) return;
    // Done: give the slot up, wake the waiter, and only then let the loop
    // drop the interest, so that a next operation the waiter starts at
    // once costs no interest change at all.
    const slots = this.#slots as IoSlots;
    const loop = this.#ioLoop;
    this.#slots = null;
    loop.release(slots, this.#op >= SEND_ALL, this);
    try {
      this.resolveFromLoop(result as T);
    } finally {
      loop.settleWatch(slots);
    }
  }

  // The syscall: its result, or AGAIN when it would block.
  #attempt(): unknown {
    const sock = this.#sock;
    switch (this.#op) {
      case RECV_INTO: {
        const count = this.#end - this.#offset;
        const n = native.tryRecv(sock.fileno(), this.#target as ArrayBufferView, this.#offset, count);
        if (n === null) return AGAIN;
        // A short read drained the queue; 0 is EOF (nothing more will come).
        this.#ioLoop.markDrained(sock.fileno(), n > 0 && n < count);
        return n;
      }
      case RECV: {
        const buffer = this.#target as Buffer;
        const count = this.#end;
        const n = native.tryRecv(sock.fileno(), buffer, 0, count);
        if (n === null) return AGAIN;
        this.#ioLoop.markDrained(sock.fileno(), n > 0 && n < count);
        // Copy a small result out rather than pin the whole buffer.
        return n < count >>> 1 ? Buffer.from(buffer.subarray(0, n)) : buffer.subarray(0, n);
      }
      case SEND_ALL: {
        this.#offset = sendUpTo(sock, this.#target as ArrayBufferView, this.#offset, this.#end);
        if (this.#offset < this.#end) return AGAIN;
        sentAll(this.#ioLoop, sock);
        return undefined;
      }
      case ACCEPT: {
        const conn = sock.tryAccept(true);
        if (conn === null) return AGAIN;
        let address: SocketAddress = '';
        try {
          address = conn.getpeername();
        } catch {
          // Reset before we looked (ENOTCONN): the first recv will say so.
        }
        return [conn, address];
      }
      case CONNECT: {
        const error = sock.getsockopt(SOL_SOCKET, SO_ERROR) as number;
        if (error === EINPROGRESS) return AGAIN;
        if (error !== 0) throw new OSError(error, 'connect', describeAddress(this.#target as SocketAddress));
        return undefined;
      }
    }
  }

  // Stop watching, unless another operation on the socket took over.
  #unwatch(): void {
    const slots = this.#slots;
    if (slots === null) return;
    this.#slots = null;
    this.#ioLoop.unwatch(slots, this.#op >= SEND_ALL, this);
  }
}

/**
 * Receives up to `nbytes`; an empty Buffer means the peer closed.
 *
 * @throws {TypeError} / {RangeError} when nbytes is not an integer in [0, 2^31 - 1]
 */
export function sockRecv(loop: IoLoop, sock: Socket, nbytes: number): Future<Buffer> {
  checkInt(nbytes, 'nbytes', 0, MAX_IO);
  return new IoFuture<Buffer>(loop, sock, RECV, Buffer.allocUnsafe(nbytes), 0, nbytes).start(drained(loop, sock));
}

/**
 * Receives into `buffer` (from `offset`, at most `length` bytes); resolves with the count, 0 at EOF.
 *
 * @throws {TypeError} / {RangeError} for a buffer that is no ArrayBufferView, or a range outside it
 */
export function sockRecvInto(
  loop: IoLoop,
  sock: Socket,
  buffer: ArrayBufferView,
  offset?: number,
  length?: number,
): Future<number> {
  const size = byteSize(buffer);
  const start = rangeStart(size, offset);
  const count = rangeLength(size, start, length);
  return new IoFuture<number>(loop, sock, RECV_INTO, buffer, start, start + count).start(drained(loop, sock));
}

/**
 * Sends all of `data` (for bytes: from `offset`, `length` of them), waiting
 * for room as often as needed. A send of at most 64 KiB never needs the
 * caller's bytes after this returns (what it cannot send at once it
 * copies); a larger one reads them until its Future is done, so they must
 * not change before then.
 *
 * @throws {TypeError} / {RangeError} for a range outside the bytes, or a range given with a string
 */
export function sockSendAll(
  loop: IoLoop,
  sock: Socket,
  data: SendData,
  offset?: number,
  length?: number,
): Future<void> {
  let bytes: ArrayBufferView;
  if (typeof data === 'string') {
    if (offset !== undefined || length !== undefined) {
      throw invalidArgValue('sockSendAll takes offset and length with bytes only, not with a string');
    }
    bytes = Buffer.from(data, 'utf8');
  } else {
    bytes = data;
  }
  const size = byteSize(bytes);
  const start = rangeStart(size, offset);
  const end = start + rangeLength(size, start, length);
  // Tried here, before any Future exists: a send that completes at once
  // (the usual case) returns the loop's shared done Future and allocates
  // nothing.
  let sent: number;
  try {
    sent = sendUpTo(sock, bytes, start, end);
  } catch (error) {
    return failed(loop, error);
  }
  if (sent === end) {
    sentAll(loop, sock);
    return loop.resolvedVoid();
  }
  // It has to wait. A send of at most SMALL_SEND bytes lets go of the
  // caller's bytes now: the rest is copied, so the caller may reuse its
  // buffer at once (one receive buffer for all connections, as C servers
  // have). A larger send refers to the caller's bytes until it is done.
  if (data !== bytes || end - start > SMALL_SEND) {
    return new IoFuture<void>(loop, sock, SEND_ALL, bytes, sent, end).start(true);
  }
  const rest = Buffer.from(new Uint8Array(bytes.buffer, bytes.byteOffset + sent, end - sent));
  return new IoFuture<void>(loop, sock, SEND_ALL, rest, 0, rest.length).start(true);
}

/** The largest send whose unsent rest sockSendAll copies when it has to wait (64 KiB). */
const SMALL_SEND = 64 * 1024;

// Sends bytes [from, end) until done or the socket's buffer is full;
// returns how far it got.
function sendUpTo(sock: Socket, bytes: ArrayBufferView, from: number, end: number): number {
  const fd = sock.fileno();
  let offset = from;
  while (offset < end) {
    const n = native.trySend(fd, bytes, offset, end - offset);
    if (n === null) break;
    offset += n;
  }
  return offset;
}

// What answers a message just sent is not here yet: the next receive waits
// for readiness rather than try a recv that can only say EAGAIN (see the
// module doc).
function sentAll(loop: IoLoop, sock: Socket): void {
  loop.markDrained(sock.fileno(), true);
}

// Whether a receive should wait for readiness before its first attempt (a
// closed socket tries at once, and its attempt fails the Future).
function drained(loop: IoLoop, sock: Socket): boolean {
  return !sock.closed && loop.recvDrained(sock.fileno());
}

/** The largest `nbytes` sockRecv takes (2^31 - 1; Linux moves at most 0x7ffff000 bytes per call anyway). */
const MAX_IO = 0x7fffffff;

// A buffer argument's size in bytes, checked before anything starts. For a
// Uint8Array (a Buffer is one) that is its length, which V8 11 inlines;
// reading byteLength is a call to the getter each time (two per echoed
// message, about 4 % of the loop's instructions per round trip).
function byteSize(buffer: ArrayBufferView): number {
  if (buffer instanceof Uint8Array) return buffer.length;
  if (!ArrayBuffer.isView(buffer))
    throw invalidArgType('buffer', 'an instance of Buffer, TypedArray or DataView', buffer);
  return buffer.byteLength;
}

function rangeStart(size: number, offset: number | undefined): number {
  return offset === undefined ? 0 : checkInt(offset, 'offset', 0, size);
}

function rangeLength(size: number, start: number, length: number | undefined): number {
  return length === undefined ? size - start : checkInt(length, 'length', 0, size - start);
}

/** "127.0.0.1:80", "[::1]:80" or the path: the detail of a connect error. */
export function describeAddress(address: SocketAddress): string {
  if (typeof address === 'string') return address;
  const [host, port] = address;
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Connects a socket to a numeric address (resolve names first, with
 * getaddrinfo); resolves once connected, fails with the connect error
 * (ECONNREFUSED...) taken from SO_ERROR.
 */
export function sockConnect(loop: IoLoop, sock: Socket, address: SocketAddress): Future<void> {
  let rc: number;
  try {
    rc = sock.connectEx(address);
  } catch (error) {
    return failed(loop, error);
  }
  if (rc === EINPROGRESS || rc === EINTR) {
    // Asked again, connect(2) says how the handshake went: 0 once it is
    // done, EALREADY while it is under way, else its error. Over loopback
    // it is done already (the kernel ran it inside the first call): one
    // syscall here spares an interest change, a pass of the loop and the
    // SO_ERROR read.
    try {
      rc = sock.connectEx(address);
    } catch (error) {
      return failed(loop, error);
    }
    if (rc === EISCONN) rc = 0;
  }
  if (rc === 0) return loop.resolvedVoid();
  if (rc !== EALREADY && rc !== EINPROGRESS && rc !== EINTR) {
    return failed(loop, new OSError(rc, 'connect', describeAddress(address)));
  }
  // Writable once the handshake ends; SO_ERROR then says how. The operation
  // is the Future: woken by readiness, it resumes the connecting Task in
  // the same pass (no second Future relaying it an iteration later).
  return new IoFuture<void>(loop, sock, CONNECT, address, 0, 0).start(true);
}

// A Future that failed already: what an operation that failed at once returns.
function failed(loop: IoLoop, error: unknown): Future<void> {
  const future = new Future<void>(loop);
  future.setException(error);
  return future;
}

/**
 * Accepts a connection; resolves with a non-blocking Socket and the peer's address.
 */
export function sockAccept(loop: IoLoop, sock: Socket): Future<[Socket, SocketAddress]> {
  return new IoFuture<[Socket, SocketAddress]>(loop, sock, ACCEPT, null, 0, 0).start(false);
}
