/**
 * The loop's socket operations, all one template (asyncio's sock_*): try the
 * syscall at once; if it would block, wait for readiness and try again.
 * Each returns a Future; cancelling it stops the waiting. (A send that
 * completes at once returns the loop's one shared done Future.)
 *
 * What waits is a {@link SockOp}: one per socket and direction, kept with
 * the fd's registration in the loop and reused from message to message. A
 * waiting operation thus costs one plain Future and a few field writes,
 * and the usual sequence -- a coroutine resumed by one receive starts the
 * next -- finds the op still in its slot and changes no interest at all.
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
 * receive replaces the first one (as asyncio's replaces its reader), which
 * stays pending.
 *
 * @module
 */
import type { CancelHook } from '../coro/future.js';
import { Future, type LoopLike } from '../coro/index.js';
import { RUN } from '../coro/types.js';
import { checkInt } from '../sys/args.js';
import {
  EALREADY,
  EINPROGRESS,
  EINTR,
  EISCONN,
  OSError,
  type SendData,
  SO_ERROR,
  SOL_SOCKET,
  type Socket,
  type SocketAddress,
} from '../sys/index.js';
import { native } from '../sys/native.js';
import type { IoSlots, Watcher } from './handle.js';
import { byteSize, describeAddress, MAX_IO, rangeLength, rangeStart, SMALL_SEND, utf8 } from './sock-args.js';

/** What the operations need of the loop. */
export interface IoLoop extends LoopLike {
  /**
   * The socket's {@link SockOp} for one direction, now its reader (or
   * writer): made once and kept with the fd's registration.
   *
   * @throws what addReader/addWriter throw for a socket the selector refuses
   */
  sockOp(sock: Socket, write: boolean): SockOp;
  /** Stops `watcher`'s watching, unless another reader (or writer) replaced it since. */
  unwatch(slots: IoSlots, write: boolean, watcher: Watcher): void;
  /** A done Future<void>, shared: what an operation that completed at once returns. */
  resolvedVoid(): Future<void>;
  /** True when the last receive on `fd` drained its queue (see the module doc). */
  recvDrained(fd: number): boolean;
  /** Sets or clears that hint (a short read or a send sets it). */
  markDrained(fd: number, drained: boolean): void;
}

const AGAIN = Symbol('again');

// What an operation does. The readers come first: kind >= SEND_ALL writes.
const RECV_INTO = 0;
const RECV = 1;
const ACCEPT = 2;
const SEND_ALL = 3;
const CONNECT = 4;
type Op = typeof RECV_INTO | typeof RECV | typeof SEND_ALL | typeof ACCEPT | typeof CONNECT;

/**
 * @internal A socket's operation in one direction: while armed, the fd's
 * reader (or writer). Each time the socket is ready it tries the syscall
 * again; once that completes it settles its Future and, unless the waiter
 * started the next operation meanwhile (re-arming it), stops watching.
 * Cancelling the Future stops it too (it is the Future's cancel hook).
 */
export class SockOp implements Watcher, CancelHook {
  /** The fd's registration, set by the loop when it watches for this op. */
  slots: IoSlots | null = null;
  /** The socket it works on (its fd's entry is found by number: the loop checks this is the same socket). */
  readonly sock: Socket;
  readonly #loop: IoLoop;
  readonly #write: boolean;
  // The operation in flight: its Future (null when idle or replaced), what
  // it does and on what. RECV_INTO / RECV: the buffer; SEND_ALL: the bytes;
  // CONNECT: the address. RECV_INTO / RECV receive into [#offset, #end);
  // SEND_ALL sends [#offset, #end), #offset advancing as it goes.
  #future: Future<never> | null = null;
  #kind: Op = RECV_INTO;
  #target: ArrayBufferView | SocketAddress | null = null;
  #offset = 0;
  #end = 0;

  constructor(loop: IoLoop, sock: Socket, write: boolean) {
    this.#loop = loop;
    this.sock = sock;
    this.#write = write;
  }

  /**
   * Waits for readiness to do `kind` for `future` (replacing an operation
   * still pending: that one's Future stays pending, as a replaced reader's
   * would). Offsets are numbers, checked by the caller.
   */
  arm(
    future: Future<never>,
    kind: Op,
    target: ArrayBufferView | SocketAddress | null,
    offset: number,
    end: number,
  ): void {
    this.#future = future;
    this.#kind = kind;
    this.#target = target;
    this.#offset = offset;
    this.#end = end;
    future.setCancelHook(this);
  }

  /** @internal The socket is ready: try again; done, wake the waiter now, in this pass. */
  [RUN](): void {
    const future = this.#future;
    if (future === null) return;
    let result: unknown;
    try {
      result = this.#attempt();
    } catch (error) {
      this.#future = null;
      this.#stop();
      future.setException(error);
      return;
    }
    if (result === AGAIN) return;
    this.#future = null;
    try {
      future.resolveFromLoop(result as never);
    } finally {
      // The waiter usually armed this op again for its next message: then
      // it keeps its slot and nothing changes.
      if (this.#future === null) this.#stop();
    }
  }

  /** @internal Another reader or writer replaced it, or the fd's watch ended: its Future stays pending. */
  disarm(): void {
    this.#future = null;
  }

  /** @internal Its Future was cancelled: stop, unless a later operation replaced it. */
  futureCancelled(future: Future<unknown>): void {
    if (this.#future !== future) return;
    this.#future = null;
    this.#stop();
  }

  #stop(): void {
    const slots = this.slots;
    if (slots !== null) this.#loop.unwatch(slots, this.#write, this);
  }

  // The syscall: its result, or AGAIN when it would block.
  #attempt(): unknown {
    const sock = this.sock;
    switch (this.#kind) {
      case RECV_INTO:
        return recvInto(this.#loop, sock, this.#target as ArrayBufferView, this.#offset, this.#end - this.#offset);
      case RECV:
        return recv(this.#loop, sock, this.#target as Buffer, this.#end);
      case SEND_ALL: {
        this.#offset = sendUpTo(sock, this.#target as ArrayBufferView, this.#offset, this.#end);
        if (this.#offset < this.#end) return AGAIN;
        sentAll(this.#loop, sock);
        return undefined;
      }
      case ACCEPT:
        return accept(sock);
      case CONNECT: {
        const error = sock.getsockopt(SOL_SOCKET, SO_ERROR) as number;
        if (error === EINPROGRESS) return AGAIN;
        if (error !== 0) throw new OSError(error, 'connect', describeAddress(this.#target as SocketAddress));
        return undefined;
      }
    }
  }
}

// One receive into [offset, offset + count): the count, or AGAIN.
function recvInto(
  loop: IoLoop,
  sock: Socket,
  buffer: ArrayBufferView,
  offset: number,
  count: number,
): number | typeof AGAIN {
  const fd = sock.fileno();
  const n = native.tryRecv(fd, buffer, offset, count);
  if (n === null) return AGAIN;
  // A short read drained the queue; 0 is EOF (nothing more will come).
  loop.markDrained(fd, n > 0 && n < count);
  return n;
}

// One receive into a new buffer of `count` bytes: the bytes, or AGAIN.
function recv(loop: IoLoop, sock: Socket, buffer: Buffer, count: number): Buffer | typeof AGAIN {
  const n = recvInto(loop, sock, buffer, 0, count);
  if (n === AGAIN) return AGAIN;
  // Copy a small result out rather than pin the whole buffer.
  return n < count >>> 1 ? Buffer.from(buffer.subarray(0, n)) : buffer.subarray(0, n);
}

function accept(sock: Socket): [Socket, SocketAddress] | typeof AGAIN {
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

// A Future that completed at once.
function resolved<T>(loop: IoLoop, value: T): Future<T> {
  const future = new Future<T>(loop);
  future.setResult(value);
  return future;
}

// Waits for `sock` to be ready for `kind`, then does it for the Future
// returned. A function of its own on purpose: V8 optimises it by itself, with
// `new Future` inlined; inlined into a caller that has no inlining budget
// left (a coroutine), that `new` would go through the generic construct
// stub, about 200 instructions more per receive.
function waitFor<T>(
  loop: IoLoop,
  sock: Socket,
  kind: Op,
  target: ArrayBufferView | SocketAddress | null,
  offset: number,
  end: number,
): Future<T> {
  const future = new Future<T>(loop);
  loop.sockOp(sock, kind >= SEND_ALL).arm(future as Future<never>, kind, target, offset, end);
  return future;
}

/**
 * Receives up to `nbytes`; an empty Buffer means the peer closed.
 *
 * @throws {TypeError} / {RangeError} when nbytes is not an integer in [0, 2^31 - 1]
 */
export function sockRecv(loop: IoLoop, sock: Socket, nbytes: number): Future<Buffer> {
  checkInt(nbytes, 'nbytes', 0, MAX_IO);
  const buffer = Buffer.allocUnsafe(nbytes);
  if (!drained(loop, sock)) {
    let bytes: Buffer | typeof AGAIN;
    try {
      bytes = recv(loop, sock, buffer, nbytes);
    } catch (error) {
      return failed(loop, error);
    }
    if (bytes !== AGAIN) return resolved(loop, bytes);
  }
  return waitFor<Buffer>(loop, sock, RECV, buffer, 0, nbytes);
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
  // Fast path 1 (the drained hint, see the module doc): after a short read
  // or a send, wait first rather than try a recv that can only say EAGAIN.
  if (!drained(loop, sock)) {
    let n: number | typeof AGAIN;
    try {
      n = recvInto(loop, sock, buffer, start, count);
    } catch (error) {
      return failed(loop, error);
    }
    if (n !== AGAIN) return resolved(loop, n);
  }
  // Fast path 2: the socket's reusable op waits (usually still its reader
  // from the last message); one plain Future is all this receive allocates.
  return waitFor<number>(loop, sock, RECV_INTO, buffer, start, start + count);
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
  const bytes = typeof data === 'string' ? utf8(data, offset, length) : data;
  const size = byteSize(bytes);
  const start = rangeStart(size, offset);
  const end = start + rangeLength(size, start, length);
  // Fast path: tried here, before any Future exists. A send that completes
  // at once (the usual case) returns the loop's shared done Future and
  // allocates nothing.
  let sent: number;
  try {
    sent = sendUpTo(sock, bytes, start, end);
  } catch (error) {
    return failed(loop, error);
  }
  if (sent === end) {
    // The answer has not come yet: the next receive waits first.
    loop.markDrained(sock.fileno(), true);
    return loop.resolvedVoid();
  }
  return sendRest(loop, sock, bytes, data !== bytes || end - start > SMALL_SEND, sent, end);
}

// The rest of a send that has to wait. A send of at most SMALL_SEND bytes
// lets go of the caller's bytes now: the rest is copied, so the caller may
// reuse its buffer at once (one receive buffer for all connections, as C
// servers have). A larger send refers to the caller's bytes until it is
// done (`keep`: so is one whose bytes are ours already, from a string).
function sendRest(
  loop: IoLoop,
  sock: Socket,
  bytes: ArrayBufferView,
  keep: boolean,
  sent: number,
  end: number,
): Future<void> {
  if (keep) return waitFor<void>(loop, sock, SEND_ALL, bytes, sent, end);
  const rest = Buffer.from(new Uint8Array(bytes.buffer, bytes.byteOffset + sent, end - sent));
  return waitFor<void>(loop, sock, SEND_ALL, rest, 0, rest.length);
}

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
  // Writable once the handshake ends; SO_ERROR then says how. Woken by
  // readiness, the op resumes the connecting Task in the same pass.
  return waitFor<void>(loop, sock, CONNECT, address, 0, 0);
}

// A Future that failed already: what an operation that failed at once returns.
function failed<T = void>(loop: IoLoop, error: unknown): Future<T> {
  const future = new Future<T>(loop);
  future.setException(error);
  return future;
}

/**
 * Accepts a connection; resolves with a non-blocking Socket and the peer's address.
 */
export function sockAccept(loop: IoLoop, sock: Socket): Future<[Socket, SocketAddress]> {
  let result: [Socket, SocketAddress] | typeof AGAIN;
  try {
    result = accept(sock);
  } catch (error) {
    return failed(loop, error) as Future<never>;
  }
  if (result !== AGAIN) return resolved(loop, result);
  return waitFor<[Socket, SocketAddress]>(loop, sock, ACCEPT, null, 0, 0);
}
