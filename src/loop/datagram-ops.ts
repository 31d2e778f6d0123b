/**
 * The loop's datagram operations (asyncio 3.11's sock_recvfrom,
 * sock_recvfrom_into and sock_sendto), on the template of sock-ops.ts: try
 * the syscall at once (MSG_DONTWAIT: a blocking socket never blocks the
 * loop); if it would block, watch the fd for readiness and try again each
 * time it is ready. Each returns a Future; cancelling it stops the watching.
 *
 * What waits is a {@link DatagramOp}, the fd's reader (or writer) through
 * the loop's watchFd, on every backend: on io_uring that is the
 * UringSelector's poll, with no opcode of the proactor's. One socket should
 * have one pending operation per direction: a second receive replaces the
 * first one (as asyncio's replaces its reader), which stays pending.
 *
 * Argument errors (a bad nbytes, buffer, data or address) throw at once and
 * change nothing; what the kernel reports (ECONNREFUSED, EMSGSIZE, EBADF...)
 * fails the Future.
 *
 * @module
 */
import type { CancelHook } from '../coro/future.js';
import { Future, type LoopLike } from '../coro/index.js';
import { type Cancellable, RUN } from '../coro/types.js';
import { checkInt } from '../sys/args.js';
import { OSError, type SendData, type Socket, type SocketAddress } from '../sys/index.js';
import type { IoSlots, Watcher } from './handle.js';
import { byteSize, MAX_IO } from './sock-args.js';

/** @internal What the datagram operations need of the loop. */
export interface DatagramLoop extends LoopLike {
  /** Makes `watcher` the socket's reader (or writer). @throws what addReader throws */
  watchFd(sock: Socket, write: boolean, watcher: Watcher): IoSlots;
  /** Stops `watcher`'s watching, unless another reader (or writer) replaced it since. */
  unwatch(slots: IoSlots, write: boolean, watcher: Watcher): void;
}

const RECVFROM = 0;
const RECVFROM_INTO = 1;
const SENDTO = 2;
type Kind = typeof RECVFROM | typeof RECVFROM_INTO | typeof SENDTO;

/**
 * @internal One datagram operation waiting for readiness: the fd's reader
 * (RECVFROM, RECVFROM_INTO) or writer (SENDTO). Each time the fd is ready
 * it tries again; once the syscall completes (or fails) it settles its
 * Future and stops watching. Cancelling the Future stops it too (it is the
 * Future's cancel hook).
 */
export class DatagramOp implements Watcher, CancelHook {
  #slots: IoSlots | null = null;
  #future: Future<never> | null;
  readonly #loop: DatagramLoop;
  readonly #sock: Socket;
  readonly #kind: Kind;
  // RECVFROM: a Buffer of `nbytes`; RECVFROM_INTO: the caller's buffer;
  // SENDTO: the bytes (the caller's: it must not change them meanwhile).
  readonly #bytes: ArrayBufferView;
  readonly #nbytes: number;
  readonly #address: SocketAddress | null;
  #backoffMs = 0;
  #timer: Cancellable | null = null;

  constructor(
    loop: DatagramLoop,
    sock: Socket,
    kind: Kind,
    future: Future<never>,
    bytes: ArrayBufferView,
    nbytes: number,
    address: SocketAddress | null,
  ) {
    this.#loop = loop;
    this.#sock = sock;
    this.#kind = kind;
    this.#future = future;
    this.#bytes = bytes;
    this.#nbytes = nbytes;
    this.#address = address;
  }

  /** Starts watching. @throws what watchFd throws (a closed loop, an fd the selector refuses) */
  watch(): void {
    this.#slots = this.#loop.watchFd(this.#sock, this.#kind === SENDTO, this);
    (this.#future as Future<never>).setCancelHook(this);
  }

  /** @internal The fd is ready: try again; done, wake the waiter now, in this pass. */
  [RUN](): void {
    const future = this.#future;
    if (future === null) return;
    let result: unknown;
    try {
      result = attempt(this.#sock, this.#kind, this.#bytes, this.#nbytes, this.#address);
    } catch (error) {
      this.#finish();
      future.setException(error);
      return;
    }
    if (result === null) {
      if (this.#kind === SENDTO) this.#backOff();
      return;
    }
    this.#finish();
    future.resolveFromLoop(result as never);
  }

  // Writable, yet the send said EAGAIN: an unconnected Unix datagram socket
  // whose receiver's queue is full (Linux's unix_dgram_poll looks at the
  // peer's queue only for a connected socket, so it reports writable all
  // along). Watching on would wake every iteration for nothing: stop, and
  // watch again after a delay that doubles up to MAX_BACKOFF_MS.
  #backOff(): void {
    this.#backoffMs = Math.min(this.#backoffMs === 0 ? 1 : this.#backoffMs * 2, MAX_BACKOFF_MS);
    this.#unwatchFd();
    this.#timer = this.#loop.callLater(this.#backoffMs, rewatch, this);
  }

  /** @internal The back-off delay ended: watch again (a failure fails the Future). */
  rewatch(): void {
    this.#timer = null;
    const future = this.#future;
    if (future === null) return;
    try {
      this.#slots = this.#loop.watchFd(this.#sock, true, this);
    } catch (error) {
      this.#future = null;
      future.setException(error);
    }
  }

  /** @internal Another reader or writer replaced it, or the fd's watch ended: its Future stays pending. */
  disarm(): void {
    this.#slots = null;
  }

  /** @internal Its Future was cancelled: stop watching. */
  futureCancelled(future: Future<unknown>): void {
    if (this.#future !== future) return;
    this.#finish();
  }

  #finish(): void {
    this.#future = null;
    this.#timer?.cancel();
    this.#timer = null;
    this.#unwatchFd();
  }

  #unwatchFd(): void {
    const slots = this.#slots;
    this.#slots = null;
    if (slots !== null) this.#loop.unwatch(slots, this.#kind === SENDTO, this);
  }
}

function rewatch(op: DatagramOp): void {
  op.rewatch();
}

/** The longest wait before a send that found a Unix receiver full tries again (see DatagramOp's back-off). */
const MAX_BACKOFF_MS = 8;

// The syscall: its result, or null when it would block.
function attempt(
  sock: Socket,
  kind: Kind,
  bytes: ArrayBufferView,
  nbytes: number,
  address: SocketAddress | null,
): unknown {
  switch (kind) {
    case RECVFROM: {
      const got = sock.tryRecvfromInto(bytes, nbytes);
      if (got === null) return null;
      const [n, from] = got;
      const buffer = bytes as Buffer;
      // Copy a small datagram out rather than pin the whole buffer.
      const data = n < nbytes >>> 1 ? Buffer.from(buffer.subarray(0, n)) : buffer.subarray(0, n);
      return [data, from];
    }
    case RECVFROM_INTO:
      return sock.tryRecvfromInto(bytes, nbytes);
    case SENDTO:
      return address === null ? sock.trySend(bytes) : sock.trySendto(bytes, address);
  }
}

// Tries once; if it would block, waits. `kind`'s argument errors (not an
// OSError: a TypeError or RangeError from the checks before the syscall)
// throw; the kernel's fail the Future.
function start<T>(
  loop: DatagramLoop,
  sock: Socket,
  kind: Kind,
  bytes: ArrayBufferView,
  nbytes: number,
  address: SocketAddress | null,
): Future<T> {
  const future = new Future<T>(loop);
  let result: unknown;
  try {
    result = attempt(sock, kind, bytes, nbytes, address);
  } catch (error) {
    if (!(error instanceof OSError)) throw error;
    future.setException(error);
    return future;
  }
  if (result !== null) {
    future.setResult(result as T);
    return future;
  }
  new DatagramOp(loop, sock, kind, future as Future<never>, bytes, nbytes, address).watch();
  return future;
}

/**
 * Receives one datagram of at most `nbytes` (the rest of a longer one is
 * discarded, as recvfrom(2) does): `[data, senderAddress]`, the address
 * null for a sender without one (an unbound Unix socket).
 *
 * @throws {RangeError} when nbytes is not an integer in [0, 2^31 - 1]
 */
export function sockRecvfrom(loop: DatagramLoop, sock: Socket, nbytes: number): Future<[Buffer, SocketAddress | null]> {
  checkInt(nbytes, 'nbytes', 0, MAX_IO);
  return start(loop, sock, RECVFROM, Buffer.allocUnsafe(nbytes), nbytes, null);
}

/**
 * Receives one datagram into `buffer` (at most `nbytes` bytes; 0: the whole
 * buffer): `[bytes, senderAddress]`. The buffer is written when the
 * datagram comes, so it must not be reused before the Future is done.
 *
 * @throws {TypeError} when buffer is not a Buffer, TypedArray or DataView
 * @throws {RangeError} when nbytes is negative or more than the buffer holds
 */
export function sockRecvfromInto(
  loop: DatagramLoop,
  sock: Socket,
  buffer: ArrayBufferView,
  nbytes = 0,
): Future<[number, SocketAddress | null]> {
  const size = byteSize(buffer);
  const count = nbytes === 0 ? size : checkInt(nbytes, 'nbytes', 0, size);
  return start(loop, sock, RECVFROM_INTO, buffer, count, null);
}

/**
 * Sends `data` as one datagram to `address` (null: the connected peer's);
 * resolves with the bytes sent. What waits for room refers to the caller's
 * bytes until the Future is done (a string is copied).
 *
 * @throws {TypeError} for data that is not a string or ArrayBufferView, or an
 *   address of another family (or a host name: resolve with getaddrinfo first)
 * @throws {RangeError} for a port outside [0, 65535]
 */
export function sockSendto(
  loop: DatagramLoop,
  sock: Socket,
  data: SendData,
  address: SocketAddress | null,
): Future<number> {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  byteSize(bytes); // checks it is bytes
  return start(loop, sock, SENDTO, bytes, 0, address);
}
