/**
 * The datagram transport: asyncio's _SelectorDatagramTransport, camelCased,
 * over UDP (IPv4, IPv6) and Unix datagram sockets, on every backend
 * (createDatagramEndpoint, in datagram-endpoint.ts, makes it).
 *
 * The transport watches its fd itself (the loop's watchFd: its reader and
 * writer are two small watchers, no Handle per event). Each readable event
 * of a UDP socket receives up to {@link READS_PER_WAKE} datagrams with one
 * recvmmsg (datagram-batch.ts); a Unix datagram socket's, one recvfrom each
 * until the socket says it would block. Each datagram is copied into a
 * Buffer of its own for datagramReceived.
 *
 * A send goes out at once when nothing waits before it -- except from
 * datagramReceived (and errorReceived) during a batch: those sends are
 * gathered (copied) and go out together with one sendmmsg when the batch
 * ends, so a server answering a batch makes one syscall, not one per
 * datagram, and wakes each of its peers once. When the socket's buffer is
 * full (EAGAIN) a datagram is copied into a FIFO queue and the writer is
 * watched: queued datagrams go out in order as the socket becomes writable,
 * and none is ever dropped silently. The queue's size drives asyncio's flow
 * control (pauseWriting above the high-water mark, resumeWriting at the low
 * one); a batch's gathered sends count only if they end up queued.
 *
 * Errors, as asyncio: an OSError of a send or receive (ECONNREFUSED after
 * an ICMP port unreachable...) goes to protocol.errorReceived and the
 * transport stays open; any other exception goes to the loop's exception
 * handler and closes the transport (connectionLost(exc)).
 *
 * sendto checks its destination with datagram-address.ts.
 *
 * @module
 */
import type { Coroutine, Future, LoopLike } from '../coro/index.js';
import type { Cancellable } from '../coro/types.js';
import { RUN } from '../coro/types.js';
import { invalidArgType } from '../sys/args.js';
import { type AddrInfo, AF_UNIX, OSError, type SendData, type Socket, type SocketAddress } from '../sys/index.js';
import { native } from '../sys/native.js';
import { addressResult } from '../sys/socket.js';
import { addressCopy, Destination, nameOf } from './datagram-address.js';
import { datagramAt, READS_PER_WAKE, receiveBatch, senderAt } from './datagram-batch.js';
import type { GetAddrInfoOptions } from './dns.js';
import type { IoSlots, Watcher } from './handle.js';
import type { BaseProtocol, DatagramProtocol, DatagramTransport, TransportExtraInfo } from './protocols.js';
import { WriteFlow } from './write-flow.js';

/** @internal What the endpoint and its transport need of the loop. */
export interface EndpointLoop extends LoopLike {
  createFuture<T = unknown>(): Future<T>;
  createTask<T>(coro: Coroutine<T>): Future<T>;
  watchFd(sock: Socket, write: boolean, watcher: Watcher): IoSlots;
  unwatch(slots: IoSlots, write: boolean, watcher: Watcher): void;
  getaddrinfo(host: string, port: number, options?: GetAddrInfoOptions): Future<AddrInfo[]>;
  sockConnect(sock: Socket, address: SocketAddress): Future<void>;
  /** Whether the completion backend may still take, or keeps, bytes of `sock` (a receive of its own). */
  holdsBytes(sock: Socket): boolean;
}

export { READS_PER_WAKE } from './datagram-batch.js';

/** The longest wait before an unconnected Unix datagram socket tries a full receiver again (see #backOff). */
const MAX_BACKOFF_MS = 8;

// The largest datagram received whole (asyncio's max_size): more than any
// UDP datagram (65,535 bytes) and than a Unix one under the default
// SO_SNDBUF. One per thread: a datagram is copied out before any protocol
// code runs, so nothing ever holds it.
const MAX_DATAGRAM = 256 * 1024;
let scratch: Buffer | null = null;

// The fd's reader or writer slot: readiness goes to the transport.
class Side implements Watcher {
  slots: IoSlots | null = null;
  constructor(
    readonly transport: LoopDatagramTransport,
    readonly write: boolean,
  ) {}

  [RUN](): void {
    if (this.write) this.transport.writeReady();
    else this.transport.readReady();
  }

  disarm(): void {
    // Another reader or writer took the slot, or the fd's watch ended.
    this.slots = null;
  }
}

/**
 * @internal The datagram transport of an endpoint (asyncio's
 * _SelectorDatagramTransport). Made by createDatagramEndpoint.
 */
export class LoopDatagramTransport implements DatagramTransport {
  readonly #loop: EndpointLoop;
  readonly #sock: Socket;
  readonly #fd: number;
  readonly #family: number;
  #protocol: DatagramProtocol;
  // The connected peer's address (what sendto's address must equal), or null.
  readonly #peer: SocketAddress | null;
  readonly #destination: Destination;
  readonly #sockname: SocketAddress | undefined;
  readonly #peername: SocketAddress | undefined;
  readonly #reader = new Side(this, false);
  readonly #writer = new Side(this, true);
  // Datagrams waiting for room, oldest at #head; their bytes in all.
  #queue: Buffer[] = [];
  #addresses: (SocketAddress | null)[] = [];
  #head = 0;
  #bufferSize = 0;
  readonly #flow = new WriteFlow((message, exception) => this.#loop.callExceptionHandler({ message, exception }));
  #closing = false;
  // connectionLost is scheduled (once: close(), abort() or a fatal error).
  #lost = false;
  // The back-off of a writer that woke and could send nothing (see #backOff).
  #backoffMs = 0;
  #retry: Cancellable | null = null;
  // A batch's sends, gathered while its datagrams are delivered (#corking)
  // and sent by #flushGathered; #flushing while that runs.
  #gathered: Buffer[] = [];
  #gatheredTo: (SocketAddress | null)[] = [];
  #corking = false;
  #flushing = false;

  constructor(
    loop: EndpointLoop,
    sock: Socket,
    protocol: DatagramProtocol,
    peer: SocketAddress | null,
    waiter: Future<void> | null,
  ) {
    this.#loop = loop;
    this.#sock = sock;
    this.#fd = sock.fileno();
    this.#family = sock.family;
    this.#protocol = protocol;
    this.#peer = peer;
    this.#destination = new Destination(this.#family, peer);
    this.#sockname = nameOf(sock, false);
    this.#peername = peer === null ? undefined : nameOf(sock, true);
    // asyncio's order: connectionMade, then reading starts, then the waiter
    // (createDatagramEndpoint's result) is resolved: each in a callback of its own.
    loop.callSoon(connectionMade, this);
    loop.callSoon(startReading, this);
    if (waiter !== null) loop.callSoon(resolveWaiter, waiter);
  }

  getExtraInfo<K extends keyof TransportExtraInfo>(name: K): TransportExtraInfo[K] | undefined;
  getExtraInfo<T = unknown>(name: string, defaultValue?: T): unknown;
  getExtraInfo(name: string, defaultValue?: unknown): unknown {
    switch (name) {
      case 'socket':
        return this.#sock;
      case 'sockname':
        return this.#sockname ?? defaultValue;
      case 'peername':
        return this.#peername ?? defaultValue;
      default:
        return defaultValue;
    }
  }

  isClosing(): boolean {
    return this.#closing;
  }

  setProtocol(protocol: BaseProtocol): void {
    if (typeof protocol !== 'object' || protocol === null) throw invalidArgType('protocol', 'an object', protocol);
    this.#protocol = protocol as DatagramProtocol;
  }

  getProtocol(): BaseProtocol {
    return this.#protocol;
  }

  getWriteBufferSize(): number {
    return this.#bufferSize;
  }

  getWriteBufferLimits(): [low: number, high: number] {
    return this.#flow.limits();
  }

  setWriteBufferLimits(high?: number, low?: number): void {
    this.#flow.set(high, low, this.#bufferSize, this.#protocol);
  }

  /**
   * Sends one datagram now if the socket takes it; else (EAGAIN, or
   * datagrams queued before it) queues a copy, sent in order when the
   * socket is writable. Never blocks; never drops a datagram silently: an
   * OSError of its send reaches protocol.errorReceived. After close() the
   * datagram still goes out before connectionLost; once the transport is
   * lost (aborted, closed and drained) it is ignored, as asyncio does.
   *
   * @throws {TypeError} for data that is not a string or ArrayBufferView; an
   *   address on a connected endpoint other than its peer's; no address on
   *   an unconnected one; an address not of the socket's family (or a host
   *   name: resolve it first)
   * @throws {RangeError} for a port outside [0, 65535]
   */
  sendto(data: SendData, address?: SocketAddress | null): void {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    if (!ArrayBuffer.isView(bytes)) {
      throw invalidArgType('data', 'a string, Buffer, TypedArray or DataView', data);
    }
    const to = this.#destination.check(address ?? null);
    if (this.#lost) return;
    if (this.#head === this.#queue.length) {
      if (this.#corking || this.#flushing) {
        this.#gathered.push(copyOf(bytes));
        this.#gatheredTo.push(addressCopy(to));
        return;
      }
      let sent: number | null;
      try {
        sent = this.#send(bytes, to);
      } catch (error) {
        if (error instanceof OSError) {
          this.#errorReceived(error);
          return;
        }
        // An argument the kernel's parser refused (checkAddress lets a few
        // through: an address too long for sun_path...): nothing changed.
        throw error;
      }
      if (sent !== null) return;
      // EAGAIN: queued below, the writer watched.
      if (!this.#watch(this.#writer)) return;
    }
    this.#enqueue(copyOf(bytes), addressCopy(to));
    this.#maybePause();
  }

  /**
   * Stops receiving; the datagrams queued still go out, then
   * connectionLost(null) follows in a callback of its own. Idempotent.
   */
  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#unwatch(this.#reader);
    // Sends gathered by a batch still go out: the batch's end decides.
    if (this.#head === this.#queue.length && !this.#corking && !this.#flushing) this.#scheduleLost(null);
  }

  /** Closes at once: queued datagrams are dropped; connectionLost(null) follows. Idempotent. */
  abort(): void {
    this.#forceClose(null);
  }

  /** @internal Readable: receive what is there (at most READS_PER_WAKE datagrams). */
  readReady(): void {
    // A readable event polled before close() or abort() in the same
    // iteration still runs (the Side stays queued): receive nothing more.
    if (this.#closing) return;
    if (this.#family === AF_UNIX) {
      this.#readEach();
      return;
    }
    let got: number | false;
    try {
      got = receiveBatch(this.#fd);
    } catch (error) {
      if (error instanceof OSError) this.#errorReceived(error);
      else this.#fatalError(error, 'Fatal read error on datagram transport');
      return;
    }
    if (got === false) return;
    this.#corking = true;
    for (let i = 0; i < got && !this.#closing; i++) {
      try {
        this.#protocol.datagramReceived?.(datagramAt(i), senderAt(i));
      } catch (exception) {
        // The rest of the batch is out of the kernel already: delivered
        // still, as one datagram a wake (asyncio, #readEach) would be.
        this.#loop.callExceptionHandler({ message: 'Exception in datagramReceived', exception });
      }
    }
    if (!this.#corking) return;
    this.#corking = false;
    this.#flushGathered(false);
  }

  // A Unix datagram socket's receive: one datagram at a time, each as large as it came.
  #readEach(): void {
    if (scratch === null) scratch = Buffer.allocUnsafeSlow(MAX_DATAGRAM);
    const buf = scratch;
    const fd = this.#fd;
    for (let i = 0; i < READS_PER_WAKE && !this.#closing; i++) {
      let host: string | null | false;
      try {
        host = native.tryRecvfrom(fd, buf, 0, MAX_DATAGRAM);
      } catch (error) {
        if (error instanceof OSError) this.#errorReceived(error);
        else this.#fatalError(error, 'Fatal read error on datagram transport');
        return;
      }
      if (host === false) return;
      const n = native.results[0] as number;
      const data = Buffer.allocUnsafe(n);
      buf.copy(data, 0, 0, n);
      const from = addressResult(host);
      try {
        this.#protocol.datagramReceived?.(data, from);
      } catch (exception) {
        this.#loop.callExceptionHandler({ message: 'Exception in datagramReceived', exception });
        return;
      }
    }
  }

  /** @internal Writable: send the queued datagrams in order until the socket is full again. */
  writeReady(): void {
    let progressed = false;
    while (this.#head < this.#queue.length) {
      const head = this.#head;
      const bytes = this.#queue[head] as Buffer;
      let sent: number | null;
      try {
        sent = this.#send(bytes, this.#addresses[head] as SocketAddress | null);
      } catch (error) {
        this.#dequeue();
        if (error instanceof OSError) {
          this.#errorReceived(error);
          if (this.#lost) return;
          continue;
        }
        this.#fatalError(error, 'Fatal write error on datagram transport');
        return;
      }
      if (sent === null) break;
      progressed = true;
      this.#dequeue();
    }
    this.#maybeResume();
    if (this.#head === this.#queue.length) {
      this.#backoffMs = 0;
      this.#unwatch(this.#writer);
      if (this.#closing && !this.#lost) this.#scheduleLost(null);
    } else {
      this.#backOff(progressed);
    }
  }

  // Writable, yet nothing went out: an unconnected Unix datagram socket
  // whose receiver's queue is full (Linux's unix_dgram_poll looks at the
  // peer's queue only for a connected socket, so it reports writable all
  // along). The writer would fire every iteration and each send say EAGAIN:
  // the loop would spin until the receiver reads. Instead the writer is
  // dropped and watched again after a delay that doubles up to
  // MAX_BACKOFF_MS; any progress resets it. (Elsewhere writability is
  // exact, and a wake that sends nothing is rare.)
  #backOff(progressed: boolean): void {
    if (progressed) {
      this.#backoffMs = 0;
      return;
    }
    this.#backoffMs = Math.min(this.#backoffMs === 0 ? 1 : this.#backoffMs * 2, MAX_BACKOFF_MS);
    this.#unwatch(this.#writer);
    this.#retry = this.#loop.callLater(this.#backoffMs, rewatchWriter, this);
  }

  /** @internal The back-off delay ended: watch for writability again. */
  rewatchWriter(): void {
    this.#retry = null;
    if (!this.#lost && this.#head < this.#queue.length) this.#watch(this.#writer);
  }

  /** @internal Called by startReading once connectionMade has run. */
  startReading(): void {
    if (!this.#closing) this.#watch(this.#reader);
  }

  /** @internal Calls protocol.connectionMade. */
  connectionMade(): void {
    this.#protocol.connectionMade?.(this);
  }

  /** @internal The last callback: connectionLost, then the socket closes. */
  connectionLost(exc: Error | null): void {
    try {
      this.#protocol.connectionLost?.(exc);
    } finally {
      this.#retry?.cancel();
      this.#retry = null;
      this.#unwatch(this.#reader);
      this.#unwatch(this.#writer);
      this.#sock.close();
    }
  }

  // One send: bytes sent, or null when the socket's buffer is full.
  #send(bytes: ArrayBufferView, to: SocketAddress | null): number | null {
    return to === null ? native.trySend(this.#fd, bytes) : native.trySendto(this.#fd, this.#family, to, bytes);
  }

  // The batch's gathered sends, with one sendmmsg per 1,024 while the
  // socket takes them. What it cannot take yet is queued (or, with
  // `dropRest`, for an abort, dropped as queued datagrams are).
  #flushGathered(dropRest: boolean): void {
    const data = this.#gathered;
    const to = this.#gatheredTo;
    this.#flushing = true;
    let i = 0;
    // A connected socket's pending error (ECONNREFUSED after an ICMP port
    // unreachable) fails the datagram that meets it, and sendmmsg, past its
    // first datagram, only ends the batch there: the error is consumed and
    // forgotten, the next call sends that datagram. One datagram a call
    // keeps each such error for errorReceived, as sendto would.
    const most = this.#peer === null ? 1024 : 1;
    // Each pass re-reads the length: errorReceived may send more.
    while (i < data.length && !this.#lost) {
      let sent: number | null;
      try {
        sent = native.trySendmmsg(this.#fd, this.#family, data, to, i, Math.min(data.length - i, most));
      } catch (error) {
        if (error instanceof OSError) {
          // That datagram is dropped, as a failed sendto's is; the rest go on.
          i += 1;
          this.#errorReceived(error);
          continue;
        }
        this.#flushing = false;
        this.#gathered = [];
        this.#gatheredTo = [];
        this.#fatalError(error, 'Fatal write error on datagram transport');
        return;
      }
      if (sent === null) break;
      i += sent;
    }
    this.#flushing = false;
    this.#gathered = [];
    this.#gatheredTo = [];
    // An abort (dropRest) drops the rest and schedules connectionLost itself.
    if (this.#lost || dropRest) return;
    if (i < data.length) {
      for (; i < data.length; i++) this.#enqueue(data[i] as Buffer, to[i] as SocketAddress | null);
      this.#maybePause();
      this.#watch(this.#writer);
    } else if (this.#closing && this.#head === this.#queue.length) {
      // close() during the batch waited for its sends.
      this.#scheduleLost(null);
    }
  }

  #enqueue(copy: Buffer, to: SocketAddress | null): void {
    this.#queue.push(copy);
    this.#addresses.push(to);
    this.#bufferSize += copy.length;
  }

  #dequeue(): void {
    const head = this.#head;
    this.#bufferSize -= (this.#queue[head] as Buffer).length;
    this.#queue[head] = EMPTY;
    this.#addresses[head] = null;
    this.#head = head + 1;
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#addresses = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#addresses = this.#addresses.slice(this.#head);
      this.#head = 0;
    }
  }

  // Watches for `side`; false (after a fatal error) when the loop refused the fd.
  #watch(side: Side): boolean {
    if (side.slots !== null) return true;
    try {
      side.slots = this.#loop.watchFd(this.#sock, side.write, side);
      return true;
    } catch (error) {
      this.#fatalError(error, 'Fatal error: the loop cannot watch the datagram socket');
      return false;
    }
  }

  #unwatch(side: Side): void {
    const slots = side.slots;
    if (slots === null) return;
    side.slots = null;
    if (!this.#loop.isClosed()) this.#loop.unwatch(slots, side.write, side);
  }

  #maybePause(): void {
    this.#flow.grew(this.#bufferSize, this.#protocol);
  }

  #maybeResume(): void {
    this.#flow.shrank(this.#bufferSize, this.#protocol);
  }

  #errorReceived(error: Error): void {
    try {
      this.#protocol.errorReceived?.(error);
    } catch (exception) {
      this.#loop.callExceptionHandler({ message: 'Exception in errorReceived', exception });
    }
  }

  #fatalError(exception: unknown, message: string): void {
    this.#loop.callExceptionHandler({ message, exception });
    this.#forceClose(exception instanceof Error ? exception : new Error(String(exception)));
  }

  #forceClose(exc: Error | null): void {
    if (this.#lost) return;
    if (this.#corking) {
      // What the batch sent before the abort goes out, as it would have at once.
      this.#corking = false;
      this.#flushGathered(true);
      if (this.#lost) return;
    }
    this.#retry?.cancel();
    this.#retry = null;
    if (this.#head < this.#queue.length) {
      this.#queue = [];
      this.#addresses = [];
      this.#head = 0;
      this.#bufferSize = 0;
      this.#unwatch(this.#writer);
    }
    if (!this.#closing) {
      this.#closing = true;
      this.#unwatch(this.#reader);
    }
    this.#scheduleLost(exc);
  }

  #scheduleLost(exc: Error | null): void {
    this.#lost = true;
    this.#loop.callSoon(connectionLost, this, exc);
  }
}

const EMPTY = Buffer.alloc(0);

// The transport's scheduled steps, as named functions (the trace and debug
// messages name a callback by its function).
function connectionMade(transport: LoopDatagramTransport): void {
  transport.connectionMade();
}
function startReading(transport: LoopDatagramTransport): void {
  transport.startReading();
}
function resolveWaiter(waiter: Future<void>): void {
  if (!waiter.done()) waiter.setResult(undefined);
}
function connectionLost(transport: LoopDatagramTransport, exc: Error | null): void {
  transport.connectionLost(exc);
}
function rewatchWriter(transport: LoopDatagramTransport): void {
  transport.rewatchWriter();
}

function copyOf(bytes: ArrayBufferView): Buffer {
  const copy = Buffer.allocUnsafe(bytes.byteLength);
  copy.set(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  return copy;
}
