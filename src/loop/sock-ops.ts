/**
 * The loop's socket operations, all one template (asyncio's sock_*): try the
 * syscall at once; if it would block, wait for readiness and try again.
 * Each returns a Future; cancelling it stops the waiting.
 *
 * One refinement for receives: a short read (fewer bytes than asked) means
 * the socket's receive queue was empty, so the next receive on that socket
 * skips the attempt that could only say EAGAIN and waits for readiness
 * straight away -- in request/response traffic that is one syscall saved per
 * message, and (interest changes being batched) the wait costs none.
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
  addReader(fileobj: Socket, callback: () => void): Handle;
  removeReader(fileobj: Socket): boolean;
  addWriter(fileobj: Socket, callback: () => void): Handle;
  removeWriter(fileobj: Socket): boolean;
}

const AGAIN = Symbol('again');
const EINPROGRESS = 115;
const EINTR = 4;

// Sockets whose last receive was short (their queue was drained then).
const drained = new WeakSet<Socket>();

/**
 * Runs `attempt` now (unless `waitFirst`) and, while it says AGAIN, each
 * time `sock` is ready. Allocates nothing beyond the result when the first
 * attempt succeeds.
 */
function whenReady<T>(
  loop: IoLoop,
  sock: Socket,
  write: boolean,
  attempt: () => T | typeof AGAIN,
  waitFirst = false,
): Future<T> {
  if (!waitFirst) {
    let result: T | typeof AGAIN;
    try {
      result = attempt();
    } catch (error) {
      const failed = loop.createFuture<T>();
      failed.setException(error);
      return failed;
    }
    if (result !== AGAIN) {
      const done = loop.createFuture<T>();
      done.setResult(result);
      return done;
    }
  }
  return new IoFuture(loop, sock, write, attempt);
}

/**
 * A pending socket operation: retries its attempt each time the socket is
 * ready, and stops watching once it settles or is cancelled.
 */
class IoFuture<T> extends Future<T> {
  readonly #ioLoop: IoLoop;
  readonly #sock: Socket;
  readonly #write: boolean;
  readonly #attempt: () => T | typeof AGAIN;
  readonly #handle: Handle;

  constructor(loop: IoLoop, sock: Socket, write: boolean, attempt: () => T | typeof AGAIN) {
    super(loop);
    this.#ioLoop = loop;
    this.#sock = sock;
    this.#write = write;
    this.#attempt = attempt;
    const onReady = (): void => this.#onReady();
    this.#handle = write ? loop.addWriter(sock, onReady) : loop.addReader(sock, onReady);
  }

  override cancel(message?: string): boolean {
    if (!super.cancel(message)) return false;
    this.#unwatch();
    return true;
  }

  #onReady(): void {
    if (this.done()) return;
    let result: T | typeof AGAIN;
    try {
      result = this.#attempt();
    } catch (error) {
      this.#unwatch();
      this.setException(error);
      return;
    }
    if (result === AGAIN) return;
    this.#unwatch();
    this.setResult(result);
  }

  // Stop watching, unless another operation on the socket took over.
  #unwatch(): void {
    if (this.#handle.cancelled()) return;
    if (this.#write) this.#ioLoop.removeWriter(this.#sock);
    else this.#ioLoop.removeReader(this.#sock);
  }
}

/** Receives up to `nbytes`; an empty Buffer means the peer closed. */
export function sockRecv(loop: IoLoop, sock: Socket, nbytes: number): Future<Buffer> {
  const buffer = Buffer.allocUnsafe(nbytes);
  return whenReady(
    loop,
    sock,
    false,
    () => {
      const n = sock.tryRecvInto(buffer);
      if (n === WOULD_BLOCK) return AGAIN;
      noteRead(sock, n, nbytes);
      return n < nbytes >>> 1 ? Buffer.from(buffer.subarray(0, n)) : buffer.subarray(0, n);
    },
    drained.has(sock),
  );
}

function noteRead(sock: Socket, n: number, asked: number): void {
  // 0 is EOF (nothing more will come); a short read drained the queue.
  if (n > 0 && n < asked) drained.add(sock);
  else drained.delete(sock);
}

/** Receives into `buffer` (from `offset`, at most `length` bytes); resolves with the count, 0 at EOF. */
export function sockRecvInto(
  loop: IoLoop,
  sock: Socket,
  buffer: ArrayBufferView,
  offset?: number,
  length?: number,
): Future<number> {
  const asked = length ?? buffer.byteLength - (offset ?? 0);
  return whenReady(
    loop,
    sock,
    false,
    () => {
      const n = sock.tryRecvInto(buffer, offset, length);
      if (n === WOULD_BLOCK) return AGAIN;
      noteRead(sock, n, asked);
      return n;
    },
    drained.has(sock),
  );
}

/** Sends all of `data`, waiting for room as often as needed. */
export function sockSendAll(loop: IoLoop, sock: Socket, data: SendData): Future<void> {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const length = bytes.byteLength;
  let sent = 0;
  return whenReady(loop, sock, true, () => {
    while (sent < length) {
      const n = sock.trySend(bytes, sent);
      if (n === WOULD_BLOCK) return AGAIN;
      sent += n;
    }
    return undefined;
  });
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
  const connected = whenReady(loop, sock, true, () => {
    const error = sock.getsockopt(SOL_SOCKET, SO_ERROR);
    if (error === EINPROGRESS) return AGAIN;
    if (error !== 0) throw new OSError(error, 'connect', describeAddress(address));
    return undefined;
  });
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
  return whenReady(loop, sock, false, () => {
    const conn = sock.tryAccept(true);
    if (conn === null) return AGAIN;
    let address: SocketAddress = '';
    try {
      address = conn.getpeername();
    } catch {
      // Reset before we looked (ENOTCONN): the first recv will say so.
    }
    return [conn, address] as [Socket, SocketAddress];
  });
}
