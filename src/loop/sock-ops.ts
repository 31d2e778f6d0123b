/**
 * The loop's socket operations, all one template (asyncio's sock_*): try the
 * syscall at once; if it would block, wait for readiness and try again.
 * Each returns a Future; cancelling it stops the waiting.
 *
 * A socket should have one pending operation per direction: a second
 * receive replaces the first one's reader (as in asyncio).
 *
 * @module
 */
import type { Future } from '../coro/index.js';
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
export interface IoLoop {
  createFuture<T>(): Future<T>;
  addReader(fileobj: Socket, callback: () => void): Handle;
  removeReader(fileobj: Socket): boolean;
  addWriter(fileobj: Socket, callback: () => void): Handle;
  removeWriter(fileobj: Socket): boolean;
}

const AGAIN = Symbol('again');
const EINPROGRESS = 115;
const EINTR = 4;

/** Runs `attempt` now and, while it says AGAIN, each time `sock` is ready. */
function whenReady<T>(loop: IoLoop, sock: Socket, write: boolean, attempt: () => T | typeof AGAIN): Future<T> {
  const future = loop.createFuture<T>();
  const settle = (): boolean => {
    let result: T | typeof AGAIN;
    try {
      result = attempt();
    } catch (error) {
      future.setException(error);
      return true;
    }
    if (result === AGAIN) return false;
    future.setResult(result);
    return true;
  };
  if (settle()) return future;
  const onReady = (): void => {
    if (!future.done()) settle();
  };
  const handle = write ? loop.addWriter(sock, onReady) : loop.addReader(sock, onReady);
  // Done (or cancelled): stop watching, unless another operation took over.
  future.addDoneCallback(() => {
    if (handle.cancelled()) return;
    if (write) loop.removeWriter(sock);
    else loop.removeReader(sock);
  });
  return future;
}

/** Receives up to `nbytes`; an empty Buffer means the peer closed. */
export function sockRecv(loop: IoLoop, sock: Socket, nbytes: number): Future<Buffer> {
  const buffer = Buffer.allocUnsafe(nbytes);
  return whenReady(loop, sock, false, () => {
    const n = sock.tryRecvInto(buffer);
    if (n === WOULD_BLOCK) return AGAIN;
    return n < nbytes >>> 1 ? Buffer.from(buffer.subarray(0, n)) : buffer.subarray(0, n);
  });
}

/** Receives into `buffer` (from `offset`, at most `length` bytes); resolves with the count, 0 at EOF. */
export function sockRecvInto(
  loop: IoLoop,
  sock: Socket,
  buffer: ArrayBufferView,
  offset?: number,
  length?: number,
): Future<number> {
  return whenReady(loop, sock, false, () => {
    const n = sock.tryRecvInto(buffer, offset, length);
    return n === WOULD_BLOCK ? AGAIN : n;
  });
}

/** Sends all of `data`, waiting for room as often as needed. */
export function sockSendAll(loop: IoLoop, sock: Socket, data: SendData): Future<void> {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const view = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let sent = 0;
  return whenReady(loop, sock, true, () => {
    while (sent < view.length) {
      const n = sock.trySend(view, sent);
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
