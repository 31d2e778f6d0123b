/**
 * asyncio's selector socket transport (selector_events.py's
 * _SelectorSocketTransport), for TCP, Unix stream and TLS sockets.
 *
 * Reading: the transport is the fd's reader (a Watcher in the loop's slot:
 * no Handle, no Future per message). Each readiness is one receive, into a
 * slab shared by the loop's transports: the protocol gets a Buffer it may
 * keep (a view of the slab, never written there again, or for a small
 * receive a copy of its own), or for a buffered protocol the bytes land in
 * its getBuffer() memory.
 *
 * Writing: write() sends at once when nothing waits before it; what the
 * socket does not take is copied and sent when it is writable, gathered
 * into one sendmsg(2). Above the high-water mark the protocol is told to
 * pauseWriting, and resumeWriting once the buffer is down to the low one.
 * A small write (a plain socket, nothing buffered, at most HOLD_MAX bytes
 * held in all) made while the loop runs its callbacks is copied and held
 * until they have all run, then sent with the others held (held-writes.ts):
 * a server's replies to one wait leave back to back. Held bytes are not in
 * the write buffer's size; close(), abort(), writeEof() and an end by error
 * (a protocol callback that threw) send them first.
 *
 * The end: close() sends what is buffered, then closes; abort() and a
 * connection error close at once. Either way connectionLost runs exactly
 * once, in a later iteration, after connectionMade; then the socket closes.
 *
 * @module
 */
import { InvalidStateError, type LoopLike } from '../coro/index.js';
import { RUN } from '../coro/types.js';
import { invalidArgType } from '../sys/args.js';
import { OSError, type SendData, type Socket, type SocketAddress, TlsError } from '../sys/index.js';
import { AGAIN, type ByteStream, CROSS, IOV_MAX } from './byte-streams.js';
import type { IoSlots, Watcher } from './handle.js';
import type { WriteHolder } from './held-writes.js';
import type { BaseProtocol, BufferedProtocol, Protocol, Transport, TransportExtraInfo } from './protocols.js';
import { WriteFlow } from './write-flow.js';

/** @internal What a transport needs of its loop. */
export interface TransportLoop extends LoopLike {
  /** Makes `watcher` the fd's reader (or writer). @throws what addReader throws */
  watchFd(sock: Socket, write: boolean, watcher: Watcher): IoSlots;
  /** Stops `watcher`'s watching, unless another replaced it since. */
  unwatch(slots: IoSlots, write: boolean, watcher: Watcher): void;
  /** While callbacks run, releases `holder` once they have (true); else false. */
  holdWrites(holder: WriteHolder): boolean;
  readonly debug: boolean;
}

/** @internal Who hears of a transport's start and end (a Server counts its connections). */
export interface TransportOwner {
  attach(transport: SocketTransport): void;
  detach(transport: SocketTransport): void;
}

// At most this much in one receive (Node's net reads 64 KiB too).
const MAX_READ = 64 * 1024;
// The slab receives go into, renewed when less than MIN_READ is left: a
// large receive becomes a view of it, a small one (at most COPY_MAX bytes)
// is copied out into a Buffer of its own (Node's pool serves it) and the
// slab reused. So a protocol that keeps small pieces (a partial line) pins
// no slab, and one that keeps a large piece pins at most 64 KiB for it (a slab under
// malloc's mmap threshold: its memory comes back warm, not freshly faulted in).
const SLAB_SIZE = 64 * 1024;
const MIN_READ = 16 * 1024;
const COPY_MAX = 1024;
let slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
let slabUsed = 0;

// Receives once into the slab: the bytes (a Buffer the caller keeps), or AGAIN, CROSS, 0 at the end.
function receive(stream: ByteStream): Buffer | number {
  if (SLAB_SIZE - slabUsed < MIN_READ) {
    slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
    slabUsed = 0;
  }
  const buffer = slab;
  const start = slabUsed;
  const n = stream.recv(buffer, start, Math.min(MAX_READ, SLAB_SIZE - start));
  if (n <= 0) return n;
  if (n <= COPY_MAX) {
    const own = Buffer.allocUnsafe(n);
    buffer.copy(own, 0, start, start + n);
    return own;
  }
  // The bytes are the protocol's: the slab moves past them (8-aligned).
  slabUsed = (start + n + 7) & ~7;
  return buffer.subarray(start, start + n);
}

// Writes held until the loop's callbacks have run: at most this many bytes,
// in at most this many writes (more, and the held ones go out at once).
const HOLD_MAX = 4096;
const HOLD_WRITES = 64;

// A TLS reader drains OpenSSL's decoded bytes at most this many times a wake.
const TLS_READS_PER_WAKE = 16;

// The writer's slot: writability goes to the transport.
class WriteSide implements Watcher {
  slots: IoSlots | null = null;
  constructor(readonly transport: SocketTransport) {}

  [RUN](): void {
    this.transport.writeReady();
  }

  disarm(): void {
    this.slots = null;
  }
}

/** Copies [offset, offset + length) of `bytes` into a Buffer of its own. */
function copyOf(bytes: ArrayBufferView, offset: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  out.set(new Uint8Array(bytes.buffer, bytes.byteOffset + offset, length));
  return out;
}

function toBytes(data: SendData, name: string): ArrayBufferView {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return data;
  throw invalidArgType(name, 'a string, Buffer, TypedArray or DataView', data);
}

/** Whether `error` ends a connection rather than shows a bug: not reported to the exception handler (asyncio). */
function isConnectionError(error: unknown): boolean {
  return error instanceof OSError || error instanceof TlsError;
}

/**
 * @internal A stream transport over a connected socket (plain or TLS). Made
 * by the loop's createConnection, createServer and connectAcceptedSocket;
 * users see it as a {@link Transport}.
 */
export class SocketTransport implements Transport, Watcher, WriteHolder {
  readonly #loop: TransportLoop;
  readonly #stream: ByteStream;
  #protocol: BaseProtocol;
  #buffered: boolean;
  #owner: TransportOwner | null;
  #extra: Partial<TransportExtraInfo> = {};
  // Reading: the reader slot while watched; paused by the protocol.
  #readSlots: IoSlots | null = null;
  #paused = false;
  #atEof = false;
  // TLS: the receive waits for writability, or the send for readability.
  #readWantsWrite = false;
  #writeWantsRead = false;
  // The end: closing (no more reads); connectionLost scheduled or done.
  #started = false;
  #closing = false;
  #lost = false;
  // Ended in order (close() with everything sent), not by abort() or an error.
  #clean = true;
  #eof = false;
  // The write buffer: chunks of their own, the first from #head on.
  readonly #writer = new WriteSide(this);
  #chunks: Buffer[] = [];
  #head = 0;
  #size = 0;
  // Small writes held until the loop's callbacks have run (only while #size is 0).
  #held: Buffer[] = [];
  #heldSize = 0;
  readonly #flow = new WriteFlow((message, exception) =>
    this.#loop.callExceptionHandler({ message, exception, future: this }),
  );

  /**
   * Starts the transport: connectionMade in the next iteration, then reading.
   * `onStarted` runs right after connectionMade (a createConnection's Future):
   * true when it took the error connectionMade threw.
   */
  constructor(
    loop: TransportLoop,
    stream: ByteStream,
    protocol: Protocol | BufferedProtocol,
    owner: TransportOwner | null,
    onStarted?: (error: unknown) => boolean,
  ) {
    this.#loop = loop;
    this.#stream = stream;
    this.#protocol = protocol;
    this.#buffered = typeof (protocol as BufferedProtocol).getBuffer === 'function';
    this.#owner = owner;
    owner?.attach(this);
    loop.callSoon(() => this.#start(onStarted));
  }

  #start(onStarted: ((error: unknown) => boolean) | undefined): void {
    this.#started = true;
    let failure: unknown = null;
    try {
      (this.#protocol as Protocol).connectionMade?.(this);
    } catch (error) {
      failure = error;
    }
    if (failure !== null) {
      // asyncio fails the waiter and closes: the protocol never got going.
      // The exception goes to the waiter (createConnection's Future) or, when
      // none takes it, to the exception handler: not to both.
      const delivered = onStarted?.(failure) === true;
      if (!delivered) {
        this.#loop.callExceptionHandler({
          message: 'Exception in protocol.connectionMade()',
          exception: failure,
          future: this,
        });
      }
      this.#forceClose(failure instanceof Error ? failure : new Error(String(failure)));
      return;
    }
    if (!this.#closing && !this.#paused) {
      this.#watchRead();
      // Bytes that came with the end of the TLS handshake (a TLS 1.3
      // client's first request rides with its Finished): OpenSSL holds
      // them already, and the fd will not say so.
      if (this.#stream.hasPending()) this.#loop.schedule(this);
    }
    onStarted?.(null);
  }

  // ---- reading ----

  #watchRead(): void {
    if (this.#readSlots !== null) return;
    try {
      this.#readSlots = this.#loop.watchFd(this.#stream.sock, false, this);
    } catch (error) {
      this.#fatalError(error, 'Fatal error: could not watch the socket for reading', true);
    }
  }

  #unwatchRead(): void {
    const slots = this.#readSlots;
    if (slots === null) return;
    this.#readSlots = null;
    this.#loop.unwatch(slots, false, this);
  }

  /** @internal The reader slot was given to another reader, or the fd's watch ended. */
  disarm(): void {
    this.#readSlots = null;
  }

  /** @internal The socket is readable. */
  [RUN](): void {
    if (this.#writeWantsRead) {
      this.#writeWantsRead = false;
      this.writeReady();
      if (this.#lost) return;
      if (this.#paused || this.#closing) {
        this.#unwatchRead();
        return;
      }
    }
    // A run queued before reading stopped (the fd was ready in the same
    // wait, and an earlier callback closed or paused this transport): the
    // Watcher contract says it does nothing, as asyncio's cancelled handle.
    if (this.#closing || this.#paused || this.#atEof) return;
    if (this.#buffered) this.#readBuffered();
    else if (this.#stream.tls === null) this.#readPlain();
    else this.#readTls();
  }

  #readPlain(): void {
    let got: Buffer | number;
    try {
      got = receive(this.#stream);
    } catch (error) {
      this.#fatalError(error, 'Fatal read error on socket transport', false);
      return;
    }
    if (got === AGAIN) return;
    if (got === 0) this.#readEof();
    else this.#dataReceived(got as Buffer);
  }

  #readTls(): void {
    for (let i = 0; i < TLS_READS_PER_WAKE && !this.#closing && !this.#paused; i++) {
      let got: Buffer | number;
      try {
        got = receive(this.#stream);
      } catch (error) {
        this.#fatalError(error, 'Fatal read error on TLS transport', false);
        return;
      }
      if (got === AGAIN) return;
      if (got === CROSS) {
        this.#readWantsWrite = true;
        this.#watchWrite();
        return;
      }
      if (got === 0) {
        this.#readEof();
        return;
      }
      this.#dataReceived(got as Buffer);
      if (!this.#stream.hasPending()) return;
    }
    // OpenSSL still holds decoded bytes the fd's readiness will not announce.
    if (!this.#closing && !this.#paused && this.#stream.hasPending()) this.#loop.schedule(this);
  }

  #readBuffered(): void {
    const protocol = this.#protocol as BufferedProtocol;
    let buffer: ArrayBufferView;
    try {
      buffer = protocol.getBuffer(-1);
      if (!ArrayBuffer.isView(buffer) || buffer.byteLength === 0) {
        throw Object.assign(new RangeError('getBuffer() returned an empty buffer (or no ArrayBufferView)'), {
          code: 'ERR_INVALID_RETURN_VALUE',
        });
      }
    } catch (error) {
      this.#fatalError(error, 'Fatal error: protocol.getBuffer() call failed.', true);
      return;
    }
    const view = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    let n: number;
    try {
      n = this.#stream.recv(view, 0, view.byteLength);
    } catch (error) {
      this.#fatalError(error, 'Fatal read error on socket transport', false);
      return;
    }
    if (n === AGAIN) return;
    if (n === CROSS) {
      this.#readWantsWrite = true;
      this.#watchWrite();
      return;
    }
    if (n === 0) {
      this.#readEof();
      return;
    }
    try {
      protocol.bufferUpdated(n);
    } catch (error) {
      this.#fatalError(error, 'Fatal error: protocol.bufferUpdated() call failed.', true);
      return;
    }
    if (this.#stream.hasPending() && !this.#closing && !this.#paused) this.#loop.schedule(this);
  }

  #dataReceived(data: Buffer): void {
    try {
      (this.#protocol as Protocol).dataReceived?.(data);
    } catch (error) {
      this.#fatalError(error, 'Fatal error: protocol.dataReceived() call failed.', true);
    }
  }

  #readEof(): void {
    this.#unwatchRead();
    this.#atEof = true; // nothing more to read: isReading() is false, resumeReading() does nothing
    let keepOpen: unknown;
    try {
      keepOpen = (this.#protocol as Protocol).eofReceived?.();
    } catch (error) {
      this.#fatalError(error, 'Fatal error: protocol.eofReceived() call failed.', true);
      return;
    }
    // Half-closed: the protocol may still write; else the transport closes.
    if (keepOpen === true && this.#stream.canWriteEof) return;
    this.close();
  }

  isReading(): boolean {
    return !this.#closing && !this.#paused && !this.#atEof;
  }

  pauseReading(): void {
    if (this.#closing || this.#paused || this.#atEof) return;
    this.#paused = true;
    if (!this.#writeWantsRead) this.#unwatchRead();
  }

  resumeReading(): void {
    if (this.#closing || !this.#paused || this.#atEof) return;
    this.#paused = false;
    if (this.#started) this.#watchRead();
    // Bytes OpenSSL decoded while paused: the fd will not say so.
    if (this.#stream.hasPending()) this.#loop.schedule(this);
  }

  // ---- writing ----

  write(data: SendData): void {
    const bytes = toBytes(data, 'data');
    if (this.#eof) throw new InvalidStateError('Cannot call write() after writeEof()');
    const length = bytes.byteLength;
    if (length === 0) return;
    this.#writeBytes(bytes, length);
  }

  #writeBytes(bytes: ArrayBufferView, length: number): void {
    // After the end, writes go nowhere (asyncio warns; the protocol heard connectionLost).
    if (this.#lost) return;
    if (this.#size === 0) {
      if (this.#hold(bytes, length)) return;
      // Held bytes go first; the socket may not take them all.
      this.releaseHeld();
      if (this.#lost) return;
    }
    let sent = 0;
    if (this.#size === 0) {
      let n: number;
      try {
        // A plain socket takes what it can in one send; TLS one record a
        // call, so it goes on while the socket takes them.
        do {
          n = this.#stream.send(bytes, sent, length - sent);
          if (n > 0) sent += n;
        } while (n > 0 && sent < length && this.#stream.tls !== null);
      } catch (error) {
        this.#fatalError(error, 'Fatal write error on socket transport', false);
        return;
      }
      if (sent === length) return;
      if (n === CROSS) this.#writeWantsRead = true;
      if (this.#writeWantsRead) this.#watchRead();
      else this.#watchWrite();
    }
    this.#chunks.push(copyOf(bytes, sent, length - sent));
    this.#size += length - sent;
    this.#maybePauseProtocol();
  }

  writev(chunks: readonly SendData[]): void {
    if (!Array.isArray(chunks)) throw invalidArgType('chunks', 'an array', chunks);
    const views = chunks.map((chunk, i) => toBytes(chunk, `chunks[${i}]`));
    if (this.#eof) throw new InvalidStateError('Cannot call writev() after writeEof()');
    let total = 0;
    for (const view of views) total += view.byteLength;
    if (total === 0) return;
    const holdable = this.#size === 0 && this.#heldSize + total <= HOLD_MAX && this.#stream.gathers;
    if (!holdable) this.releaseHeld();
    if (
      views.length === 1 ||
      holdable ||
      !this.#stream.gathers ||
      this.#size !== 0 ||
      this.#lost ||
      views.length > IOV_MAX
    ) {
      // Over TLS one record; behind buffered bytes, in order after them.
      if (views.length === 1) this.#writeBytes(views[0] as ArrayBufferView, total);
      else {
        const joined = Buffer.concat(views.map((v) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength)));
        this.#writeBytes(joined, total);
      }
      return;
    }
    let n: number;
    try {
      n = this.#stream.sendv(views);
    } catch (error) {
      this.#fatalError(error, 'Fatal write error on socket transport', false);
      return;
    }
    if (n === total) return;
    let skip = Math.max(n, 0);
    for (const view of views) {
      const size = view.byteLength;
      if (skip >= size) {
        skip -= size;
        continue;
      }
      this.#chunks.push(copyOf(view, skip, size - skip));
      skip = 0;
    }
    this.#size += total - Math.max(n, 0);
    this.#watchWrite();
    this.#maybePauseProtocol();
  }

  // Holds a copy of a small write while the loop runs its callbacks: true if held.
  // Closing (a write from resumeWriting as close()'s buffer empties), it goes
  // at once: the end is scheduled right after, and would find it held.
  #hold(bytes: ArrayBufferView, length: number): boolean {
    if (this.#heldSize + length > HOLD_MAX || this.#held.length >= HOLD_WRITES || !this.#stream.gathers) return false;
    if (this.#closing) return false;
    if (this.#heldSize === 0 && !this.#loop.holdWrites(this)) return false;
    this.#held.push(copyOf(bytes, 0, length));
    this.#heldSize += length;
    return true;
  }

  /**
   * @internal Sends the held writes (gathered), as a write of them all
   * would: what the socket does not take is buffered and the writer watched.
   */
  releaseHeld(): void {
    const total = this.#heldSize;
    if (total === 0) return;
    const held = this.#held;
    this.#held = [];
    this.#heldSize = 0;
    if (this.#lost) return;
    let n: number;
    try {
      n = held.length === 1 ? this.#stream.send(held[0] as Buffer, 0, total) : this.#stream.sendv(held);
    } catch (error) {
      this.#fatalError(error, 'Fatal write error on socket transport', false);
      return;
    }
    if (n === total) {
      if (this.#eof) this.#shutdownWrite();
      return;
    }
    let skip = Math.max(n, 0);
    for (const chunk of held) {
      if (skip >= chunk.length) {
        skip -= chunk.length;
        continue;
      }
      this.#chunks.push(skip === 0 ? chunk : chunk.subarray(skip));
      skip = 0;
    }
    this.#size += total - Math.max(n, 0);
    this.#watchWrite();
    this.#maybePauseProtocol();
  }

  writelines(chunks: readonly SendData[]): void {
    this.writev(chunks);
  }

  #watchWrite(): void {
    const writer = this.#writer;
    if (writer.slots !== null) return;
    try {
      writer.slots = this.#loop.watchFd(this.#stream.sock, true, writer);
    } catch (error) {
      this.#fatalError(error, 'Fatal error: could not watch the socket for writing', true);
    }
  }

  #unwatchWrite(): void {
    const writer = this.#writer;
    const slots = writer.slots;
    if (slots === null) return;
    writer.slots = null;
    this.#loop.unwatch(slots, true, writer);
  }

  /** @internal The socket is writable (or, over TLS, readable for a send that waited for it). */
  writeReady(): void {
    if (this.#readWantsWrite) {
      this.#readWantsWrite = false;
      this[RUN]();
      if (this.#lost) return;
    }
    if (this.#size === 0) {
      this.#unwatchWrite();
      return;
    }
    const chunks = this.#chunks;
    let n: number;
    try {
      if (!this.#stream.gathers) {
        n = this.#sendRecords();
      } else if (chunks.length === 1) {
        const first = chunks[0] as Buffer;
        n = this.#stream.send(first, this.#head, first.length - this.#head);
      } else {
        const count = Math.min(chunks.length, IOV_MAX);
        const views: Buffer[] = new Array(count);
        for (let i = 0; i < count; i++) views[i] = chunks[i] as Buffer;
        if (this.#head !== 0) views[0] = (chunks[0] as Buffer).subarray(this.#head);
        n = this.#stream.sendv(views);
      }
      if (n > 0 && this.#stream.gathers) this.#consume(n);
    } catch (error) {
      this.#fatalError(error, 'Fatal write error on socket transport', false);
      return;
    }
    if (n === AGAIN) return;
    if (n === CROSS) {
      this.#writeWantsRead = true;
      this.#unwatchWrite();
      this.#watchRead();
      return;
    }
    this.#maybeResumeProtocol();
    if (this.#size !== 0) {
      this.#watchWrite();
      return;
    }
    this.#unwatchWrite();
    if (this.#closing) this.#scheduleLost(null);
    else if (this.#eof) this.#shutdownWrite();
  }

  // TLS: sends the buffer record by record while the socket takes them,
  // consuming what went; the bytes sent, or AGAIN / CROSS when none went.
  #sendRecords(): number {
    let total = 0;
    while (this.#size !== 0) {
      const first = this.#chunks[0] as Buffer;
      const n = this.#stream.send(first, this.#head, first.length - this.#head);
      if (n <= 0) return total === 0 ? n : total;
      this.#consume(n);
      total += n;
    }
    return total;
  }

  #consume(n: number): void {
    this.#size -= n;
    const chunks = this.#chunks;
    let left = n + this.#head;
    let drop = 0;
    while (drop < chunks.length && left >= (chunks[drop] as Buffer).length) {
      left -= (chunks[drop] as Buffer).length;
      drop++;
    }
    if (drop === chunks.length) {
      this.#chunks = [];
      this.#head = 0;
      return;
    }
    if (drop > 0) chunks.splice(0, drop);
    this.#head = left;
  }

  #maybePauseProtocol(): void {
    this.#flow.grew(this.#size, this.#protocol);
  }

  #maybeResumeProtocol(): void {
    this.#flow.shrank(this.#size, this.#protocol);
  }

  canWriteEof(): boolean {
    return this.#stream.canWriteEof;
  }

  writeEof(): void {
    if (!this.#stream.canWriteEof) this.#stream.shutdownWrite(); // throws: not over TLS
    if (this.#closing || this.#eof) return;
    this.#eof = true;
    // Held bytes go first; the shutdown follows once they are out.
    if (this.#heldSize !== 0) this.releaseHeld();
    else if (this.#size === 0) this.#shutdownWrite();
  }

  #shutdownWrite(): void {
    try {
      this.#stream.shutdownWrite();
    } catch (error) {
      this.#fatalError(error, 'Fatal error: shutdown(SHUT_WR) failed', false);
    }
  }

  getWriteBufferSize(): number {
    return this.#size;
  }

  getWriteBufferLimits(): [low: number, high: number] {
    return this.#flow.limits();
  }

  setWriteBufferLimits(high?: number, low?: number): void {
    this.#flow.set(high, low, this.#size, this.#protocol);
  }

  // ---- the end ----

  isClosing(): boolean {
    return this.#closing;
  }

  close(): void {
    if (this.#closing) return;
    this.releaseHeld();
    if (this.#lost) return;
    this.#closing = true;
    this.#unwatchRead();
    if (this.#size === 0) this.#scheduleLost(null);
  }

  abort(): void {
    // What was written before is sent as it would have been at once.
    this.releaseHeld();
    this.#forceClose(null);
  }

  #forceClose(error: Error | null): void {
    if (this.#lost) return;
    this.#clean = false;
    if (this.#heldSize !== 0) {
      // Written before the end (a protocol callback that wrote, then threw):
      // out now, as at once unheld; what the socket does not take is dropped.
      const held = this.#held;
      const total = this.#heldSize;
      this.#held = [];
      this.#heldSize = 0;
      try {
        if (held.length === 1) this.#stream.send(held[0] as Buffer, 0, total);
        else this.#stream.sendv(held);
      } catch {
        // The connection is ending anyway: `error` is what connectionLost hears.
      }
    }
    if (this.#size !== 0) {
      this.#chunks = [];
      this.#head = 0;
      this.#size = 0;
    }
    this.#unwatchWrite();
    this.#closing = true;
    this.#unwatchRead();
    this.#scheduleLost(error);
  }

  #scheduleLost(error: Error | null): void {
    if (this.#lost) return;
    this.#lost = true;
    this.#loop.callSoon(() => this.#callConnectionLost(error));
  }

  #callConnectionLost(error: Error | null): void {
    try {
      // After connectionMade only: a transport closed before it started
      // (its connectionMade still queued) ends after it, in this order.
      if (this.#started) this.#protocol.connectionLost?.(error);
    } catch (exception) {
      this.#loop.callExceptionHandler({ message: 'Exception in protocol.connectionLost()', exception, future: this });
    } finally {
      this.#remember();
      try {
        this.#stream.close(this.#clean);
      } catch {
        // Closed already (by the program, behind the transport's back).
      }
      this.#owner?.detach(this);
      this.#owner = null;
    }
  }

  // The names that need the socket (or the TLS session) open, kept for getExtraInfo after close (asyncio keeps them from the start).
  #remember(): void {
    if (this.#stream.sock.closed) return;
    this.getExtraInfo('sockname');
    this.getExtraInfo('peername');
    if (this.#stream.tls !== null) this.getExtraInfo('peercert');
  }

  /**
   * A failure that ends the connection. Connection errors (OSError, TLS
   * errors) are the peer's doing and reach only connectionLost; anything
   * else (a protocol callback that threw) goes to the exception handler too.
   */
  #fatalError(error: unknown, message: string, report: boolean): void {
    if (report || !isConnectionError(error)) {
      this.#loop.callExceptionHandler({ message, exception: error, future: this });
    } else if (this.#loop.debug) {
      this.#loop.callExceptionHandler({ message: `${message} (debug)`, exception: error, future: this });
    }
    this.#forceClose(error instanceof Error ? error : new Error(String(error)));
  }

  // ---- the rest ----

  getExtraInfo<K extends keyof TransportExtraInfo>(name: K): TransportExtraInfo[K] | undefined;
  getExtraInfo<T = unknown>(name: string, defaultValue?: T): unknown;
  getExtraInfo(name: string, defaultValue?: unknown): unknown {
    const extra = this.#extra as Record<string, unknown>;
    if (name in extra) return extra[name];
    const value = this.#lookup(name);
    if (value === undefined) return defaultValue;
    if (name === 'sockname' || name === 'peername' || name === 'peercert') extra[name] = value;
    return value;
  }

  #lookup(name: string): unknown {
    const { sock, tls } = this.#stream;
    switch (name) {
      case 'socket':
        return sock;
      case 'sockname':
      case 'peername':
        if (sock.closed) return undefined;
        try {
          return (name === 'sockname' ? sock.getsockname() : sock.getpeername()) as SocketAddress;
        } catch {
          return undefined;
        }
      case 'sslObject':
        return tls ?? undefined;
      case 'cipher':
        return tls?.cipher ?? undefined;
      case 'protocol':
        return tls?.protocol ?? undefined;
      case 'peercert':
        return tls?.getPeerCertificate() ?? undefined;
      default:
        return undefined;
    }
  }

  setProtocol(protocol: BaseProtocol): void {
    if (typeof protocol !== 'object' || protocol === null) throw invalidArgType('protocol', 'an object', protocol);
    this.#protocol = protocol;
    this.#buffered = typeof (protocol as BufferedProtocol).getBuffer === 'function';
  }

  getProtocol(): BaseProtocol {
    return this.#protocol;
  }
}
