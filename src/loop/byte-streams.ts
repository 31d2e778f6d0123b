/**
 * What a stream transport reads and writes through: a plain socket's
 * non-blocking recv/send/sendmsg, or a TLS socket's SSL_read/SSL_write.
 * Each call answers at once, never throwing for "not now": a count, or
 * {@link AGAIN} (wait for the same direction's readiness), or for TLS
 * {@link CROSS} (a receive must wait for writability, a send for
 * readability: OpenSSL's WANT_WRITE / WANT_READ the other way round).
 *
 * @module
 */
import { SHUT_WR, type Socket, TLS_WANT_READ, TLS_WANT_WRITE, TlsError, type TlsSocket } from '../sys/index.js';
import { native } from '../sys/native.js';

/** Nothing now: wait for the direction's own readiness. */
export const AGAIN = -1;
/** TLS: wait for the other direction's readiness. */
export const CROSS = -2;

/** At most this many buffers in one sendmsg(2) (Linux's IOV_MAX). */
export const IOV_MAX = 1024;

/** @internal A transport's byte stream. */
export interface ByteStream {
  readonly sock: Socket;
  readonly tls: TlsSocket | null;
  /** Receives into [offset, offset + length): bytes, 0 at the end of the stream, AGAIN or CROSS. */
  recv(buffer: Uint8Array, offset: number, length: number): number;
  /** Sends [offset, offset + length): bytes taken, AGAIN or CROSS. */
  send(bytes: ArrayBufferView, offset: number, length: number): number;
  /** Sends the views gathered (at most IOV_MAX): bytes taken, AGAIN or CROSS. */
  sendv(views: readonly ArrayBufferView[]): number;
  /** Bytes received and decoded that a recv returns without the socket being readable (TLS). */
  hasPending(): boolean;
  /** Whether shutdownWrite is possible (not over TLS, as asyncio). */
  readonly canWriteEof: boolean;
  /** Whether sendv gathers (TLS sends only the first view: join before writing). */
  readonly gathers: boolean;
  /** Half-closes for writing. @throws {OSError} */
  shutdownWrite(): void;
  /**
   * Closes. `clean`: the transport ended in order (TLS: close_notify first,
   * if the socket takes it now); else (abort, an error) the peer must not
   * take the end for a complete one, so TLS sends none.
   */
  close(clean: boolean): void;
}

/** @internal A plain socket's byte stream: the addon's try* calls on its fd. */
export class PlainStream implements ByteStream {
  readonly tls = null;
  readonly canWriteEof = true;
  readonly gathers = true;
  readonly #fd: number;

  constructor(readonly sock: Socket) {
    this.#fd = sock.fileno();
  }

  recv(buffer: Uint8Array, offset: number, length: number): number {
    return native.tryRecv(this.#fd, buffer, offset, length) ?? AGAIN;
  }

  send(bytes: ArrayBufferView, offset: number, length: number): number {
    return native.trySend(this.#fd, bytes, offset, length) ?? AGAIN;
  }

  sendv(views: readonly ArrayBufferView[]): number {
    return native.trySendmsg(this.#fd, views, undefined, 0, undefined, undefined, undefined) ?? AGAIN;
  }

  hasPending(): boolean {
    return false;
  }

  shutdownWrite(): void {
    this.sock.shutdown(SHUT_WR);
  }

  close(_clean: boolean): void {
    this.sock.close();
  }
}

/** @internal A TLS socket's byte stream (after the handshake). */
export class TlsStream implements ByteStream {
  readonly canWriteEof = false;
  readonly gathers = false;
  readonly sock: Socket;

  constructor(readonly tls: TlsSocket) {
    this.sock = tls.socket;
    tls.dontWait();
  }

  recv(buffer: Uint8Array, offset: number, length: number): number {
    let n: number;
    try {
      n = this.tls.tryRecvInto(buffer, offset, length);
    } catch (error) {
      // A peer that closes without close_notify: an end like any other
      // (what came may be truncated; HTTP and most protocols frame their
      // data), as asyncio's SSL transport and Node's tls take it.
      if (error instanceof TlsError && error.code === 'ERR_SSL_UNEXPECTED_EOF_WHILE_READING') return 0;
      throw error;
    }
    return n === TLS_WANT_READ ? AGAIN : n === TLS_WANT_WRITE ? CROSS : n;
  }

  send(bytes: ArrayBufferView, offset: number, length: number): number {
    const n = this.tls.trySend(bytes, offset, length);
    return n === TLS_WANT_WRITE ? AGAIN : n === TLS_WANT_READ ? CROSS : n;
  }

  sendv(views: readonly ArrayBufferView[]): number {
    // OpenSSL has no gathered write, and after a want must be given the
    // same bytes again: the first view alone (the transport keeps it first
    // until it is all taken).
    const first = views[0] as ArrayBufferView;
    return this.send(first, 0, first.byteLength);
  }

  hasPending(): boolean {
    return this.tls.hasPending();
  }

  shutdownWrite(): void {
    throw Object.assign(new Error('TLS transports cannot half-close: writeEof() is not supported over TLS'), {
      code: 'ERR_METHOD_NOT_IMPLEMENTED',
    });
  }

  close(clean: boolean): void {
    if (!clean) {
      // The socket's own close ends the TLS session with it, saying nothing.
      this.sock.close();
      return;
    }
    try {
      if (this.tls.handshaken) this.tls.tryShutdown();
    } catch {
      // The peer is gone: nothing to tell it.
    }
    this.tls.close();
  }
}
