/**
 * Sockets with Python's `socket.socket` methods, on one native fd each.
 *
 * @module
 */

import type { SendData, SocketAddress } from './addresses.js';
import { checkInt, invalidArgType, outOfRange } from './args.js';
import { AF_INET, AF_INET6, AF_UNIX, EBADF, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_STREAM } from './constants.js';
import { OSError } from './errors.js';
import * as msg from './msg.js';
import { native } from './native.js';

export type { IPv4Address, IPv6Address, SendData, SocketAddress, UnixAddress } from './addresses.js';

function toBytes(data: SendData): ArrayBufferView {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (!ArrayBuffer.isView(data)) throw invalidArgType('data', 'a string, Buffer, TypedArray or DataView', data);
  return data;
}

function closedError(syscall: string): OSError {
  return new OSError(EBADF, syscall, '(the socket is closed)');
}

// `nbytes` of recvInto and friends, Python's way: 0 means the whole buffer;
// more than the buffer holds is an error. Checked only when given, so the
// usual call reads no byteLength.
function checkNbytes(buffer: ArrayBufferView, nbytes: number): number | undefined {
  if (nbytes === 0) return undefined;
  if (!ArrayBuffer.isView(buffer)) {
    throw invalidArgType('buffer', 'an instance of Buffer, TypedArray or DataView', buffer);
  }
  return checkInt(nbytes, 'nbytes', 0, buffer.byteLength);
}

// recv(bufsize) and recvfrom(bufsize) receive into this and copy out what
// came: a fresh bufsize Buffer per call (the notes' recv(65536)) cost more
// than the syscall. One per thread; a call never keeps it past its return.
const SCRATCH_BYTES = 64 * 1024;
let scratch: Buffer | null = null;

// Up to this size recv() allocates from Node's Buffer pool (half of it).
const SMALL_RECV = Buffer.poolSize >>> 1;

// The first n bytes of a receive, as a Buffer of their own: the scratch
// buffer is reused, and a short read must not pin a large allocation.
function copyOut(buf: Buffer, n: number): Buffer {
  if (buf !== scratch && n >= buf.length >>> 1) return n === buf.length ? buf : buf.subarray(0, n);
  const out = Buffer.allocUnsafe(n);
  buf.copy(out, 0, 0, n);
  return out;
}

function scratchFor(bufsize: number): Buffer {
  if (bufsize > SCRATCH_BYTES) return Buffer.allocUnsafe(bufsize);
  if (scratch === null) scratch = Buffer.allocUnsafeSlow(SCRATCH_BYTES);
  return scratch;
}

// accept and recvfrom return the address's host (or Unix path), and the rest
// of what they found in this array of the addon's (native/socket.cc).
const results = native.results;

/**
 * @internal The address accept or recvfrom found: the host (or path, or
 * null) the addon returned, and the rest from its results array.
 */
export function addressResult(host: string | null): SocketAddress | null {
  if (host === null) return null;
  const family = results[1];
  if (family === AF_INET) return [host, results[2] as number];
  if (family === AF_INET6)
    return [host, results[2] as number, (results[3] as number) >>> 0, (results[4] as number) >>> 0];
  return host;
}

// Sockets nobody closed are closed when collected. The registry holds a
// small record of the fd, never the Socket; close() and detach() set it to
// -1, so a collected Socket can never close a number the kernel has reused.
// (No unregister token: registering with one, and unregistering, cost about
// a microsecond per socket in V8 11; this costs about a third of that.)
interface FdRecord {
  fd: number;
}
const collector = new FinalizationRegistry<FdRecord>((record) => {
  if (record.fd < 0) return;
  try {
    native.closeSocket(record.fd);
  } catch {
    // Nobody to tell: the fd is released either way.
  }
});

// The fd the addon made (accept, socketpair, fromFd) that the next Socket
// constructed wraps, or -1: the constructor then makes a socket of its own.
let adopting = -1;

/**
 * @internal A Socket owning `fd`, a socket the kernel made outside the
 * addon's calls (an io_uring accept's result): no dup, no syscall.
 */
export function adoptSocketFd(fd: number, family: number, type: number, proto: number): Socket {
  return adopt(native.adoptSocket(fd), family, type, proto);
}

function adopt(fd: number, family: number, type: number, proto: number): Socket {
  adopting = fd;
  try {
    return new Socket(family, type, proto);
  } finally {
    adopting = -1;
  }
}

/**
 * A socket, with the methods of Python's `socket.socket`. Blocking by
 * default; after `setBlocking(false)` an operation that would block throws
 * {@link BlockingIOError} (`code` 'EAGAIN', or 'EINPROGRESS' from connect),
 * exactly where Python raises it. The `try*` methods return `null` instead
 * of throwing, for event loops, and never block.
 *
 * Names: a syscall keeps its C name (`sendto`, `recvfrom`, `setsockopt`);
 * what Python adds to it is camelCased (`sendAll`, `recvInto`,
 * `recvfromInto`, `setBlocking`, `connectEx`); `try` prefixes the same name.
 *
 * Every fd is CLOEXEC; sends use MSG_NOSIGNAL (a closed peer is EPIPE, never
 * SIGPIPE). The fd is closed by {@link close}, `using`, when the Socket is
 * collected, or when its worker ends. Each method is one call into the addon
 * with the fd: there is no native object per socket.
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
  // The fd while open, -1 once closed or detached: what keeps every method
  // from acting on an fd number the kernel has since given to someone else.
  #fd: number;
  // What the collector closes if this Socket is collected while open.
  readonly #record: FdRecord;
  #beforeClose: ((fd: number) => void)[] | null = null;
  readonly #family: number;
  readonly #type: number;
  readonly #proto: number;

  /**
   * @param family - AF_INET, AF_INET6 or AF_UNIX
   * @param type - SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET or SOCK_RAW, optionally | SOCK_NONBLOCK
   * @param proto - protocol number, 0 for the default
   * @throws {RangeError} for an unknown family or type
   * @throws {OSError} when the kernel refuses (EMFILE, EPROTONOSUPPORT...)
   */
  constructor(family: number, type: number, proto = 0) {
    if (adopting >= 0) {
      this.#fd = adopting;
      adopting = -1;
    } else {
      this.#fd = native.socket(family, type, proto);
    }
    this.#family = family;
    this.#type = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
    this.#proto = proto;
    this.#record = { fd: this.#fd };
    collector.register(this, this.#record);
  }

  /**
   * A Socket on a CLOEXEC duplicate of `fd` (like Python's `socket.fromfd`):
   * the caller still owns, and must close, the original fd.
   *
   * @throws {OSError} EBADF when fd is not open; ENOTSOCK when it is no socket
   */
  static fromFd(fd: number): Socket {
    const [dup, family, type, proto] = native.fromFd(fd);
    return adopt(dup, family, type, proto);
  }

  /** The fd. @throws {OSError} EBADF when closed */
  fileno(): number {
    if (this.#fd < 0) throw closedError('fileno');
    return this.#fd;
  }

  /** AF_INET, AF_INET6 or AF_UNIX. */
  get family(): number {
    return this.#family;
  }

  /** SOCK_STREAM, SOCK_DGRAM... (without SOCK_NONBLOCK/SOCK_CLOEXEC). */
  get type(): number {
    return this.#type;
  }

  /** The protocol number given when it was made (0 for the default). */
  get proto(): number {
    return this.#proto;
  }

  /** True once closed or detached. */
  get closed(): boolean {
    return this.#fd < 0;
  }

  #runBeforeClose(fd: number): void {
    const hooks = this.#beforeClose as ((fd: number) => void)[];
    this.#beforeClose = null;
    for (const hook of hooks) hook(fd);
  }

  // The fd for a syscall, or EBADF naming it.
  #open(syscall: string): number {
    const fd = this.#fd;
    if (fd < 0) throw closedError(syscall);
    return fd;
  }

  /** Sets O_NONBLOCK off (`true`) or on (`false`). @throws {TypeError} when flag is no boolean */
  setBlocking(flag: boolean): void {
    native.setBlocking(this.#open('fcntl'), flag);
  }

  /** False when O_NONBLOCK is set. */
  getBlocking(): boolean {
    return native.getBlocking(this.#open('fcntl'));
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
    native.connect(this.#open('connect'), this.#family, address);
  }

  /**
   * Connects without throwing for kernel errors, like Python's `connect_ex`.
   *
   * @returns 0 on success, else the (positive) errno, e.g. EINPROGRESS
   * @throws {TypeError} for an address of the wrong shape
   */
  connectEx(address: SocketAddress): number {
    return native.connectEx(this.#open('connect'), this.#family, address);
  }

  /** Binds to `address` (`['127.0.0.1', 0]` for an ephemeral port). */
  bind(address: SocketAddress): void {
    native.bind(this.#open('bind'), this.#family, address);
  }

  /** Listens, with `backlog` (default SOMAXCONN) pending connections. */
  listen(backlog?: number): void {
    native.listen(this.#open('listen'), backlog);
  }

  /**
   * Accepts a connection. The new socket is blocking, as in Python.
   *
   * @throws {BlockingIOError} EAGAIN on a non-blocking socket with none pending
   */
  accept(): [Socket, SocketAddress] {
    const host = native.accept(this.#open('accept'), false);
    const address = addressResult(host) as SocketAddress;
    return [adopt(results[0] as number, this.#family, this.#type, this.#proto), address];
  }

  /**
   * Accepts without throwing when none is pending (never blocks on a
   * non-blocking listening socket).
   *
   * @param nonBlocking - make the new socket non-blocking (default true)
   * @returns the new socket, or `null` when none is pending
   */
  tryAccept(nonBlocking = true): Socket | null {
    const conn = native.tryAccept(this.#open('accept'), nonBlocking);
    return conn === null ? null : adopt(conn, this.#family, this.#type, this.#proto);
  }

  /**
   * Receives up to `bufsize` bytes; an empty Buffer means the peer closed.
   *
   * @throws {BlockingIOError} EAGAIN on a non-blocking socket with no data
   * @throws {RangeError} when bufsize is not an integer in [0, 2^31 - 1]
   */
  recv(bufsize: number, flags = 0): Buffer {
    const fd = this.#open('recv');
    checkInt(bufsize, 'bufsize', 0, 0x7fffffff);
    if (bufsize <= SMALL_RECV) {
      // Node's pool serves this size: a Buffer of its own costs less than a copy.
      const own = Buffer.allocUnsafe(bufsize);
      const n = flags === 0 ? native.recv(fd, own) : native.recv(fd, own, 0, bufsize, flags);
      return n === bufsize ? own : own.subarray(0, n);
    }
    const buf = scratchFor(bufsize);
    return copyOut(buf, native.recv(fd, buf, 0, bufsize, flags));
  }

  /**
   * Receives into `buffer`, like Python's `recv_into`. To receive at an
   * offset, pass a view: `buf.subarray(offset)`.
   *
   * @param nbytes - at most this many bytes (0: the whole buffer)
   * @returns bytes received; 0 means the peer closed
   * @throws {BlockingIOError} EAGAIN on a non-blocking socket with no data
   * @throws {RangeError} when nbytes is negative or more than the buffer holds
   */
  recvInto(buffer: ArrayBufferView, nbytes = 0, flags = 0): number {
    const fd = this.#open('recv');
    if (nbytes === 0 && flags === 0) return native.recv(fd, buffer);
    return native.recv(fd, buffer, 0, checkNbytes(buffer, nbytes), flags);
  }

  /**
   * As {@link recvInto}, for event loops: never blocks (MSG_DONTWAIT, even
   * on a blocking socket) and returns `null` instead of throwing EAGAIN.
   *
   * @returns bytes received, 0 at EOF, or `null` when there is nothing to read
   */
  tryRecvInto(buffer: ArrayBufferView, nbytes = 0, flags = 0): number | null {
    const fd = this.#open('recv');
    if (nbytes === 0 && flags === 0) return native.tryRecv(fd, buffer);
    return native.tryRecv(fd, buffer, 0, checkNbytes(buffer, nbytes), flags);
  }

  /** Receives a datagram: `[data, senderAddress]`. */
  recvfrom(bufsize: number, flags = 0): [Buffer, SocketAddress | null] {
    const fd = this.#open('recvfrom');
    checkInt(bufsize, 'bufsize', 0, 0x7fffffff);
    const buf = scratchFor(bufsize);
    const address = addressResult(native.recvfrom(fd, buf, 0, bufsize, flags));
    return [copyOut(buf, results[0] as number), address];
  }

  /** Receives a datagram into `buffer`: `[bytes, senderAddress]`. */
  recvfromInto(buffer: ArrayBufferView, nbytes = 0, flags = 0): [number, SocketAddress | null] {
    const fd = this.#open('recvfrom');
    const address = addressResult(native.recvfrom(fd, buffer, 0, checkNbytes(buffer, nbytes), flags));
    return [results[0] as number, address];
  }

  /**
   * As {@link recvfrom}, for event loops: never blocks (MSG_DONTWAIT, even on
   * a blocking socket) and returns `null` instead of throwing EAGAIN.
   *
   * @param bufsize - at most this many bytes; the rest of a longer datagram is discarded (as recvfrom(2))
   * @returns `[data, senderAddress]` (the address is null for an unbound
   *   Unix sender), or `null` when no datagram is waiting
   * @throws {RangeError} when bufsize is not an integer in [0, 2^31 - 1]
   * @throws {OSError} what recvfrom(2) reports, e.g. ECONNREFUSED after an
   *   ICMP port unreachable on a connected UDP socket
   *
   * @example
   * ```ts
   * const got = sock.tryRecvfrom(2048);
   * if (got !== null) console.log(got[0].length, 'bytes from', got[1]);
   * ```
   */
  tryRecvfrom(bufsize: number, flags = 0): [Buffer, SocketAddress | null] | null {
    const fd = this.#open('recvfrom');
    checkInt(bufsize, 'bufsize', 0, 0x7fffffff);
    const buf = scratchFor(bufsize);
    const host = native.tryRecvfrom(fd, buf, 0, bufsize, flags);
    if (host === false) return null;
    const address = addressResult(host);
    return [copyOut(buf, results[0] as number), address];
  }

  /**
   * As {@link recvfromInto}, for event loops: never blocks (MSG_DONTWAIT)
   * and returns `null` instead of throwing EAGAIN.
   *
   * @param nbytes - at most this many bytes (0: the whole buffer)
   * @returns `[bytes, senderAddress]`, or `null` when no datagram is waiting
   * @throws {TypeError} when buffer is not a Buffer, TypedArray or DataView
   * @throws {RangeError} when nbytes is negative or more than the buffer holds
   */
  tryRecvfromInto(buffer: ArrayBufferView, nbytes = 0, flags = 0): [number, SocketAddress | null] | null {
    const fd = this.#open('recvfrom');
    const host = native.tryRecvfrom(fd, buffer, 0, checkNbytes(buffer, nbytes), flags);
    if (host === false) return null;
    return [results[0] as number, addressResult(host)];
  }

  /**
   * Sends what the kernel takes now. To send part of a buffer, pass a view:
   * `buf.subarray(start, end)`.
   *
   * @returns bytes sent (may be fewer than given)
   * @throws {BlockingIOError} EAGAIN on a non-blocking socket with a full buffer
   * @throws {OSError} EPIPE, ECONNRESET when the peer is gone
   */
  send(data: SendData, flags = 0): number {
    const fd = this.#open('send');
    const bytes = toBytes(data);
    return flags === 0 ? native.send(fd, bytes) : native.send(fd, bytes, undefined, undefined, flags);
  }

  /**
   * As {@link send}, for event loops: never blocks (MSG_DONTWAIT) and
   * returns `null` instead of throwing EAGAIN.
   *
   * @returns bytes sent, or `null` when the socket's buffer is full
   */
  trySend(data: SendData, flags = 0): number | null {
    const fd = this.#open('send');
    const bytes = toBytes(data);
    return flags === 0 ? native.trySend(fd, bytes) : native.trySend(fd, bytes, undefined, undefined, flags);
  }

  /**
   * Sends all of `data`, blocking as needed.
   *
   * @throws {BlockingIOError} on a non-blocking socket whose buffer fills;
   *   the message says how many bytes went out
   */
  sendAll(data: SendData, flags = 0): void {
    const fd = this.#open('send');
    const bytes = toBytes(data);
    if (flags === 0) native.sendAll(fd, bytes);
    else native.sendAll(fd, bytes, undefined, undefined, flags);
  }

  /**
   * Sends a datagram to `address`, like Python's `sendto(data, address)`
   * or `sendto(data, flags, address)`.
   *
   * @returns bytes sent
   */
  sendto(data: SendData, address: SocketAddress): number;
  sendto(data: SendData, flags: number, address: SocketAddress): number;
  sendto(data: SendData, flagsOrAddress: number | SocketAddress, address?: SocketAddress): number {
    const fd = this.#open('sendto');
    const bytes = toBytes(data);
    if (address === undefined) return native.sendto(fd, this.#family, flagsOrAddress, bytes);
    return native.sendto(fd, this.#family, address, bytes, undefined, undefined, flagsOrAddress as number);
  }

  /**
   * As {@link sendto}, for event loops: never blocks (MSG_DONTWAIT, even on
   * a blocking socket) and returns `null` instead of throwing EAGAIN.
   *
   * @returns bytes sent, or `null` when the socket's send buffer is full
   * @throws {TypeError} when data is not bytes or a string, or the address
   *   does not fit the socket's family
   * @throws {OSError} what sendto(2) reports (EMSGSIZE, ECONNREFUSED, EISCONN...)
   */
  trySendto(data: SendData, address: SocketAddress): number | null;
  trySendto(data: SendData, flags: number, address: SocketAddress): number | null;
  trySendto(data: SendData, flagsOrAddress: number | SocketAddress, address?: SocketAddress): number | null {
    const fd = this.#open('sendto');
    const bytes = toBytes(data);
    if (address === undefined) return native.trySendto(fd, this.#family, flagsOrAddress, bytes);
    return native.trySendto(fd, this.#family, address, bytes, undefined, undefined, flagsOrAddress as number);
  }

  /** Shuts down reading (SHUT_RD), writing (SHUT_WR) or both (SHUT_RDWR). */
  shutdown(how: number): void {
    native.shutdown(this.#open('shutdown'), how);
  }

  /**
   * @internal Calls `hook` with the fd right before close(2) (or detach),
   * once: an io_uring loop cancels the requests that hold the file (they
   * would keep it open past close, and the peer would see no close).
   */
  addBeforeClose(hook: (fd: number) => void): void {
    if (this.#beforeClose === null) this.#beforeClose = [hook];
    else if (!this.#beforeClose.includes(hook)) this.#beforeClose.push(hook);
  }

  /** @internal Undoes {@link addBeforeClose}. */
  removeBeforeClose(hook: (fd: number) => void): void {
    const hooks = this.#beforeClose;
    if (hooks === null) return;
    const i = hooks.indexOf(hook);
    if (i >= 0) hooks.splice(i, 1);
    if (hooks.length === 0) this.#beforeClose = null;
  }

  /** Closes the fd; later calls raise EBADF. Idempotent. */
  close(): void {
    const fd = this.#fd;
    if (fd < 0) return;
    if (this.#beforeClose !== null) this.#runBeforeClose(fd);
    this.#fd = -1;
    this.#record.fd = -1;
    native.closeSocket(fd);
  }

  /** Closes the object without closing the fd, and returns the fd (-1 if closed). */
  detach(): number {
    const fd = this.#fd;
    if (fd < 0) return -1;
    if (this.#beforeClose !== null) this.#runBeforeClose(fd);
    this.#fd = -1;
    this.#record.fd = -1;
    native.detachSocket(fd);
    return fd;
  }

  /**
   * Sets an option: a number or boolean for int options, bytes otherwise.
   *
   * @throws {RangeError} for a level that is not SOL_SOCKET or IPPROTO_*
   * @throws {OSError} ENOPROTOOPT for an unknown option, EINVAL for a bad value
   */
  setsockopt(level: number, option: number, value: number | boolean | ArrayBufferView): void {
    native.setsockopt(this.#open('setsockopt'), level, option, value);
  }

  /** Reads an int option (SO_ERROR, SO_RCVBUF, TCP_NODELAY...). */
  getsockopt(level: number, option: number): number;
  /** Reads an option as at most `buflen` (1..1024) bytes. */
  getsockopt(level: number, option: number, buflen: number): Buffer;
  getsockopt(level: number, option: number, buflen?: number): number | Buffer {
    return native.getsockopt(this.#open('getsockopt'), level, option, buflen);
  }

  /** The local address. */
  getsockname(): SocketAddress {
    return native.getsockname(this.#open('getsockname')) as SocketAddress;
  }

  /** The peer's address. @throws {OSError} ENOTCONN when not connected */
  getpeername(): SocketAddress {
    return native.getpeername(this.#open('getpeername')) as SocketAddress;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  // sendmsg / recvmsg with ancillary data: thin delegates to msg.ts, which
  // documents them in full.

  /**
   * Sends `buffers` as one message with control messages (Python's `sendmsg`).
   *
   * @returns bytes sent
   * @throws {BlockingIOError} EAGAIN on a non-blocking socket that is full
   * @throws {OSError} / {TypeError} / {RangeError} as {@link msg.sendmsg}
   */
  sendmsg(
    buffers: readonly SendData[],
    ancdata?: readonly msg.Ancillary[],
    flags?: number,
    address?: SocketAddress | null,
  ): number {
    return msg.sendmsg(this, buffers, ancdata, flags, address);
  }

  /**
   * As {@link sendmsg}, never blocking.
   *
   * @returns bytes sent, or `null` when it would block
   * @throws {OSError} / {TypeError} / {RangeError} as {@link msg.sendmsg}
   */
  trySendmsg(
    buffers: readonly SendData[],
    ancdata?: readonly msg.Ancillary[],
    flags?: number,
    address?: SocketAddress | null,
  ): number | null {
    return msg.trySendmsg(this, buffers, ancdata, flags, address);
  }

  /**
   * Receives one message and its control messages (Python's `recvmsg`).
   *
   * @param ancbufsize - control buffer bytes (see {@link msg.CMSG_SPACE})
   * @returns `[data, ancdata, msgFlags, address]`
   * @throws {BlockingIOError} EAGAIN on a non-blocking socket with nothing to read
   * @throws {OSError} / {TypeError} / {RangeError} as {@link msg.recvmsg}
   */
  recvmsg(bufsize: number, ancbufsize?: number, flags?: number): msg.RecvmsgResult {
    return msg.recvmsg(this, bufsize, ancbufsize, flags);
  }

  /**
   * As {@link recvmsg}, never blocking.
   *
   * @returns the result, or `null` when it would block
   * @throws {OSError} / {TypeError} / {RangeError} as {@link msg.recvmsg}
   */
  tryRecvmsg(bufsize: number, ancbufsize?: number, flags?: number): msg.RecvmsgResult | null {
    return msg.tryRecvmsg(this, bufsize, ancbufsize, flags);
  }

  /**
   * Receives one message into `buffers` (Python's `recvmsg_into`).
   *
   * @returns `[nbytes, ancdata, msgFlags, address]`
   * @throws {BlockingIOError} EAGAIN on a non-blocking socket with nothing to read
   * @throws {OSError} / {TypeError} / {RangeError} as {@link msg.recvmsgInto}
   */
  recvmsgInto(buffers: readonly ArrayBufferView[], ancbufsize?: number, flags?: number): msg.RecvmsgIntoResult {
    return msg.recvmsgInto(this, buffers, ancbufsize, flags);
  }

  /**
   * As {@link recvmsgInto}, never blocking.
   *
   * @returns the result, or `null` when it would block
   * @throws {OSError} / {TypeError} / {RangeError} as {@link msg.recvmsgInto}
   */
  tryRecvmsgInto(
    buffers: readonly ArrayBufferView[],
    ancbufsize?: number,
    flags?: number,
  ): msg.RecvmsgIntoResult | null {
    return msg.tryRecvmsgInto(this, buffers, ancbufsize, flags);
  }

  /**
   * Sends `buffers` with `fds` attached (Python's `socket.send_fds`).
   *
   * @param fds - up to SCM_MAX_FD (253) fd numbers, objects with `fileno()`, or an Int32Array
   * @returns bytes sent
   * @throws {BlockingIOError} EAGAIN on a non-blocking socket that is full
   * @throws {OSError} / {TypeError} / {RangeError} as {@link msg.sendFds}
   */
  sendFds(buffers: readonly SendData[], fds: msg.FdList, flags?: number, address?: SocketAddress | null): number {
    return msg.sendFds(this, buffers, fds, flags, address);
  }

  /**
   * As {@link sendFds}, never blocking.
   *
   * @returns bytes sent, or `null` when it would block
   * @throws {OSError} / {TypeError} / {RangeError} as {@link msg.sendFds}
   */
  trySendFds(
    buffers: readonly SendData[],
    fds: msg.FdList,
    flags?: number,
    address?: SocketAddress | null,
  ): number | null {
    return msg.trySendFds(this, buffers, fds, flags, address);
  }

  /**
   * Receives up to `bufsize` bytes and up to `maxFds` fds (Python's `socket.recv_fds`).
   *
   * @returns `[data, fds, msgFlags, address]`; the fds are CLOEXEC and the caller's to close
   * @throws {BlockingIOError} EAGAIN on a non-blocking socket with nothing to read
   * @throws {OSError} / {TypeError} / {RangeError} as {@link msg.recvFds}
   */
  recvFds(bufsize: number, maxFds: number, flags?: number): msg.RecvFdsResult {
    return msg.recvFds(this, bufsize, maxFds, flags);
  }

  /**
   * As {@link recvFds}, never blocking.
   *
   * @returns the result, or `null` when it would block
   * @throws {OSError} / {TypeError} / {RangeError} as {@link msg.recvFds}
   */
  tryRecvFds(bufsize: number, maxFds: number, flags?: number): msg.RecvFdsResult | null {
    return msg.tryRecvFds(this, bufsize, maxFds, flags);
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
  return [adopt(a, family, type, proto), adopt(b, family, type, proto)];
}
