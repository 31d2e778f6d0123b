/**
 * One request of an io_uring loop's proactor (proactor.ts): a socket
 * operation from staging to delivery, reused by id. It is its Future's
 * cancel hook, and (for a completed receive) the runnable that delivers
 * the bytes in the loop's callback step.
 *
 * @module
 */
import type { CancelHook, Future } from '../coro/future.js';
import type { LoopLike } from '../coro/types.js';
import { RUN, type Runnable } from '../coro/types.js';
import { isErrnoError, type Socket, type SocketAddress } from '../sys/index.js';
import { adoptSocketFd } from '../sys/socket.js';

/** What an op asks of the proactor that owns it. */
export interface RingOpOwner {
  /** Its Future was cancelled: cancel the request. */
  cancel(op: RingOp): void;
  /** A completed receive's turn in the callback step. */
  deliver(op: RingOp): void;
}

export const RECV = 0;
export const RECV_INTO = 1;
export const SEND = 2;
export const ACCEPT = 3;
export const CONNECT = 4;
export type Kind = typeof RECV | typeof RECV_INTO | typeof SEND | typeof ACCEPT | typeof CONNECT;

/** A socket's requests: those in flight, and its sends in order (only the first is with the kernel). */
export interface SocketRequests {
  readonly inflight: RingOp[];
  readonly sends: RingOp[];
  /**
   * Receives (or accepts) cancelled whose completion has not been delivered
   * yet -- their data (connection), if any came, is the next one's -- and
   * those held back meanwhile: submitted now, one could take bytes (a
   * connection) that came after.
   */
  cancelledTakes: number;
  readonly heldTakes: RingOp[];
}

/** One request in flight (or waiting for an arena slot). */
export class RingOp implements CancelHook, Runnable {
  future: Future<never> | null = null;
  kind: Kind = RECV;
  sock: Socket | null = null;
  fd = -1;
  /** RECV_INTO: the caller's buffer; SEND: the bytes; CONNECT: the address. */
  target: ArrayBufferView | SocketAddress | null = null;
  offset = 0;
  end = 0;
  /** SEND: its arena slot's offset (-1: none yet) and size; CONNECT: its address slot. */
  slot = -1;
  slotSize = 0;
  /** Handed to the ring (a send or connect may wait for a slot first). */
  submitted = false;
  /** Cancelled (by its Future or its socket's close): the completion only cleans up. */
  cancelled = false;
  /** The socket was closed under it: its Future fails with EBADF. */
  closed = false;
  /** Its socket's requests (null once the proactor closed). */
  requests: SocketRequests | null = null;
  /** A receive cancelled after it was submitted: counted in its socket's cancelledTakes. */
  countedCancel = false;
  /** A completed receive, until delivered: its result and provided buffer (-1: none). */
  res = 0;
  buffer = -1;

  constructor(
    readonly owner: RingOpOwner,
    readonly id: number,
  ) {}

  futureCancelled(): void {
    this.owner.cancel(this);
  }

  /** @internal The loop's callback step: a completed receive is delivered. */
  [RUN](): void {
    this.owner.deliver(this);
  }
}

/**
 * What arrived for a receive or accept cancelled meanwhile, kept by socket
 * for the next one: bytes (in order) and connections.
 */
export class Leftovers {
  readonly #bytes = new WeakMap<Socket, Buffer>();
  readonly #connections = new WeakMap<Socket, [Socket, SocketAddress][]>();

  /** Up to `max` kept bytes of `sock`, or null when none are kept. */
  takeBytes(sock: Socket, max: number): Buffer | null {
    const kept = this.#bytes.get(sock);
    if (kept === undefined) return null;
    if (kept.length <= max) {
      this.#bytes.delete(sock);
      return kept;
    }
    this.#bytes.set(sock, kept.subarray(max));
    return kept.subarray(0, max);
  }

  /** True when bytes of `sock` are kept. */
  hasBytes(sock: Socket): boolean {
    return this.#bytes.has(sock);
  }

  keepBytes(sock: Socket, data: Buffer): void {
    const old = this.#bytes.get(sock);
    this.#bytes.set(sock, old === undefined ? data : Buffer.concat([old, data]));
  }

  /** The first kept connection of a listening socket, if any. */
  takeConnection(sock: Socket): [Socket, SocketAddress] | undefined {
    return this.#connections.get(sock)?.shift();
  }

  keepConnection(sock: Socket, connection: [Socket, SocketAddress]): void {
    const kept = this.#connections.get(sock);
    if (kept === undefined) this.#connections.set(sock, [connection]);
    else kept.push(connection);
  }
}

/** What the proactor needs of its loop. */
export interface ProactorLoop extends LoopLike {
  /** A done Future<void>, shared. */
  resolvedVoid(): Future<void>;
}

/** A Socket for an fd accepted on `listening`, with its peer's address. */
export function acceptedSocket(listening: Socket, fd: number): [Socket, SocketAddress] {
  const conn = adoptSocketFd(fd, listening.family, listening.type, listening.proto);
  let address: SocketAddress = '';
  try {
    address = conn.getpeername();
  } catch (error) {
    // Reset before we looked: the first recv will say so.
    if (!isErrnoError(error, 'ENOTCONN')) throw error;
  }
  return [conn, address];
}
