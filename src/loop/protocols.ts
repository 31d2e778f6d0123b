/**
 * asyncio's Transports and Protocols, camelCased: the callback API one level
 * above the loop's sock_* operations.
 *
 * A Protocol is what the program writes: the loop calls it (connectionMade,
 * then dataReceived or a buffered protocol's getBuffer/bufferUpdated, then
 * eofReceived, and connectionLost exactly once). A Transport is what the
 * loop gives it: write, writev, writeEof, close, abort, flow control.
 * Every method of a protocol is optional (asyncio's base classes are no-ops).
 *
 * @module
 */
import type { SendData, SocketAddress } from '../sys/index.js';

/** What every protocol may define. */
export interface BaseProtocol {
  /**
   * The connection is gone, or the transport closed: called once, after
   * connectionMade. `exc` is null for a clean close (eof, close(), abort()),
   * else the error that ended it (ECONNRESET...).
   */
  connectionLost?(exc: Error | null): void;
  /** The transport's write buffer rose above its high-water mark (flow control). */
  pauseWriting?(): void;
  /** The write buffer drained to its low-water mark (after a pauseWriting). */
  resumeWriting?(): void;
}

/** A stream protocol (TCP, Unix stream, TLS): data arrives as Buffers. */
export interface Protocol extends BaseProtocol {
  /** The connection is made; `transport` is how to write to it. Called first, once. */
  connectionMade?(transport: Transport): void;
  /**
   * Bytes arrived. The Buffer is the protocol's to keep: the loop never
   * writes into it again.
   */
  dataReceived?(data: Buffer): void;
  /**
   * The peer will send no more (it half-closed, or closed). Return true to
   * keep the transport open for writing (half-close); anything else closes it.
   */
  eofReceived?(): boolean | undefined;
}

/**
 * A stream protocol that receives into its own memory, with no copy:
 * the loop asks it for a buffer and reads into it.
 */
export interface BufferedProtocol extends BaseProtocol {
  connectionMade?(transport: Transport): void;
  /**
   * Where the next bytes go. `sizeHint` is -1 (no hint) or a wish in
   * bytes; the buffer must not be empty.
   */
  getBuffer(sizeHint: number): ArrayBufferView;
  /** `nbytes` bytes were written at the start of the buffer getBuffer gave. */
  bufferUpdated(nbytes: number): void;
  eofReceived?(): boolean | undefined;
}

/** A datagram protocol (UDP, Unix datagram). */
export interface DatagramProtocol extends BaseProtocol {
  connectionMade?(transport: DatagramTransport): void;
  /** A datagram arrived from `address` (null when the sender has no address, e.g. an unbound Unix socket). */
  datagramReceived?(data: Buffer, address: SocketAddress | null): void;
  /** A send or receive failed (ECONNREFUSED from an ICMP error...): the transport stays open. */
  errorReceived?(exc: Error): void;
}

/** The names {@link BaseTransport.getExtraInfo} answers. */
export interface TransportExtraInfo {
  /** The socket (a Socket, or for TLS the TlsSocket's socket). */
  socket: unknown;
  /** The local address. */
  sockname: SocketAddress;
  /** The peer's address (absent for an unconnected datagram socket). */
  peername: SocketAddress;
  /** TLS: the TlsSocket. */
  sslObject: unknown;
  /** TLS: the negotiated cipher's name. */
  cipher: string | null;
  /** TLS: the peer's certificate. */
  peercert: unknown;
  /** TLS: the protocol version ('TLSv1.3'). */
  protocol: string | null;
}

/** What every transport offers. */
export interface BaseTransport {
  /**
   * asyncio's get_extra_info: 'socket', 'sockname', 'peername', and for TLS
   * 'sslObject', 'cipher', 'peercert', 'protocol'. Unknown names give `defaultValue`.
   */
  getExtraInfo<K extends keyof TransportExtraInfo>(name: K): TransportExtraInfo[K] | undefined;
  getExtraInfo<T = unknown>(name: string, defaultValue?: T): unknown;
  /** True once close() or abort() was called, or the connection was lost. */
  isClosing(): boolean;
  /**
   * Closes after the buffered data is sent: no more reads; connectionLost(null)
   * follows (in a later iteration) once the buffer is empty. Idempotent.
   */
  close(): void;
  /** Replaces the protocol that gets the callbacks from now on. */
  setProtocol(protocol: BaseProtocol): void;
  getProtocol(): BaseProtocol;
}

/** The read side of a stream transport. */
export interface ReadTransport extends BaseTransport {
  isReading(): boolean;
  /** Stops calling dataReceived until resumeReading (no-op when paused or closing). */
  pauseReading(): void;
  resumeReading(): void;
}

/** The write side of a stream transport, with asyncio's flow control. */
export interface WriteTransport extends BaseTransport {
  /**
   * Sends `data` now if the socket takes it, else keeps the rest (copied) and
   * sends it when the socket is writable. Never blocks, never throws for the
   * connection's errors (those close the transport and reach connectionLost).
   *
   * @throws {TypeError} for data that is not a string or ArrayBufferView
   * @throws {InvalidStateError} after writeEof()
   */
  write(data: SendData): void;
  /** Writes several chunks, gathered into one sendmsg(2) when nothing is buffered. @throws as {@link write} */
  writev(chunks: readonly SendData[]): void;
  /** asyncio's name for {@link writev}. */
  writelines(chunks: readonly SendData[]): void;
  /** Shuts the write side down (SHUT_WR) once the buffer is sent. */
  writeEof(): void;
  /** Whether writeEof() is supported (false for TLS, as in asyncio). */
  canWriteEof(): boolean;
  /** Closes at once: buffered data is dropped; connectionLost(null) follows. */
  abort(): void;
  /** Bytes waiting in the write buffer. */
  getWriteBufferSize(): number;
  /** `[low, high]` water marks in bytes. */
  getWriteBufferLimits(): [low: number, high: number];
  /**
   * Sets the water marks (bytes): pauseWriting above `high`, resumeWriting
   * at or below `low`. Defaults as asyncio: high 64 KiB, low high / 4.
   *
   * @throws {RangeError} unless high >= low >= 0
   */
  setWriteBufferLimits(high?: number, low?: number): void;
}

/** A stream transport: TCP, Unix stream, TLS. */
export interface Transport extends ReadTransport, WriteTransport {}

/** A datagram transport: UDP or Unix datagram. */
export interface DatagramTransport extends BaseTransport {
  /**
   * Sends one datagram to `address` (omit it on a connected endpoint). A
   * full socket buffer (EAGAIN) queues the datagram and sends it when
   * writable: never dropped silently. Errors reach errorReceived.
   *
   * @throws {TypeError} for bad data or address
   */
  sendto(data: SendData, address?: SocketAddress | null): void;
  /** Closes at once: queued datagrams are dropped; connectionLost(null) follows. */
  abort(): void;
  /** Bytes of datagrams waiting to be sent. */
  getWriteBufferSize(): number;
  getWriteBufferLimits(): [low: number, high: number];
  setWriteBufferLimits(high?: number, low?: number): void;
}

/** Makes the protocol of each new connection. */
export type ProtocolFactory<P> = () => P;
