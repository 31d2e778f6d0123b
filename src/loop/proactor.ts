/**
 * The completion-based socket operations (asyncio's proactor): on an
 * io_uring loop, sockRecv, sockRecvInto, sockSendAll, sockAccept and
 * sockConnect are requests the kernel carries out -- it copies the bytes and
 * reports completion -- where the selector loop waits for readiness and
 * copies them itself (sock-ops.ts). Each is staged in the loop's ring
 * (selectors/uring.ts), goes to the kernel with the next wait's
 * io_uring_enter, and settles its Future in the iteration its completion
 * arrives in (a request is a RingOp: ring-op.ts). No JavaScript memory
 * reaches the kernel:
 *
 * - receives use the ring's provided buffers (none is held while waiting),
 *   copied out into the result or the caller's buffer as the waiter resumes;
 * - a send goes out at once as far as the socket's buffer takes it (as
 *   libuv's uv_try_write: a round trip then costs one iteration, not two);
 *   the rest is copied into the ring's arena (arena-slots.ts) and sent by
 *   the kernel, a slot's worth per request, after the socket's earlier sends.
 *
 * Cancelling a Future cancels its request. Data (a connection) that came
 * for a receive (an accept) just as it was cancelled is the next one's, and
 * those started meanwhile wait for it, so bytes keep their order. A socket
 * closed with requests in flight has them cancelled first -- a request holds
 * the file open, so the peer would see no close -- and their Futures fail
 * with EBADF (a send cut short too).
 *
 * @module
 */
import { constants } from 'node:os';
import { Future } from '../coro/index.js';
import { IGNORED_HIGH } from '../selectors/uring.js';
import { checkInt } from '../sys/args.js';
import { makeErrnoError } from '../sys/errors.js';
import type { IoUring } from '../sys/index.js';
import {
  close,
  IORING_CQE_F_BUFFER,
  MSG_WAITALL,
  type SendData,
  type Socket,
  type SocketAddress,
} from '../sys/index.js';
import { native } from '../sys/native.js';
import { ArenaSlots, type Slot } from './arena-slots.js';
import {
  ACCEPT,
  acceptedSocket,
  CONNECT,
  type Kind,
  Leftovers,
  type ProactorLoop,
  RECV,
  RECV_INTO,
  RingOp,
  type RingOpOwner,
  SEND,
  type SocketRequests,
} from './ring-op.js';
import { byteSize, describeAddress, MAX_IO, rangeLength, rangeStart, SMALL_SEND, utf8 } from './sock-args.js';

const { EBADF, ECANCELED, ENOBUFS } = constants.errno;

/** A loop's completion-based socket operations, on its ring. */
export class Proactor implements RingOpOwner {
  readonly #loop: ProactorLoop;
  readonly #ring: IoUring;
  readonly #ops: (RingOp | undefined)[] = [];
  readonly #freeIds: number[] = [];
  readonly #slots: ArenaSlots; // the arena's free send and address slots
  readonly #taken: Slot = { offset: 0, size: 0 };
  // Sends waiting for an arena slot, in order.
  readonly #slotWaiters: RingOp[] = [];
  // Connects waiting for an address slot.
  readonly #addressWaiters: RingOp[] = [];
  // A socket's requests in flight and its sends in order, made on its first
  // operation and kept while it lives (one lookup per operation).
  readonly #sockets = new WeakMap<Socket, SocketRequests>();
  // What came for a receive or accept cancelled meanwhile: the next one's.
  readonly #leftovers = new Leftovers();
  #inflight = 0;

  readonly #staged: () => void;

  /**
   * @param staged - called when an operation was staged: a cooperative
   *   loop that idles must wake to submit it (its continuation may run in a
   *   promise job, outside the loop's iteration)
   */
  constructor(loop: ProactorLoop, ring: IoUring, staged: () => void) {
    this.#loop = loop;
    this.#ring = ring;
    this.#staged = staged;
    this.#slots = new ArenaSlots(ring.arena.length);
  }

  /** Requests in flight (a cooperative loop stays alive while there are any). */
  get inflight(): number {
    return this.#inflight;
  }

  /** sockRecv: up to `nbytes` (at most one provided buffer's worth per call); empty at EOF. */
  recv(sock: Socket, nbytes: number): Future<Buffer> {
    checkInt(nbytes, 'nbytes', 0, MAX_IO);
    const leftover = this.#leftovers.takeBytes(sock, nbytes);
    if (leftover !== null) return this.#done(leftover);
    if (nbytes === 0) return this.#done(Buffer.alloc(0));
    return this.#start<Buffer>(RECV, sock, null, 0, nbytes);
  }

  /** sockRecvInto: into `buffer` bytes [offset, offset + length); the count, 0 at EOF. */
  recvInto(sock: Socket, buffer: ArrayBufferView, offset?: number, length?: number): Future<number> {
    const size = byteSize(buffer);
    const start = rangeStart(size, offset);
    const count = rangeLength(size, start, length);
    const leftover = this.#leftovers.takeBytes(sock, count);
    if (leftover !== null) {
      leftover.copy(asBytes(buffer), start);
      return this.#done(leftover.length);
    }
    if (count === 0) return this.#done(0);
    return this.#start<number>(RECV_INTO, sock, buffer, start, start + count);
  }

  /**
   * sockSendAll: every byte, a slot's worth per request, after the socket's
   * earlier sends (a later one never overtakes the rest of a partly sent
   * one). Done when the kernel has taken the last byte: then, as on a
   * selector loop, a shutdown or close that follows cannot lose any.
   */
  sendAll(sock: Socket, data: SendData, offset?: number, length?: number): Future<void> {
    const bytes = typeof data === 'string' ? utf8(data, offset, length) : data;
    const size = byteSize(bytes);
    const start = rangeStart(size, offset);
    const end = start + rangeLength(size, start, length);
    if (start === end) return this.#loop.resolvedVoid();
    // Sent at once as far as the socket's buffer takes it (see the module
    // doc), unless an earlier send is queued: bytes never overtake bytes.
    let sent = start;
    if ((this.#sockets.get(sock)?.sends.length ?? 0) === 0) {
      try {
        const fd = sock.fileno();
        for (let n = native.trySend(fd, bytes, sent, end - sent); n !== null; ) {
          sent += n;
          if (sent === end) return this.#loop.resolvedVoid();
          n = native.trySend(fd, bytes, sent, end - sent);
        }
      } catch (error) {
        // (EBADF for a closed socket, EPIPE...: through the Future, as on a selector loop.)
        return this.#failed(error);
      }
    }
    return this.#sendRest(sock, data, bytes, sent, end);
  }

  // The rest of a send the socket's buffer did not take: an io_uring request,
  // after the socket's earlier ones. Up to 64 KiB lets go of the caller's
  // bytes now, as the selector loop's does: copied into a free slot at once
  // (#sendChunk), else here. A larger one reads them until done.
  #sendRest(sock: Socket, data: SendData, bytes: ArrayBufferView, start: number, end: number): Future<void> {
    const count = end - start;
    const fits = this.#slots.fits(count) && (this.#sockets.get(sock)?.sends.length ?? 0) === 0;
    if (data === bytes && end - start <= SMALL_SEND && !fits) {
      const copy = Buffer.from(asBytes(bytes).subarray(start, end));
      return this.#start<void>(SEND, sock, copy, 0, copy.length);
    }
    return this.#start<void>(SEND, sock, bytes, start, end);
  }

  /** sockAccept: a non-blocking Socket and the peer's address. */
  accept(sock: Socket): Future<[Socket, SocketAddress]> {
    const kept = this.#leftovers.takeConnection(sock);
    if (kept !== undefined) return this.#done(kept);
    return this.#start<[Socket, SocketAddress]>(ACCEPT, sock, null, 0, 0);
  }

  /**
   * A connection a cancelled accept took and kept for the next sockAccept,
   * handed over instead (a Server serving the listening socket), if any.
   */
  takeKeptConnection(sock: Socket): [Socket, SocketAddress] | undefined {
    return this.#leftovers.takeConnection(sock);
  }

  /** sockConnect to a numeric address. */
  connect(sock: Socket, address: SocketAddress): Future<void> {
    return this.#start<void>(CONNECT, sock, address, 0, 0);
  }

  /** @internal Cancels an operation's request (its Future was cancelled). */
  /**
   * True while the kernel may still hand `sock`'s bytes to a request of
   * ours, or some are kept for its next receive: TLS must not start then
   * (OpenSSL would read past them).
   */
  holdsBytes(sock: Socket): boolean {
    const requests = this.#sockets.get(sock);
    return (
      this.#leftovers.hasBytes(sock) ||
      (requests !== undefined && (requests.inflight.length > 0 || requests.cancelledTakes > 0))
    );
  }

  cancel(op: RingOp): void {
    if (op.cancelled) return;
    op.cancelled = true;
    op.future = null;
    if (op.kind !== SEND && op.kind !== CONNECT && op.submitted && op.requests !== null) {
      op.requests.cancelledTakes++;
      op.countedCancel = true;
    }
    if (this.#unqueue(op)) {
      // Never submitted: nothing to wait for.
      this.#finish(op);
      return;
    }
    this.#ring.cancel(op.id, 0, 0, IGNORED_HIGH);
    this.#staged();
  }

  /** The ring's completion of one of ours (the selector's completion handler). */
  readonly onCompletion = (id: number, _high: number, res: number, flags: number): void => {
    const op = this.#ops[id];
    if (op === undefined) return;
    switch (op.kind) {
      case RECV:
      case RECV_INTO:
        this.#received(op, res, flags);
        return;
      case SEND:
        this.#sent(op, res);
        return;
      case ACCEPT:
        this.#accepted(op, res);
        return;
      case CONNECT:
        this.#releaseAddress(op);
        this.#finish(op);
        if (op.future === null) return;
        if (res === 0) this.#settle(op, undefined);
        else this.#fail(op, res, 'connect', describeAddress(op.target as SocketAddress));
        return;
    }
  };

  /**
   * Forgets every operation (the loop is closing; closing the ring cancels
   * the requests). The sockets' close hooks find the ring closed and do nothing.
   */
  close(): void {
    for (const op of this.#ops) if (op !== undefined) op.requests = null;
    this.#ops.length = 0;
    this.#slotWaiters.length = 0;
    this.#addressWaiters.length = 0;
    this.#inflight = 0;
  }

  #start<T>(
    kind: Kind,
    sock: Socket,
    target: ArrayBufferView | SocketAddress | null,
    offset: number,
    end: number,
  ): Future<T> {
    let op: RingOp;
    try {
      op = this.#newOp(kind, sock, target, offset, end);
    } catch (error) {
      return this.#failed(error); // a closed socket's fileno(): EBADF
    }
    const future = new Future<T>(this.#loop);
    op.future = future as unknown as Future<never>;
    future.setCancelHook(op);
    if (kind === SEND) this.#queueSend(op);
    else if (kind !== CONNECT && (op.requests as SocketRequests).cancelledTakes > 0) {
      (op.requests as SocketRequests).heldTakes.push(op);
    } else this.#submit(op);
    this.#staged();
    return future;
  }

  // An operation, counted in flight and known by its socket (no Future yet).
  #newOp(
    kind: Kind,
    sock: Socket,
    target: ArrayBufferView | SocketAddress | null,
    offset: number,
    end: number,
  ): RingOp {
    const fd = sock.fileno();
    const id = this.#freeIds.pop() ?? this.#ops.length;
    const op = this.#ops[id] ?? new RingOp(this, id);
    this.#ops[id] = op;
    op.future = null;
    op.kind = kind;
    op.sock = sock;
    op.fd = fd;
    op.target = target;
    op.offset = offset;
    op.end = end;
    op.slot = -1;
    op.submitted = false;
    op.cancelled = false;
    op.closed = false;
    op.countedCancel = false;
    let requests = this.#sockets.get(sock);
    if (requests === undefined) {
      requests = { inflight: [], sends: [], cancelledTakes: 0, heldTakes: [] };
      this.#sockets.set(sock, requests);
      sock.addBeforeClose(() => this.#socketClosing(sock));
    }
    requests.inflight.push(op);
    op.requests = requests;
    this.#inflight++;
    return op;
  }

  // Queues a send behind the socket's earlier ones; the first goes to the kernel.
  #queueSend(op: RingOp): void {
    const sends = (op.requests as SocketRequests).sends;
    sends.push(op);
    if (sends.length === 1) this.#sendHead(op);
  }

  // The socket's first send: to the kernel now, or once a slot is free.
  #sendHead(op: RingOp): void {
    if (!this.#sendChunk(op)) this.#slotWaiters.push(op);
  }

  // Takes `op` off its socket's send queue; the next, if `op` was first, goes on.
  #nextSend(op: RingOp): void {
    const sends = op.requests?.sends;
    if (sends === undefined) return;
    const at = sends.indexOf(op);
    if (at >= 0) sends.splice(at, 1);
    const next = sends[0];
    if (next !== undefined && at === 0 && !next.submitted) this.#sendHead(next);
  }

  // Stages the request of a non-send operation.
  #submit(op: RingOp): void {
    const ring = this.#ring;
    switch (op.kind) {
      case RECV:
      case RECV_INTO:
        op.submitted = true;
        ring.recvProvided(op.fd, Math.min(op.end - op.offset, ring.bufferSize), op.id);
        return;
      case ACCEPT:
        op.submitted = true;
        ring.accept(op.fd, op.id);
        return;
      case CONNECT: {
        // Each connect has its own address slot until it completes.
        const slot = this.#slots.takeAddress();
        if (slot < 0) {
          this.#addressWaiters.push(op);
          return;
        }
        op.slot = slot;
        const at = slot;
        const length = ring.writeAddress((op.sock as Socket).family, op.target, at);
        op.submitted = true;
        ring.connect(op.fd, at, length, op.id);
        return;
      }
      default:
        return;
    }
  }

  // Copies the next chunk of a send into its slot and stages it; false when
  // no slot is free.
  #sendChunk(op: RingOp): boolean {
    if (op.slot < 0) {
      if (!this.#slots.take(op.end - op.offset, this.#taken)) return false;
      op.slot = this.#taken.offset;
      op.slotSize = this.#taken.size;
    }
    const count = Math.min(op.end - op.offset, op.slotSize);
    const at = op.slot;
    const bytes = asBytes(op.target as ArrayBufferView);
    bytes.copy(this.#ring.arena, at, op.offset, op.offset + count);
    op.submitted = true;
    this.#ring.send(op.fd, at, count, op.id, 0, MSG_WAITALL);
    return true;
  }

  // A receive completed. Its bytes stay in the provided buffer until the
  // iteration's callback step runs the op (deliver): a server that receives
  // every connection into one buffer, as C servers do, then finds in it the
  // bytes of the connection it resumes, not those of the last completion.
  #received(op: RingOp, res: number, flags: number): void {
    const ring = this.#ring;
    if (res === -ENOBUFS && !op.cancelled && !op.closed && !(op.sock as Socket).closed) {
      // Every provided buffer was taken in this batch: ask again.
      ring.recvProvided(op.fd, Math.min(op.end - op.offset, ring.bufferSize), op.id);
      return;
    }
    op.res = res;
    op.buffer = (flags & IORING_CQE_F_BUFFER) !== 0 ? flags >>> 16 : -1;
    if (op.future === null) this.deliver(op);
    else this.#loop.schedule(op);
  }

  // A cancelled receive's completion was delivered: once none is left, the
  // receives held back meanwhile take its data, if any came, then go on.
  #cancelledTakeDone(op: RingOp): void {
    op.countedCancel = false;
    const requests = op.requests;
    if (requests === null || --requests.cancelledTakes > 0) return;
    const held = requests.heldTakes.splice(0);
    const sock = op.sock as Socket;
    for (const next of held) {
      const future = next.future as Future<unknown> | null;
      if (future === null) continue;
      if (next.kind === ACCEPT) {
        const kept = this.#leftovers.takeConnection(sock);
        if (kept === undefined) {
          this.#submit(next);
        } else {
          this.#finish(next);
          next.future = null;
          future.setResult(kept);
        }
        continue;
      }
      const leftover = this.#leftovers.takeBytes(sock, next.end - next.offset);
      if (leftover === null) {
        this.#submit(next);
        continue;
      }
      this.#finish(next);
      next.future = null;
      if (next.kind === RECV) {
        future.setResult(leftover);
      } else {
        leftover.copy(asBytes(next.target as ArrayBufferView), next.offset);
        future.setResult(leftover.length);
      }
    }
    this.#staged();
  }

  /** @internal A completed receive's bytes go to its Future (or, cancelled meanwhile, to the socket's next receive). */
  deliver(op: RingOp): void {
    const ring = this.#ring;
    const res = op.res;
    const from = op.buffer * ring.bufferSize;
    const future = op.future;
    let data: Buffer | null = null;
    if (op.buffer >= 0 && res > 0) {
      if (op.kind === RECV_INTO && future !== null) {
        ring.buffers.copy(asBytes(op.target as ArrayBufferView), op.offset, from, from + res);
      } else {
        data = Buffer.allocUnsafe(res);
        ring.buffers.copy(data, 0, from, from + res);
      }
    }
    if (op.buffer >= 0) ring.recycle(op.buffer);
    op.buffer = -1;
    this.#finish(op);
    if (future === null) {
      if (data !== null && !op.closed) this.#leftovers.keepBytes(op.sock as Socket, data);
      if (op.countedCancel) this.#cancelledTakeDone(op);
      return;
    }
    op.future = null;
    if (res < 0) {
      op.future = future;
      this.#fail(op, res, 'recv', '');
    } else {
      future.resolveFromLoop((op.kind === RECV ? (data ?? Buffer.alloc(0)) : res) as never);
    }
  }

  #sent(op: RingOp, res: number): void {
    if (res > 0) op.offset += res;
    // (MSG_WAITALL: the kernel sends all unless it fails; a socket closed
    // since has no fd to send the rest by.)
    const stopped = op.cancelled || op.closed || (op.sock as Socket).closed;
    if (res >= 0 && op.offset < op.end && !stopped) {
      this.#sendChunk(op);
      return;
    }
    this.#releaseSlot(op);
    this.#finish(op);
    this.#nextSend(op);
    if (op.future === null) return;
    // Cut short by its socket's close: not all was sent, and it says so.
    if (res < 0 || op.offset < op.end) this.#fail(op, res < 0 ? res : -EBADF, 'send', '');
    else this.#settle(op, undefined);
  }

  #accepted(op: RingOp, res: number): void {
    this.#finish(op);
    const listening = op.sock as Socket;
    if (res >= 0 && op.closed) {
      close(res);
      if (op.countedCancel) this.#cancelledTakeDone(op);
      return;
    }
    if (op.future === null) {
      // Cancelled as the connection came: it is the next accept's (as on a
      // selector loop, where it would still be in the listen queue).
      if (res >= 0) {
        this.#leftovers.keepConnection(listening, acceptedSocket(listening, res));
      }
      if (op.countedCancel) this.#cancelledTakeDone(op);
      return;
    }
    if (res < 0) {
      this.#fail(op, res, 'accept', '');
      return;
    }
    this.#settle(op, acceptedSocket(listening, res));
  }

  // Settling schedules the Future's callbacks: they run in this
  // iteration's callback step, as every callback does.
  #settle(op: RingOp, value: unknown): void {
    const future = op.future as Future<unknown>;
    op.future = null;
    future.setResult(value);
  }

  #fail(op: RingOp, res: number, syscall: string, detail: string): void {
    const future = op.future as Future<unknown>;
    op.future = null;
    const errno = op.closed || res === -ECANCELED ? EBADF : -res;
    future.setException(makeErrnoError(errno, syscall, op.closed ? '(the socket was closed)' : detail));
  }

  // The request is over: its id and socket entry are free (its slot is the send's to release).
  #finish(op: RingOp): void {
    this.#inflight--;
    const inflight = op.requests?.inflight;
    if (inflight !== undefined) {
      const at = inflight.indexOf(op);
      if (at >= 0) inflight.splice(at, 1);
    }
    this.#freeIds.push(op.id);
  }

  #releaseAddress(op: RingOp): void {
    if (op.slot < 0) return;
    this.#slots.releaseAddress(op.slot);
    op.slot = -1;
    const next = this.#addressWaiters.shift();
    if (next !== undefined) this.#submit(next);
  }

  #releaseSlot(op: RingOp): void {
    if (op.slot < 0) return;
    const slot = op.slot;
    const size = op.slotSize;
    op.slot = -1;
    const next = this.#slotWaiters.shift();
    if (next === undefined) {
      this.#slots.release(slot, size);
      return;
    }
    next.slot = slot;
    next.slotSize = size;
    this.#sendChunk(next);
  }

  // Right before `sock` closes: cancel what it has in flight, now (a
  // request holds the file open), failing their Futures with EBADF.
  #socketClosing(sock: Socket): void {
    const requests = this.#sockets.get(sock);
    this.#sockets.delete(sock);
    // (A ring closed already cancelled everything.)
    if (requests === undefined || this.#ring.closed) return;
    for (const op of [...requests.inflight]) {
      op.closed = true;
      if (this.#unqueue(op)) {
        // Never handed to the kernel: nothing to cancel.
        this.#finish(op);
        if (op.future !== null) this.#fail(op, -EBADF, op.kind === SEND ? 'send' : 'connect', '');
      } else {
        this.#ring.cancel(op.id, 0, 0, IGNORED_HIGH);
      }
    }
    this.#ring.flush();
  }

  // Takes an op the kernel has not been handed yet off its queues (waiting
  // for a slot, or behind its socket's earlier sends); false when it was handed.
  #unqueue(op: RingOp): boolean {
    if (op.submitted) return false;
    if (op.kind !== SEND && op.kind !== CONNECT) {
      const held = op.requests?.heldTakes;
      const at = held === undefined ? -1 : held.indexOf(op);
      if (at >= 0) held?.splice(at, 1);
      return true;
    }
    const waiting = op.kind === SEND ? this.#slotWaiters : this.#addressWaiters;
    const at = waiting.indexOf(op);
    if (at >= 0) waiting.splice(at, 1);
    if (op.kind === SEND) {
      this.#releaseSlot(op);
      this.#nextSend(op);
    }
    return true;
  }

  #failed<T>(error: unknown): Future<T> {
    const future = new Future<T>(this.#loop);
    future.setException(error);
    return future;
  }

  #done<T>(value: T): Future<T> {
    const future = new Future<T>(this.#loop);
    future.setResult(value);
    return future;
  }
}

function asBytes(view: ArrayBufferView): Buffer {
  return Buffer.isBuffer(view) ? view : Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}
