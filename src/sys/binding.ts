/**
 * Loads the native addon (a prebuild from prebuilds/ when one matches, else
 * build/Release) and types every export in one interface, so a typo is a
 * compile error rather than a crash at run time.
 *
 * @internal
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * A native poll set. Its methods are bound to the native core (no lookup of
 * `this` per call); `events` is the first Int32Array over native memory that
 * `wait()` fills with (fd, revents) pairs. A register that outgrows it
 * returns the larger one that `wait()` fills from then on.
 */
/** An error the errno factory made: an OSError (errors.ts), by shape, so this file imports nothing of it. */
export type ErrnoError = Error & { readonly code: string; readonly errno: number; readonly syscall: string };

export interface NativePoll {
  /** op: 1 register (or change), 2 modify, 3 unregister; the new result array when it grew. */
  ctl(op: 1 | 2 | 3, fd: number, events: number): Int32Array | undefined;
  wait(timeoutMs: number): number;
  waitInto(timeoutMs: number, out: Int32Array): number;
  close(): void;
  size(): number;
  closed(): boolean;
  readonly events: Int32Array;
}

/**
 * A native epoll instance. Its methods are bound to the native core;
 * `events` is an Int32Array over native memory of `capacity` struct
 * epoll_event records that `wait()` fills.
 */
export interface NativeEpoll {
  fileno(): number;
  /** epoll_ctl; `tag` goes to the high 32 bits of the event's data, the fd to the low ones. */
  ctl(op: number, fd: number, events: number, quiet?: boolean, tag?: number): number;
  wait(timeoutMs: number): number;
  waitInto(timeoutMs: number, out: Int32Array): number;
  /** A new, empty epoll instance at the same fd number. */
  renew(): void;
  close(): void;
  closed(): boolean;
  readonly events: Int32Array;
}

/**
 * A native io_uring (native/uring.cc). Operations are staged as records of
 * 8 int32 in `sq` and submitted by one `submit` call, which leaves the
 * completions in `cq` (records of 4 int32).
 */
export interface NativeIoUring {
  submit(count: number, wait: boolean, timeoutMs: number, collect?: boolean): number;
  /** Writes a sockaddr of `family` to the arena at `offset`; returns its length. */
  writeAddress(family: number, address: unknown, offset: number): number;
  fileno(): number;
  /** [requests in flight, io_uring_enter calls, SQEs not yet taken by the kernel] */
  stats(): [number, number, number];
  close(): void;
  closed(): boolean;
  readonly sq: Int32Array;
  readonly cq: Int32Array;
  readonly arena: Buffer;
  readonly buffers: Buffer;
  readonly features: number;
  readonly sqEntries: number;
  readonly cqEntries: number;
}

/** A native select set: fd_sets kept in native memory (see {@link SelectSet}). */
export interface NativeSelectSet {
  ctl(fd: number, mask: number): void;
  wait(timeoutMs: number): number;
  close(): void;
  size(): number;
  readonly events: Int32Array;
}

/** Native getaddrinfo(3) on worker threads (see {@link Resolver}). */
export interface NativeResolver {
  fileno(): number;
  submit(id: number, host: string, service: string, family: number, socktype: number, flags: number): void;
  take(): [number, number, [number, number, number, unknown][], string, number][];
  close(): void;
}

/** libuv watching one fd for readability (see {@link FdWatcher}). */
export interface NativeFdWatcher {
  start(): void;
  stop(): void;
  ref(): void;
  unref(): void;
  close(): void;
}

/** A helper thread blocking in select/poll (see {@link WaitThread}). */
export interface NativeWaitThread {
  arm(pairs: Int32Array, keepAlive: boolean): void;
  disarm(): void;
  close(): void;
}

/** Signal dispositions and signal-driven I/O, reported through an eventfd (see {@link SignalWatch}). */
export interface NativeSignalWatch {
  fileno(): number;
  add(signo: number): void;
  remove(signo: number): boolean;
  setSignalDriven(fd: number, signo: number): void;
  clearSignalDriven(fd: number): boolean;
  /** Resets the eventfd; fills `events`: [0..1] pending signal bits, [2] overflow, [3] n, then n (fd, band) pairs. */
  drain(): number;
  close(): void;
  readonly events: Int32Array;
}

/** The options native/tls_context.cc reads (checked in tls.ts first). */
export interface NativeTlsContextOptions {
  server: boolean;
  reject: boolean;
  requestCert: boolean;
  /** 0 (OpenSSL's default: Node's TLS 1.2 floor), or a version number (0x0303 is TLS 1.2). */
  minVersion: number;
  maxVersion: number;
  /** PEM of the roots trusted when `ca` is absent. */
  roots?: string;
  ca?: string;
  cert?: string;
  key?: string;
  /** ALPN protocol names in wire format (length-prefixed). */
  alpn?: Buffer;
}

/** An opaque SSL_CTX (native/tls_context.cc). */
export type NativeTlsContext = object;

/** What a failed TLS operation left: an OpenSSL or verification error, or an errno. */
export interface NativeTlsFailure {
  code: string;
  message: string;
  errno: number;
}

/** What a handshake settled. */
export interface NativeTlsInfo {
  protocol: string;
  cipher: string | null;
  alpn: string | null;
  verifyError: string | null;
  verifyMessage: string | null;
  sessionReused: boolean;
  servername: string | null;
}

/** One SSL over a socket fd (native/tls_conn.cc). */
export interface NativeTlsConn {
  failure(): NativeTlsFailure;
  info(): NativeTlsInfo | null;
  peerCertificate(): Buffer | null;
  /** Plain bytes OpenSSL holds decrypted, not yet read. */
  pending(): number;
  /** From now on reads and writes pass MSG_DONTWAIT: never block, whatever O_NONBLOCK says. */
  dontWait(): void;
  /** Frees the SSL (idempotent); later operations fail with EBADF. */
  close(): void;
  /** What the tls* functions take to name it (a number: no object to unwrap per call). */
  id(): number;
}

/** A control message other than SCM_RIGHTS, as msg.cc takes and returns it. */
export interface NativeCmsg<D extends ArrayBufferView = ArrayBufferView> {
  readonly level: number;
  readonly type: number;
  readonly data: D;
}

/** recvmsg's result: [bytes, fds (SCM_RIGHTS), msgFlags, address or null, other control messages]. */
export type NativeRecvmsg = [number, number[], number, unknown, NativeCmsg<Buffer>[]];

export interface NativeBinding {
  init(errnoFactory: (errno: number, syscall: string, detail: string) => Error): void;
  readonly constants: Readonly<Record<string, number>>;
  syscallCount(): number;
  select(fds: Int32Array, nr: number, nw: number, nx: number, timeoutMs: number, out: Int32Array): number;
  createPoll(): NativePoll;
  createSelectSet(): NativeSelectSet;
  createResolver(): NativeResolver;
  /** The callback gets the OSError of a failed poll (made by the errno factory errors.ts installs). */
  FdWatcher: new (
    fd: number,
    callback: (error?: ErrnoError) => void,
  ) => NativeFdWatcher;
  WaitThread: new (callback: () => void) => NativeWaitThread;
  createEpoll(capacity: number): NativeEpoll;
  createIoUring(
    entries: number,
    completions: number,
    arenaBytes: number,
    bufferCount: number,
    bufferSize: number,
    flags: number,
  ): NativeIoUring;
  /** 0 when io_uring_setup(2) works here, else its errno. */
  uringAvailable(): number;
  /** Main thread only: a worker gets ERR_WORKER_UNSUPPORTED_OPERATION. */
  SignalWatch: new (
    capacity: number,
  ) => NativeSignalWatch;
  TlsContext: new (options: NativeTlsContextOptions) => NativeTlsContext;
  TlsConn: new (
    context: NativeTlsContext,
    fd: number,
    hostname?: string | null,
    sessionKey?: string | null,
  ) => NativeTlsConn;
  /** 0 when done; else tlsResults.WANT_READ / WANT_WRITE / FAILED. */
  tlsHandshake(conn: number): number;
  /** Bytes read, 0 at close_notify; else a tlsResults value. */
  tlsRead(conn: number, buf: ArrayBufferView, offset?: number, length?: number): number;
  /** Bytes written; else a tlsResults value. */
  tlsWrite(conn: number, buf: ArrayBufferView, offset?: number, length?: number): number;
  /** True when OpenSSL holds received bytes, decrypted or read ahead: a receive needs no readiness. */
  tlsHasPending(conn: number): boolean;
  /** 1 when both close_notify alerts went, 0 when ours went; else a tlsResults value. */
  tlsShutdown(conn: number): number;
  readonly tlsResults: { readonly WANT_READ: number; readonly WANT_WRITE: number; readonly FAILED: number };
  /** Puts iomux's handler back over any that replaced it; how many were. */
  verifySignals(): number;
  /** [kind, sa_flags]: kind 0 SIG_DFL, 1 SIG_IGN, 2 iomux's handler, 3 another handler. */
  signalDisposition(signo: number): [number, number];
  readonly SIGRTMIN: number;
  readonly SIGRTMAX: number;
  eventfd(initval?: number, flags?: number): number;
  pipe(flags?: number): [number, number];
  read(fd: number, buf: ArrayBufferView, offset?: number, length?: number): number;
  write(fd: number, buf: ArrayBufferView, offset?: number, length?: number): number;
  /** As read, but null for EAGAIN. */
  tryRead(fd: number, buf: ArrayBufferView, offset?: number, length?: number): number | null;
  /** As write, but null for EAGAIN. */
  tryWrite(fd: number, buf: ArrayBufferView, offset?: number, length?: number): number | null;
  close(fd: number): void;

  // Sockets, by fd (native/socket.cc). Every fd these make is owned by the
  // environment until closeSocket or detachSocket.
  socket(family: number, type: number, proto?: number): number;
  socketpair(family: number, type: number, proto?: number): [number, number];
  /** A CLOEXEC duplicate: [fd, family, type, proto]. */
  fromFd(fd: number): [number, number, number, number];
  /** Records a socket fd made outside the addon's calls (an io_uring accept) as owned. */
  adoptSocket(fd: number): number;
  closeSocket(fd: number): void;
  detachSocket(fd: number): void;
  /** recv(2); EAGAIN throws BlockingIOError. */
  recv(fd: number, buf: ArrayBufferView, offset?: number, length?: number, flags?: number): number;
  /** send(2) with MSG_NOSIGNAL; EAGAIN throws BlockingIOError. */
  send(fd: number, buf: ArrayBufferView, offset?: number, length?: number, flags?: number): number;
  /** recv(2) with MSG_DONTWAIT: bytes, 0 at EOF, null when it would block. */
  tryRecv(fd: number, buf: ArrayBufferView, offset?: number, length?: number, flags?: number): number | null;
  /** send(2) with MSG_DONTWAIT | MSG_NOSIGNAL: bytes, or null when it would block. */
  trySend(fd: number, buf: ArrayBufferView, offset?: number, length?: number, flags?: number): number | null;
  sendAll(fd: number, buf: ArrayBufferView, offset?: number, length?: number, flags?: number): void;
  /** recvfrom(2): the sender's host (or Unix path; null for none); the count and the rest in {@link results}. */
  recvfrom(fd: number, buf: ArrayBufferView, offset?: number, length?: number, flags?: number): string | null;
  sendto(
    fd: number,
    family: number,
    address: unknown,
    buf: ArrayBufferView,
    offset?: number,
    length?: number,
    flags?: number,
  ): number;
  /**
   * recvfrom(2) with MSG_DONTWAIT: as recvfrom, but `false` when it would
   * block (null is a sender without an address).
   */
  tryRecvfrom(
    fd: number,
    buf: ArrayBufferView,
    offset?: number,
    length?: number,
    flags?: number,
  ): string | null | false;
  /** sendto(2) with MSG_DONTWAIT | MSG_NOSIGNAL: bytes, or null when it would block. */
  trySendto(
    fd: number,
    family: number,
    address: unknown,
    buf: ArrayBufferView,
    offset?: number,
    length?: number,
    flags?: number,
  ): number | null;
  /**
   * recvmmsg(2) with MSG_DONTWAIT (native/mmsg.cc): up to `count` datagrams,
   * datagram i into `slab` at i * `slotSize` bytes, each described in `meta`
   * by a record of 24 int32s ([0] bytes, [1] family, [2] port, [3] flowinfo,
   * [4] scope id, [5] the IPv4 address in network order, [6] the length of
   * the host's text at byte 32 of the record, [7] 1 if truncated). The count
   * received, or `false` when none was waiting.
   */
  tryRecvmmsg(fd: number, slab: ArrayBufferView, slotSize: number, count: number, meta: Int32Array): number | false;
  /**
   * sendmmsg(2) with MSG_DONTWAIT | MSG_NOSIGNAL: `datagrams[start, start +
   * count)` to `addresses[i]` (null on a connected socket). How many the
   * kernel took, or null when the socket's buffer took none. An error on the
   * first throws; one after it ends the batch early.
   */
  trySendmmsg(
    fd: number,
    family: number,
    datagrams: readonly ArrayBufferView[],
    addresses: readonly unknown[],
    start: number,
    count: number,
  ): number | null;
  /** accept4(2): the peer's host (or Unix path); the fd and the rest in {@link results}. EAGAIN throws BlockingIOError. */
  accept(fd: number, nonBlocking: boolean): string;
  /**
   * What accept and recvfrom return besides their string: [0] the fd or
   * byte count, [1] the address family, [2] port, [3] flowinfo, [4] scope id.
   */
  readonly results: Int32Array;
  /** accept4(2): the fd, or null when none is pending. */
  tryAccept(fd: number, nonBlocking: boolean): number | null;
  setBlocking(fd: number, flag: boolean): void;
  getBlocking(fd: number): boolean;
  connect(fd: number, family: number, address: unknown): void;
  connectEx(fd: number, family: number, address: unknown): number;
  bind(fd: number, family: number, address: unknown): void;
  listen(fd: number, backlog?: number): void;
  shutdown(fd: number, how: number): void;
  setsockopt(fd: number, level: number, option: number, value: number | boolean | ArrayBufferView): void;
  getsockopt(fd: number, level: number, option: number, buflen?: number): number | Buffer;
  getsockname(fd: number): unknown;
  getpeername(fd: number): unknown;
  /**
   * sendmsg(2) with MSG_NOSIGNAL: bytes sent. `family` (the socket's) parses
   * `address`; undefined asks the kernel (SO_DOMAIN).
   */
  sendmsg(
    fd: number,
    buffers: readonly ArrayBufferView[],
    fds: Int32Array | readonly number[] | undefined,
    flags: number,
    address: unknown,
    family: number | undefined,
    ancdata: readonly NativeCmsg[] | undefined,
  ): number;
  /** As sendmsg, with MSG_DONTWAIT: null when it would block. */
  trySendmsg(
    fd: number,
    buffers: readonly ArrayBufferView[],
    fds: Int32Array | readonly number[] | undefined,
    flags: number,
    address: unknown,
    family: number | undefined,
    ancdata: readonly NativeCmsg[] | undefined,
  ): number | null;
  /** recvmsg(2) with MSG_CMSG_CLOEXEC into `buffers`, with an `ancbufsize`-byte control buffer. */
  recvmsg(fd: number, buffers: readonly ArrayBufferView[], ancbufsize: number, flags: number): NativeRecvmsg;
  /** As recvmsg, with MSG_DONTWAIT: null when it would block. */
  tryRecvmsg(fd: number, buffers: readonly ArrayBufferView[], ancbufsize: number, flags: number): NativeRecvmsg | null;
  /** The CMSG_LEN macro. */
  cmsgLen(length: number): number;
  /** The CMSG_SPACE macro. */
  cmsgSpace(length: number): number;
}

const require = createRequire(import.meta.url);
const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;

/** The package root: two levels above src/sys/ (or dist/sys/). */
const packageRoot = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The addon of this environment (each worker thread loads its own). Copied
 * into a frozen plain object: the exports object N-API fills is in
 * dictionary mode, where every `native.sockRecv` on the hot path was a
 * generic property lookup; a frozen object's properties are constants to
 * the optimizing compiler.
 */
export const native = Object.freeze({ ...(nodeGypBuild(packageRoot) as object) }) as NativeBinding;
