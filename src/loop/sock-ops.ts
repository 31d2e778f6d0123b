/**
 * The loop's socket operations, all one template (asyncio's sock_*): try the
 * syscall at once; if it would block, wait for readiness and try again.
 * Each returns a Future; cancelling it stops the waiting.
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
import {
  OSError,
  type SendData,
  SO_ERROR,
  SOL_SOCKET,
  type Socket,
  type SocketAddress,
  WOULD_BLOCK,
} from '../sys/index.js';
import type { Handle } from './handle.js';

/** What the operations need of the loop. */
export interface IoLoop extends LoopLike {
  createFuture<T>(): Future<T>;
  addReader<A extends unknown[]>(fileobj: Socket, callback: (...args: A) => void, ...args: A): Handle;
  removeReader(fileobj: Socket): boolean;
  addWriter<A extends unknown[]>(fileobj: Socket, callback: (...args: A) => void, ...args: A): Handle;
  removeWriter(fileobj: Socket): boolean;
  /** True when the socket's last receive on this loop drained its queue (see the module doc). */
  recvDrained(sock: Socket): boolean;
  /** Sets or clears that hint (a short read or a send sets it). */
  markDrained(sock: Socket, drained: boolean): void;
}

const AGAIN = Symbol('again');
const EINPROGRESS = 115;
const EINTR = 4;

// The operations. One class with a kind, not a subclass per operation: the
// Future methods then see three shapes (Future, Task, IoFuture) and their
// property accesses stay polymorphic rather than megamorphic.
const RECV_INTO = 0;
const RECV = 1;
const SEND_ALL = 2;
const ACCEPT = 3;
const CONNECT = 4;
type Op = typeof RECV_INTO | typeof RECV | typeof SEND_ALL | typeof ACCEPT | typeof CONNECT;

/**
 * A socket operation in flight. {@link start} runs the attempt at once
 * (unless told the queue is empty) and, while it would block, again each
 * time the socket is ready; it stops watching once it settles or is
 * cancelled. An operation allocates its Future and, when it has to wait,
 * one reader or writer handle: its state lives in fields, not closures.
 */
class IoFuture<T> extends Future<T> {
  readonly #ioLoop: IoLoop;
  readonly #sock: Socket;
  readonly #op: Op;
  readonly #buffer: ArrayBufferView | null;
  readonly #offset: number | undefined;
  readonly #length: number | undefined;
  // RECV_INTO / RECV: the bytes asked for; SEND_ALL: the bytes sent so far.
  #count: number;
  readonly #address: SocketAddress | null;
  #handle: Handle | null = null;

  constructor(
    loop: IoLoop,
    sock: Socket,
    op: Op,
    buffer: ArrayBufferView | null = null,
    offset?: number,
    length?: number,
    address: SocketAddress | null = null,
  ) {
    super(loop);
    this.#ioLoop = loop;
    this.#sock = sock;
    this.#op = op;
    this.#buffer = buffer;
    this.#offset = offset;
    this.#length = length;
    this.#count = op === SEND_ALL || buffer === null ? 0 : (length ?? buffer.byteLength - (offset ?? 0));
    this.#address = address;
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
    const write = this.#op === SEND_ALL || this.#op === CONNECT;
    this.#handle = write
      ? this.#ioLoop.addWriter(this.#sock, onReady, this)
      : this.#ioLoop.addReader(this.#sock, onReady, this);
    return this;
  }

  override cancel(message?: string): boolean {
    if (!super.cancel(message)) return false;
    this.#unwatch();
    return true;
  }

  /** @internal The socket is ready (called by the loop): try again; done, wake the waiter at once. */
  retry(): void {
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
    this.#unwatch();
    this.resolveFromLoop(result as T);
  }

  // The syscall: its result, or AGAIN when it would block.
  #attempt(): unknown {
    const sock = this.#sock;
    switch (this.#op) {
      case RECV_INTO: {
        const n = sock.tryRecvInto(this.#buffer as ArrayBufferView, this.#offset, this.#length);
        if (n === WOULD_BLOCK) return AGAIN;
        // A short read drained the queue; 0 is EOF (nothing more will come).
        this.#ioLoop.markDrained(sock, n > 0 && n < this.#count);
        return n;
      }
      case RECV: {
        const buffer = this.#buffer as Buffer;
        const n = sock.tryRecvInto(buffer);
        if (n === WOULD_BLOCK) return AGAIN;
        this.#ioLoop.markDrained(sock, n > 0 && n < this.#count);
        // Copy a small result out rather than pin the whole buffer.
        return n < this.#count >>> 1 ? Buffer.from(buffer.subarray(0, n)) : buffer.subarray(0, n);
      }
      case SEND_ALL: {
        const bytes = this.#buffer as ArrayBufferView;
        const length = bytes.byteLength;
        while (this.#count < length) {
          const n = sock.trySend(bytes, this.#count);
          if (n === WOULD_BLOCK) return AGAIN;
          this.#count += n;
        }
        // What answers a message just sent is not here yet: the next
        // receive waits for readiness rather than try a recv that can only
        // say EAGAIN (see the module doc).
        this.#ioLoop.markDrained(sock, true);
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
        if (error !== 0) throw new OSError(error, 'connect', describeAddress(this.#address as SocketAddress));
        return undefined;
      }
    }
  }

  // Stop watching, unless another operation on the socket took over.
  #unwatch(): void {
    const handle = this.#handle;
    if (handle === null || handle.cancelled()) return;
    if (this.#op === SEND_ALL || this.#op === CONNECT) this.#ioLoop.removeWriter(this.#sock);
    else this.#ioLoop.removeReader(this.#sock);
  }
}

function onReady(future: IoFuture<unknown>): void {
  future.retry();
}

/** Receives up to `nbytes`; an empty Buffer means the peer closed. */
export function sockRecv(loop: IoLoop, sock: Socket, nbytes: number): Future<Buffer> {
  return new IoFuture<Buffer>(loop, sock, RECV, Buffer.allocUnsafe(nbytes)).start(loop.recvDrained(sock));
}

/** Receives into `buffer` (from `offset`, at most `length` bytes); resolves with the count, 0 at EOF. */
export function sockRecvInto(
  loop: IoLoop,
  sock: Socket,
  buffer: ArrayBufferView,
  offset?: number,
  length?: number,
): Future<number> {
  return new IoFuture<number>(loop, sock, RECV_INTO, buffer, offset, length).start(loop.recvDrained(sock));
}

/** Sends all of `data`, waiting for room as often as needed. */
export function sockSendAll(loop: IoLoop, sock: Socket, data: SendData): Future<void> {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return new IoFuture<void>(loop, sock, SEND_ALL, bytes).start(false);
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
  const future = loop.createFuture<void>();
  let rc: number;
  try {
    rc = sock.connectEx(address);
  } catch (error) {
    future.setException(error);
    return future;
  }
  if (rc === 0) {
    future.setResult(undefined);
    return future;
  }
  if (rc !== EINPROGRESS && rc !== EINTR) {
    future.setException(new OSError(rc, 'connect', describeAddress(address)));
    return future;
  }
  // Writable once the handshake ends; SO_ERROR then says how.
  const connected = new IoFuture<void>(loop, sock, CONNECT, null, undefined, undefined, address).start(true);
  connected.addDoneCallback((done) => {
    if (future.done()) return;
    if (done.cancelled()) future.cancel();
    else if (done.exception() !== null) future.setException(done.exception());
    else future.setResult(undefined);
  });
  future.addDoneCallback((done) => {
    if (done.cancelled()) connected.cancel();
  });
  return future;
}

/**
 * Accepts a connection; resolves with a non-blocking Socket and the peer's address.
 */
export function sockAccept(loop: IoLoop, sock: Socket): Future<[Socket, SocketAddress]> {
  return new IoFuture<[Socket, SocketAddress]>(loop, sock, ACCEPT).start(false);
}
