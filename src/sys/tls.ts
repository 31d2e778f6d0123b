/**
 * TLS over any iomux socket, with the OpenSSL the Node binary carries
 * (Python's `ssl` module, camelCased): a {@link TlsContext} holds what
 * connections share (trusted roots, certificate and key, versions, ALPN,
 * the client's session cache); `context.wrapSocket(sock)` gives a
 * {@link TlsSocket} whose handshake, receives and sends run OpenSSL over
 * the socket's fd.
 *
 * On a non-blocking socket an operation that cannot go on says which
 * readiness it waits for, as OpenSSL's WANT_READ / WANT_WRITE: the `try*`
 * methods return {@link TLS_WANT_READ} / {@link TLS_WANT_WRITE} (what the
 * loop's `startTls` and sock_* operations use), the Python-like ones throw
 * {@link TlsWantReadError} / {@link TlsWantWriteError} (both a
 * BlockingIOError, code EAGAIN). On a blocking socket they block.
 *
 * Verification is on by default: the peer's chain against Node's bundled
 * root certificates (or `ca`), the host name against the certificate.
 * Failures carry Node's codes: `CERT_HAS_EXPIRED`,
 * `DEPTH_ZERO_SELF_SIGNED_CERT`, `UNABLE_TO_VERIFY_LEAF_SIGNATURE`,
 * `ERR_TLS_CERT_ALTNAME_INVALID`, `ERR_SSL_<reason>` for protocol errors,
 * `ECONNRESET` for a peer gone mid-handshake.
 *
 * @example
 * ```ts
 * const sock = new Socket(AF_INET, SOCK_STREAM);
 * sock.connect(['93.184.215.14', 443]);
 * const tls = new TlsContext().wrapSocket(sock, { serverHostname: 'example.com' });
 * tls.doHandshake();
 * tls.send('GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n');
 * console.log(tls.recv(65536).toString());
 * tls.close();
 * ```
 *
 * @module
 */
import { X509Certificate } from 'node:crypto';

import type { SendData } from './addresses.js';
import { describe, invalidArgType, invalidArgValue } from './args.js';
import type { NativeTlsConn, NativeTlsContext, NativeTlsInfo } from './binding.js';
import { EAGAIN, SHUT_RD } from './constants.js';
import { BlockingIOError, OSError } from './errors.js';
import { native } from './native.js';
import type { Socket } from './socket.js';
import { nativeContextOptions, type TlsContextOptions } from './tls-options.js';

export type { PemInput, TlsContextOptions, TlsVersion } from './tls-options.js';

const { tlsRead, tlsWrite, tlsHandshake, tlsShutdown, tlsHasPending } = native;
const RESULTS = native.tlsResults;

/** A `try*` result: wait until the socket is readable, then call again. */
export const TLS_WANT_READ: number = RESULTS.WANT_READ;
/** A `try*` result: wait until the socket is writable, then call again. */
export const TLS_WANT_WRITE: number = RESULTS.WANT_WRITE;
const FAILED = RESULTS.FAILED;

/** Options of {@link TlsContext.wrapSocket}. */
export interface WrapSocketOptions {
  /**
   * Client: the server's name, sent as SNI and checked against its
   * certificate (an IP address is checked against the certificate's IP
   * names and not sent). Without it the name is not checked.
   */
  serverHostname?: string;
  /**
   * Client: where a session is kept for resumption by the next connection
   * (default: the host name and the peer's address). Sessions are kept per
   * context.
   */
  sessionKey?: string;
}

/**
 * A TLS failure: verification (`CERT_HAS_EXPIRED`,
 * `ERR_TLS_CERT_ALTNAME_INVALID`...), the protocol (`ERR_SSL_<reason>`), or
 * the peer gone mid-handshake (`ECONNRESET`). Kernel errors stay OSErrors.
 */
export class TlsError extends Error {
  /** Node's code for the failure. */
  readonly code: string;
  /** The host name checked, for a certificate that does not match it. */
  readonly host?: string;

  constructor(code: string, message: string, host?: string) {
    super(message);
    this.code = code;
    if (host !== undefined) this.host = host;
  }

  override get name(): string {
    return 'TlsError';
  }
}

/** A non-blocking TLS operation must wait until the socket is readable (Python's SSLWantReadError). */
export class TlsWantReadError extends BlockingIOError {}
/** A non-blocking TLS operation must wait until the socket is writable (Python's SSLWantWriteError). */
export class TlsWantWriteError extends BlockingIOError {}

// Sockets a TlsSocket is made over, until it or the socket is closed.
const wrapped = new WeakSet<Socket>();

/**
 * What TLS connections share: trusted roots (Node's bundled ones, or
 * `ca`), this side's certificate and key, versions, ALPN, and -- for a
 * client -- the sessions the next connection to the same peer resumes.
 * Make one and reuse it: building it parses every root certificate.
 *
 * @example
 * ```ts
 * const client = new TlsContext({ ca: readFileSync('ca.pem', 'utf8') });
 * const server = new TlsContext({ server: true, cert, key, alpn: ['http/1.1'] });
 * ```
 */
export class TlsContext {
  /** True for the server's side. */
  readonly server: boolean;
  /** Whether a peer whose certificate does not verify fails the handshake. */
  readonly rejectUnauthorized: boolean;
  /** @internal */
  readonly native: NativeTlsContext;

  /**
   * @throws {TypeError} ERR_INVALID_ARG_TYPE / ERR_INVALID_ARG_VALUE for a
   *   bad option (a server without `cert` and `key`, `cert` without `key`);
   *   ERR_TLS_INVALID_PROTOCOL_VERSION for a version other than TLSv1.2 / TLSv1.3
   * @throws {Error} ERR_OSSL_<reason> for PEM that does not parse or a key that is not the certificate's
   */
  constructor(options: TlsContextOptions = {}) {
    const checked = nativeContextOptions(options);
    this.native = new native.TlsContext(checked);
    this.server = checked.server;
    this.rejectUnauthorized = checked.reject;
  }

  /**
   * A TLS connection over `sock` (connected, or accepted for a server
   * context), not yet shaken hands: call {@link TlsSocket.doHandshake} (or let
   * the loop's `startTls` do it). The TlsSocket uses the socket's fd; close
   * the TlsSocket, not the socket (closing the socket ends the TLS
   * connection too).
   *
   * @throws {TypeError} for a sock that is no open Socket, or a serverHostname that is no host name or address
   */
  wrapSocket(sock: Socket, options: WrapSocketOptions = {}): TlsSocket {
    return new TlsSocket(this, sock, options);
  }
}

/**
 * One TLS connection over a {@link Socket} (from {@link TlsContext.wrapSocket}).
 * The loop's sock_* operations accept it where they accept a Socket.
 */
export class TlsSocket implements Disposable {
  /** The socket underneath. */
  readonly socket: Socket;
  /** The context it was made from. */
  readonly context: TlsContext;
  /** The host name checked (client), or null. */
  readonly serverHostname: string | null;
  readonly #conn: NativeTlsConn;
  readonly #id: number;
  #info: NativeTlsInfo | null = null;
  #handshaken = false;
  #failed = false;
  #closed = false;
  // Our close_notify went (SSL_shutdown returned 0 or 1): calling it again
  // reads, waiting for the peer's -- on a blocking socket, for as long as
  // the peer stays silent.
  #notified = false;
  readonly #beforeClose: (fd: number) => void;

  constructor(context: TlsContext, sock: Socket, options: WrapSocketOptions = {}) {
    if (!(context instanceof TlsContext)) throw invalidArgType('context', 'a TlsContext', context);
    if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'an object', options);
    const { serverHostname, sessionKey } = options;
    if (serverHostname !== undefined && (typeof serverHostname !== 'string' || serverHostname === '')) {
      throw invalidArgType('serverHostname', 'a non-empty string', serverHostname);
    }
    if (serverHostname?.includes('\0') === true) {
      throw invalidArgValue(
        `The "serverHostname" option must hold no NUL character. Received ${describe(serverHostname)}`,
      );
    }
    if (sessionKey !== undefined && typeof sessionKey !== 'string') {
      throw invalidArgType('sessionKey', 'a string', sessionKey);
    }
    const fd = sock.fileno(); // throws EBADF for a closed socket
    if (wrapped.has(sock)) {
      // Two TLS connections over one stream would read each other's records.
      throw invalidArgValue(`The socket (fd ${fd}) carries a TLS connection already: use that TlsSocket`);
    }
    const host = context.server ? null : (serverHostname ?? null);
    const key = context.server ? null : (sessionKey ?? defaultSessionKey(sock, host));
    this.#conn = new native.TlsConn(context.native, fd, host, key);
    this.#id = this.#conn.id();
    this.socket = sock;
    this.context = context;
    this.serverHostname = host;
    // Whoever closes the socket ends the TLS connection first: OpenSSL must
    // never touch an fd number the kernel may have given to another file.
    this.#beforeClose = () => {
      this.#closed = true;
      this.#conn.close();
      wrapped.delete(sock);
    };
    sock.addBeforeClose(this.#beforeClose);
    wrapped.add(sock);
  }

  /** The socket's fd. @throws {OSError} EBADF once closed */
  fileno(): number {
    return this.socket.fileno();
  }

  /** True once this or its socket was closed. */
  get closed(): boolean {
    return this.#closed || this.socket.closed;
  }

  /** True once the handshake completed. */
  get handshaken(): boolean {
    return this.#handshaken;
  }

  /**
   * One step of the handshake: 0 once done, else {@link TLS_WANT_READ} /
   * {@link TLS_WANT_WRITE} (call again when the socket is ready).
   *
   * @throws {TlsError} / {OSError} when it failed (the connection is then unusable)
   */
  tryHandshake(): number {
    const rc = tlsHandshake(this.#id);
    if (rc === 0) {
      this.#handshaken = true;
      this.#info = this.#conn.info();
      return 0;
    }
    if (rc === FAILED) throw this.#failure('SSL_do_handshake');
    return rc;
  }

  /**
   * The handshake (Python's `do_handshake`).
   *
   * @throws {TlsWantReadError} / {TlsWantWriteError} on a non-blocking socket that must wait
   * @throws {TlsError} / {OSError} when it failed
   */
  doHandshake(): void {
    wantOrCount(this.tryHandshake(), 'SSL_do_handshake');
  }

  /**
   * Receives into `buffer` (from `offset`, at most `length` bytes): the
   * count, 0 when the peer closed with close_notify, or
   * {@link TLS_WANT_READ} / {@link TLS_WANT_WRITE}.
   *
   * @throws {TlsError} ERR_SSL_UNEXPECTED_EOF_WHILE_READING when the peer
   *   closed without close_notify (what came may be truncated); others as tryHandshake
   * @throws {TypeError} / {RangeError} for a range outside the buffer
   */
  tryRecvInto(buffer: ArrayBufferView, offset?: number, length?: number): number {
    // A receive or send before the handshake does it first (what it agreed
    // is then known, and a peer that does not verify is refused).
    if (!this.#handshaken) {
      const rc = this.tryHandshake();
      if (rc !== 0) return rc;
    }
    const rc = tlsRead(this.#id, buffer, offset, length);
    if (rc === FAILED) throw this.#failure('SSL_read');
    return rc;
  }

  /**
   * Receives into `buffer` (Python's `recv_into`; `nbytes` 0: the whole buffer): the count, 0 at close_notify.
   *
   * @throws {TlsWantReadError} / {TlsWantWriteError} on a non-blocking socket that must wait; others as tryRecvInto
   */
  recvInto(buffer: ArrayBufferView, nbytes = 0): number {
    return wantOrCount(this.tryRecvInto(buffer, 0, nbytes === 0 ? undefined : nbytes), 'SSL_read');
  }

  /**
   * Receives up to `bufsize` bytes; an empty Buffer means the peer closed with close_notify.
   *
   * @throws as {@link recvInto}
   */
  recv(bufsize: number): Buffer {
    const buffer = Buffer.allocUnsafe(bufsize);
    const n = this.recvInto(buffer);
    return n === bufsize ? buffer : Buffer.from(buffer.subarray(0, n));
  }

  /**
   * Sends bytes [offset, offset + length) of `data` (a string: all of it, as
   * UTF-8): how many went (at least one record's worth), or
   * {@link TLS_WANT_READ} / {@link TLS_WANT_WRITE}. After a want, call again
   * with the same bytes.
   *
   * @throws {TlsError} / {OSError} (EPIPE, ECONNRESET) when it failed
   */
  trySend(data: SendData, offset?: number, length?: number): number {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    if (!ArrayBuffer.isView(bytes)) throw invalidArgType('data', 'a string, Buffer, TypedArray or DataView', data);
    if (!this.#handshaken) {
      const rc = this.tryHandshake();
      if (rc !== 0) return rc;
    }
    const rc = tlsWrite(this.#id, bytes, offset, length);
    if (rc === FAILED) throw this.#failure('SSL_write');
    return rc;
  }

  /**
   * Sends `data` (Python's `send`): how many bytes went.
   *
   * @throws {TlsWantReadError} / {TlsWantWriteError} on a non-blocking socket that must wait; others as trySend
   */
  send(data: SendData): number {
    return wantOrCount(this.trySend(data), 'SSL_write');
  }

  /**
   * Sends all of `data` (blocking sockets; a non-blocking one throws a want error when full).
   *
   * @throws as {@link send}
   */
  sendAll(data: SendData): void {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    if (!ArrayBuffer.isView(bytes)) throw invalidArgType('data', 'a string, Buffer, TypedArray or DataView', data);
    let offset = 0;
    while (offset < bytes.byteLength) {
      offset += wantOrCount(this.trySend(bytes, offset), 'SSL_write');
    }
  }

  /**
   * Sends close_notify: 1 when the peer's came too, 0 when only ours went,
   * or {@link TLS_WANT_READ} / {@link TLS_WANT_WRITE}.
   *
   * @throws {TlsError} / {OSError} when it failed
   */
  tryShutdown(): number {
    const rc = tlsShutdown(this.#id);
    if (rc === FAILED) throw this.#failure('SSL_shutdown');
    if (rc >= 0) this.#notified = true;
    return rc;
  }

  /**
   * Half-closes: for writing (SHUT_WR, SHUT_RDWR) close_notify goes first,
   * then the socket's shutdown(2). On a non-blocking socket whose buffer
   * has no room for close_notify, nothing is shut down: a want error says
   * so, and calling again once the socket is writable finishes the job.
   *
   * @throws {TlsWantWriteError} / {TlsWantReadError} on a non-blocking socket that must wait
   * @throws {OSError} from shutdown(2); as {@link tryShutdown}
   */
  shutdown(how: number): void {
    if (how !== SHUT_RD && this.#handshaken && !this.#failed && !this.#notified && !this.closed) {
      // shutdown(2) with close_notify still in OpenSSL's hands would lose it:
      // the peer would read a clean end as a truncation.
      wantOrCount(this.tryShutdown(), 'SSL_shutdown');
    }
    this.socket.shutdown(how);
  }

  /**
   * @internal From now on never blocks, whatever the socket's O_NONBLOCK
   * (MSG_DONTWAIT): the loop's operations, like its plain sock_* ones,
   * must not block its thread on a blocking socket.
   */
  dontWait(): void {
    this.#conn.dontWait();
  }

  /** Decrypted bytes OpenSSL holds that a receive returns without waiting (Python's `pending()`). */
  pending(): number {
    return this.#conn.pending();
  }

  /**
   * True when OpenSSL holds received bytes -- decrypted, or records read
   * ahead of what was asked: a receive then completes without the socket
   * being readable, so a loop must try it before it waits.
   */
  hasPending(): boolean {
    return tlsHasPending(this.#id);
  }

  /**
   * Closes the connection and its socket. After a completed handshake,
   * close_notify goes first if the socket's buffer takes it (the peer then
   * knows nothing was cut off). Idempotent.
   */
  close(): void {
    if (!this.closed && this.#handshaken && !this.#failed && !this.#notified) {
      try {
        this.tryShutdown();
      } catch {
        // The peer is gone already: there is nobody to notify.
      }
    }
    this.#closed = true;
    this.#conn.close();
    this.socket.removeBeforeClose(this.#beforeClose);
    wrapped.delete(this.socket);
    this.socket.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** The negotiated version ('TLSv1.3'), or null before the handshake. */
  get protocol(): string | null {
    return this.#info?.protocol ?? null;
  }

  /** The negotiated cipher suite's OpenSSL name, or null. */
  get cipher(): string | null {
    return this.#info?.cipher ?? null;
  }

  /** The protocol ALPN selected, or null (none offered, or none in common). */
  get alpnProtocol(): string | null {
    return this.#info?.alpn ?? null;
  }

  /** True when the peer's certificate verified (chain and, for a client, host name). */
  get authorized(): boolean {
    return this.#info !== null && this.#info.verifyError === null;
  }

  /** Why the peer is not authorized (a code such as 'CERT_HAS_EXPIRED'), or null. */
  get authorizationError(): string | null {
    return this.#info?.verifyError ?? null;
  }

  /** True when the handshake resumed an earlier session (no full key exchange). */
  get sessionReused(): boolean {
    return this.#info?.sessionReused ?? false;
  }

  /** The SNI name a client asked for (server side), or null. */
  get servername(): string | null {
    return this.#info?.servername ?? null;
  }

  /** The peer's certificate, or null (none sent, or closed). */
  getPeerCertificate(): X509Certificate | null {
    const der = this.#conn.peerCertificate();
    return der === null ? null : new X509Certificate(der);
  }

  // The error of the operation that just failed; the connection is unusable after it.
  #failure(syscall: string): Error {
    this.#failed = true;
    const failure = this.#conn.failure();
    if (failure.errno !== 0) return new OSError(failure.errno, syscall);
    if (failure.code === 'ERR_TLS_CERT_ALTNAME_INVALID' && this.serverHostname !== null) {
      return new TlsError(
        failure.code,
        altnameMessage(this.serverHostname, this.getPeerCertificate()),
        this.serverHostname,
      );
    }
    return new TlsError(failure.code, failure.message);
  }
}

// Node's wording for a certificate that is not the host's.
function altnameMessage(host: string, cert: X509Certificate | null): string {
  const names = cert?.subjectAltName ?? '(none)';
  return `Hostname/IP does not match certificate's altnames: Host: ${host}. is not in the cert's altnames: ${names}`;
}

// The count, or the want error a Python-like method throws.
function wantOrCount(rc: number, syscall: string): number {
  if (rc >= 0) return rc;
  if (rc === TLS_WANT_READ) throw new TlsWantReadError(EAGAIN, syscall, '(wait until readable)');
  throw new TlsWantWriteError(EAGAIN, syscall, '(wait until writable)');
}

// A client's sessions are kept by the name it asked for and the address it reached.
function defaultSessionKey(sock: Socket, host: string | null): string | null {
  try {
    const peer = sock.getpeername();
    return `${host ?? ''}|${typeof peer === 'string' ? peer : `${peer[0]}:${peer[1]}`}`;
  } catch {
    return null; // not connected (yet): no resumption
  }
}
