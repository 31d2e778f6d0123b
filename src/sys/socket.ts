/**
 * Sockets with Python's `socket.socket` methods, on one native fd each.
 *
 * @module
 */
import { checkInt, invalidArgType, outOfRange } from './args.js';
import type { NativeSocket } from './binding.js';
import { AF_UNIX, SOCK_STREAM } from './constants.js';
import { OSError } from './errors.js';
import { native } from './native.js';

const EBADF = native.constants['EBADF'] as number;

/** An IPv4 address: `['127.0.0.1', 8080]`. Hosts are numeric: resolve names first. */
export type IPv4Address = [host: string, port: number];
/** An IPv6 address: `['::1', 8080, flowinfo?, scopeId?]`. */
export type IPv6Address = [host: string, port: number, flowinfo?: number, scopeId?: number];
/** A Unix socket path; a leading `'\0'` names the abstract namespace; `''` is unnamed. */
export type UnixAddress = string;
/** Any address a {@link Socket} takes or returns. */
export type SocketAddress = IPv4Address | IPv6Address | UnixAddress;
/** Bytes to send: a Buffer or any typed array / DataView; a string is sent as UTF-8. */
export type SendData = ArrayBufferView | string;

function toBytes(data: SendData): ArrayBufferView {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (!ArrayBuffer.isView(data)) throw invalidArgType('data', 'a string, Buffer, TypedArray or DataView', data);
  return data;
}

function closedError(syscall: string): OSError {
  return new OSError(EBADF, syscall, '(the socket is closed)');
}

function checkBuffer(buf: ArrayBufferView): void {
  if (!ArrayBuffer.isView(buf)) throw invalidArgType('buffer', 'an instance of Buffer, TypedArray or DataView', buf);
}

// Set while wrapping a native socket made by accept()/socketpair()/fromFd().
let adopting: NativeSocket | undefined;

function wrap(nativeSocket: NativeSocket): Socket {
  adopting = nativeSocket;
  try {
    return new Socket(0, 0);
  } finally {
    adopting = undefined;
  }
}

/**
 * A socket, with the methods of Python's `socket.socket`. Blocking by
 * default; after `setBlocking(false)` an operation that would block throws
 * {@link BlockingIOError} (`code` 'EAGAIN', or 'EINPROGRESS' from connect),
 * exactly where Python raises it. The `try*` methods return
 * {@link WOULD_BLOCK} (-1) instead of throwing, for event loops.
 *
 * Every fd is CLOEXEC; sends use MSG_NOSIGNAL (a closed peer is EPIPE, never
 * SIGPIPE). The fd is closed by {@link close}, `using`, or when collected.
 *
 * @example
 * ```ts
 * const sock = new Socket(AF_INET, SOCK_STREAM);
 * sock.setBlocking(false);
 * try { sock.connect(['127.0.0.1', 8080]); }
 * catch (e) { if (!(e instanceof BlockingIOError)) throw e; }
 * select([], [sock], [], 1000);
 * sock.sendAll('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
 * ```
 */
export class Socket implements Disposable {
  readonly #native: NativeSocket;
  // The fd while open, -1 once closed or detached: the hot try* methods use
  // it directly (no native object lookup) and it is what keeps them from
  // acting on an fd number the kernel has since given to someone else.
  #fd: number;

  /**
   * @param family - AF_INET, AF_INET6 or AF_UNIX
   * @param type - SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET or SOCK_RAW, optionally | SOCK_NONBLOCK
   * @param proto - protocol number, 0 for the default
   * @throws {RangeError} for an unknown family or type
   * @throws {OSError} when the kernel refuses (EMFILE, EPROTONOSUPPORT...)
   */
  constructor(family: number, type: number, proto = 0) {
    if (adopting !== undefined) {
      this.#native = adopting;
      adopting = undefined;
    } else {
      this.#native = new native.Socket(family, type, proto);
    }
    this.#fd = this.#native.fileno();
  }

  /**
   * A Socket on a CLOEXEC duplicate of `fd` (like Python's `socket.fromfd`):
   * the caller still owns, and must close, the original fd.
   *
   * @throws {OSError} EBADF when fd is not open; ENOTSOCK when it is no socket
   */
  static fromFd(fd: number): Socket {
    return wrap(native.Socket.fromFd(fd));
  }

  /** The fd. @throws {OSError} EBADF when closed */
  fileno(): number {
    // Answered here, without a native call: event loops ask on every operation.
    if (this.#fd < 0) throw closedError('fileno');
    return this.#fd;
  }

  /** AF_INET, AF_INET6 or AF_UNIX. */
  get family(): number {
    return this.#native.family;
  }

  /** SOCK_STREAM, SOCK_DGRAM... (without SOCK_NONBLOCK/SOCK_CLOEXEC). */
  get type(): number {
    return this.#native.type;
  }

  /** The protocol number. */
  get proto(): number {
    return this.#native.proto;
  }

  /** True once closed or detached. */
  get closed(): boolean {
    return this.#fd < 0;
  }

  /** Sets O_NONBLOCK off (`true`) or on (`false`). */
  setBlocking(flag: boolean): void {
    this.#native.setBlocking(flag);
  }

  /** False when O_NONBLOCK is set. */
  getBlocking(): boolean {
    return this.#native.getBlocking();
  }

  /**
   * Connects. On a non-blocking socket this throws BlockingIOError with
   * `code` 'EINPROGRESS': wait until writable, then read SO_ERROR.
   *
   * @throws {BlockingIOError} EINPROGRESS on a non-blocking socket
   * @throws {OSError} ECONNREFUSED, ENETUNREACH... with the address in the message
   * @throws {TypeError} for an address of the wrong shape or a host name
   */
  connect(address: SocketAddress): void {
    this.#native.connect(address);
  }

  /**
   * Connects without throwing for kernel errors, like Python's `connect_ex`.
   *
   * @returns 0 on success, else the (positive) errno, e.g. EINPROGRESS
   */
  connectEx(address: SocketAddress): number {
    return this.#native.connectEx(address);
  }

  /** Binds to `address` (`['127.0.0.1', 0]` for an ephemeral port). */
  bind(address: SocketAddress): void {
    this.#native.bind(address);
  }

  /** Listens, with `backlog` (default SOMAXCONN) pending connections. */
  listen(backlog?: number): void {
    this.#native.listen(backlog);
  }

  /**
   * Accepts a connection. The new socket is blocking, as in Python.
   *
   * @throws {BlockingIOError} EAGAIN on a non-blocking socket with none pending
   */
  accept(): [Socket, SocketAddress] {
    const [conn, address] = this.#native.accept();
    return [wrap(conn), address as SocketAddress];
  }

  /**
   * Accepts without throwing when none is pending.
   *
   * @param nonBlocking - make the new socket non-blocking (default true)
   * @returns the new socket, or `null` when it would block
   */
  tryAccept(nonBlocking = true): Socket | null {
    const conn = this.#native.tryAccept(nonBlocking);
    return conn === null ? null : wrap(conn);
  }

  /**
   * Receives up to `bufsize` bytes; an empty Buffer means the peer closed.
   *
   * @throws {BlockingIOError} EAGAIN on a non-blocking socket with no data
   */
  recv(bufsize: number, flags = 0): Buffer {
    checkInt(bufsize, 'bufsize', 0, 0x7fffffff);
    const buf = Buffer.allocUnsafe(bufsize);
    const n = this.#native.recvInto(buf, 0, bufsize, flags);
    // Copy a short read out of a large allocation rather than pin all of it.
    return n < bufsize >>> 1 ? Buffer.from(buf.subarray(0, n)) : buf.subarray(0, n);
  }

  /**
   * Receives into `buffer`, like Python's `recv_into`.
   *
   * @param nbytes - at most this many bytes (0: the whole buffer)
   * @returns bytes received; 0 means the peer closed
   */
  recvInto(buffer: ArrayBufferView, nbytes = 0, flags = 0): number {
    checkBuffer(buffer);
    return this.#native.recvInto(buffer, 0, nbytes === 0 ? undefined : nbytes, flags);
  }

  /**
   * Non-throwing receive for event loops (MSG_DONTWAIT: never blocks, even
   * on a blocking socket).
   *
   * @param offset - byte offset into buffer (default 0)
   * @param length - bytes at most (default: to the end)
   * @returns bytes received, 0 at EOF, or WOULD_BLOCK (-1)
   */
  tryRecvInto(buffer: ArrayBufferView, offset?: number, length?: number): number {
    if (this.#fd < 0) throw closedError('recv');
    return native.sockRecv(this.#fd, buffer, offset, length);
  }

  /** Receives a datagram: `[data, senderAddress]`. */
  recvfrom(bufsize: number, flags = 0): [Buffer, SocketAddress | null] {
    checkInt(bufsize, 'bufsize', 0, 0x7fffffff);
    const buf = Buffer.allocUnsafe(bufsize);
    const [n, address] = this.#native.recvFromInto(buf, 0, bufsize, flags);
    return [Buffer.from(buf.subarray(0, n)), address as SocketAddress | null];
  }

  /** Receives a datagram into `buffer`: `[bytes, senderAddress]`. */
  recvfromInto(buffer: ArrayBufferView, nbytes = 0, flags = 0): [number, SocketAddress | null] {
    checkBuffer(buffer);
    const [n, address] = this.#native.recvFromInto(buffer, 0, nbytes === 0 ? undefined : nbytes, flags);
    return [n, address as SocketAddress | null];
  }

  /**
   * Sends what the kernel takes now.
   *
   * @returns bytes sent (may be fewer than given)
   * @throws {BlockingIOError} EAGAIN on a non-blocking socket with a full buffer
   * @throws {OSError} EPIPE, ECONNRESET when the peer is gone
   */
  send(data: SendData, flags = 0): number {
    return this.#native.send(toBytes(data), undefined, undefined, flags);
  }

  /**
   * Non-throwing send for event loops (MSG_DONTWAIT).
   *
   * @returns bytes sent, or WOULD_BLOCK (-1)
   */
  trySend(buffer: ArrayBufferView, offset?: number, length?: number): number {
    if (this.#fd < 0) throw closedError('send');
    return native.sockSend(this.#fd, buffer, offset, length);
  }

  /**
   * Sends all of `data`, blocking as needed.
   *
   * @throws {BlockingIOError} on a non-blocking socket whose buffer fills;
   *   the message says how many bytes went out
   */
  sendAll(data: SendData, flags = 0): void {
    this.#native.sendAll(toBytes(data), undefined, undefined, flags);
  }

  /** Sends a datagram to `address`. @returns bytes sent */
  sendto(data: SendData, address: SocketAddress, flags = 0): number {
    return this.#native.sendTo(toBytes(data), undefined, undefined, flags, address);
  }

  /** Shuts down reading (SHUT_RD), writing (SHUT_WR) or both (SHUT_RDWR). */
  shutdown(how: number): void {
    this.#native.shutdown(how);
  }

  /** Closes the fd; later calls raise EBADF. Idempotent. */
  close(): void {
    this.#fd = -1;
    this.#native.close();
  }

  /** Closes the object without closing the fd, and returns the fd (-1 if closed). */
  detach(): number {
    this.#fd = -1;
    return this.#native.detach();
  }

  /**
   * Sets an option: a number or boolean for int options, bytes otherwise.
   *
   * @throws {RangeError} for a level that is not SOL_SOCKET or IPPROTO_*
   * @throws {OSError} ENOPROTOOPT for an unknown option, EINVAL for a bad value
   */
  setsockopt(level: number, option: number, value: number | boolean | ArrayBufferView): void {
    this.#native.setsockopt(level, option, value);
  }

  /** Reads an int option (SO_ERROR, SO_RCVBUF, TCP_NODELAY...). */
  getsockopt(level: number, option: number): number;
  /** Reads an option as at most `buflen` (1..1024) bytes. */
  getsockopt(level: number, option: number, buflen: number): Buffer;
  getsockopt(level: number, option: number, buflen?: number): number | Buffer {
    return this.#native.getsockopt(level, option, buflen);
  }

  /** The local address. */
  getsockname(): SocketAddress {
    return this.#native.getsockname() as SocketAddress;
  }

  /** The peer's address. @throws {OSError} ENOTCONN when not connected */
  getpeername(): SocketAddress {
    return this.#native.getpeername() as SocketAddress;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * A connected pair of Unix sockets, like Python's `socket.socketpair()`.
 *
 * @param family - AF_UNIX (the only family Linux pairs)
 * @param type - SOCK_STREAM (default), SOCK_DGRAM or SOCK_SEQPACKET, optionally | SOCK_NONBLOCK
 * @throws {RangeError} for another family or type
 */
export function socketpair(family: number = AF_UNIX, type: number = SOCK_STREAM, proto = 0): [Socket, Socket] {
  if (family !== AF_UNIX) throw outOfRange('family', 'AF_UNIX', family);
  const [a, b] = native.socketpair(family, type, proto);
  return [wrap(a), wrap(b)];
}
