/**
 * Keep-alive: a per-host pool of HTTP/1.1 connections on the iomux loop.
 * The notes' fetchers close each connection (Connection: close); a client
 * fetching many URLs from a host reuses them instead.
 *
 * https:// connections are pooled the same way, once shaken hands: a pool
 * is keyed by scheme, host and port (and, for TLS, the trust options the
 * connection was verified under), and a new connection to a host resumes
 * the TLS session of the previous one (the fetchers' shared context).
 *
 * @module
 */
import { type Coroutine, type Future, waitFor } from '../coro/index.js';
import { formatRequest, type HttpTarget, parseHttpUrl, type ResponseParser } from '../http/index.js';
import type { EventLoop, Protocol, Transport } from '../loop/index.js';
import { TLS_WANT_READ, TLS_WANT_WRITE, type TlsSocket } from '../sys/index.js';
import { connectAny, readResponse, startTlsOptions } from './coroutine.js';
import { TimedParser, TimingMarks } from './timings.js';
import { poolKey } from './tls.js';
import {
  DEFAULT_TIMEOUT_MS,
  FetcherClosedError,
  type FetchOptions,
  type FetchResult,
  toFetchError,
  toResult,
} from './types.js';

export interface PoolOptions {
  /** Most connections per host, busy or idle (default 6, as browsers do). */
  maxPerHost?: number;
}

/** A pooled connection, whichever way it does its I/O. */
interface Connection {
  /** Reused at least once: a failure before any byte may be a stale keep-alive. */
  reused: boolean;
  /** Sends `request` and reads the response into `parser`. */
  exchange(loop: EventLoop, request: Buffer, parser: TimedParser): Future<void> | Coroutine<void>;
  /** The exchange is over (done, failed or cancelled). */
  release(): void;
  /** Whether it can carry another request. */
  usable(): boolean;
  /** It waits in the pool / it leaves the pool for a request. */
  park(): void;
  unpark(): void;
  /** Closes at once. */
  abort(): void;
}

// A byte's room: an idle connection has nothing to say, so a record it
// does decrypt is a stray byte that makes it unusable anyway.
const PROBE = Buffer.alloc(1);

/**
 * An https connection, on the loop's sock_* operations over its TlsSocket.
 * It stays off the transports because a TLS transport takes a peer's FIN
 * without close_notify for a clean end (src/loop/byte-streams.ts), where
 * the fetchers report ERR_SSL_UNEXPECTED_EOF_WHILE_READING: a
 * close-delimited body cut short must not pass for a whole one.
 */
class TlsConnection implements Connection {
  reused = false;
  #closed = false;
  readonly #loop: EventLoop;
  readonly #sock: TlsSocket;
  readonly #onIdleGone: (conn: Connection) => void;

  constructor(loop: EventLoop, sock: TlsSocket, onIdleGone: (conn: Connection) => void) {
    this.#loop = loop;
    this.#sock = sock;
    this.#onIdleGone = onIdleGone;
  }

  *exchange(loop: EventLoop, request: Buffer, parser: TimedParser): Coroutine<void> {
    yield* loop.sockSendAll(this.#sock, request);
    parser.marks.sent();
    yield* readResponse(loop, this.#sock, parser);
  }

  release(): void {}

  usable(): boolean {
    return !this.#closed;
  }

  // Watches the idle connection: a server that closes it (or sends stray
  // bytes) makes it unusable, and it is dropped at once rather than fail
  // the next request. The registration stays while idle, so reusing the
  // connection costs no epoll_ctl ADD/DEL pair (the request's own receive
  // takes it over in the same iteration).
  park(): void {
    this.#loop.addReader(this.#sock, this.#idleReadable);
  }

  unpark(): void {
    this.#loop.removeReader(this.#sock);
  }

  abort(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#loop.removeReader(this.#sock);
    this.#sock.close();
  }

  // A TLS 1.3 session ticket is a record that is no data: a read consumes
  // it and answers with a want, and the connection stays.
  readonly #idleReadable = (): void => {
    try {
      const n = this.#sock.tryRecvInto(PROBE);
      if (n === TLS_WANT_READ || n === TLS_WANT_WRITE) return;
    } catch {
      // Reset: gone.
    }
    this.#onIdleGone(this);
  };
}

/**
 * An http connection: the Protocol its transport calls. A request's
 * response is fed to its parser as it arrives (dataReceived), and the
 * request's Future settles when the parser is done, the peer closes, or the
 * connection fails. While idle it has no parser: bytes or an EOF then mean
 * the connection is unusable, and it leaves the pool at once.
 */
class PoolConnection implements Protocol, Connection {
  transport: Transport | null = null;
  /** Reused at least once: a failure before any byte may be a stale keep-alive. */
  reused = false;
  lost = false;
  #parser: TimedParser | null = null;
  #waiter: Future<void> | null = null;
  readonly #onIdleGone: (conn: Connection) => void;

  constructor(onIdleGone: (conn: Connection) => void) {
    this.#onIdleGone = onIdleGone;
  }

  connectionMade(transport: Transport): void {
    this.transport = transport;
  }

  /** Sends `request`; the Future settles once `parser` has the whole response (or the connection failed). */
  exchange(loop: EventLoop, request: Buffer, parser: TimedParser): Future<void> {
    const waiter = loop.createFuture<void>();
    if (this.lost || this.transport === null) {
      waiter.setException(Object.assign(new Error('the connection was closed'), { code: 'ECONNRESET' }));
      return waiter;
    }
    this.#parser = parser;
    this.#waiter = waiter;
    this.transport.write(request);
    parser.marks.sent();
    return waiter;
  }

  /** The exchange is over (done, failed or cancelled): no parser until the next. */
  release(): void {
    this.#parser = null;
    this.#waiter = null;
  }

  usable(): boolean {
    return !this.lost && this.transport?.isClosing() === false;
  }

  // Its transport always reads: what comes while idle reaches dataReceived or eofReceived.
  park(): void {}
  unpark(): void {}

  abort(): void {
    this.transport?.abort();
  }

  dataReceived(data: Buffer): void {
    const parser = this.#parser;
    if (parser === null || parser.done) {
      // Bytes no request asked for: the connection is unusable.
      this.transport?.abort();
      if (parser === null) this.#onIdleGone(this);
      return;
    }
    try {
      parser.feed(data);
    } catch (error) {
      this.#settle(error);
      return;
    }
    if (parser.done) this.#settle(null);
  }

  eofReceived(): undefined {
    const parser = this.#parser;
    if (parser === null) {
      this.#onIdleGone(this);
      return undefined;
    }
    if (parser.done) return undefined;
    try {
      parser.end();
      this.#settle(null);
    } catch (error) {
      this.#settle(error);
    }
    return undefined;
  }

  connectionLost(exc: Error | null): void {
    this.lost = true;
    if (this.#parser === null) this.#onIdleGone(this);
    else if (!this.#parser.done) {
      this.#settle(exc ?? Object.assign(new Error('the connection was closed'), { code: 'ECONNRESET' }));
    }
  }

  #settle(error: unknown): void {
    const waiter = this.#waiter;
    this.#waiter = null;
    if (waiter === null || waiter.done()) return;
    if (error === null) waiter.setResult(undefined);
    else waiter.setException(error);
  }
}

interface Host {
  idle: Connection[];
  open: number;
  /** Requests waiting for a connection. */
  waiters: (() => void)[];
}

/**
 * Whether the connection may carry another request: the response ended by
 * itself (no close-delimited body), did not ask to close, and left no stray
 * bytes behind.
 */
function keepsAlive(parser: ResponseParser, options: FetchOptions): boolean {
  const head = parser.head;
  if (head === null || parser.leftover().length > 0) return false;
  const connection = (head.headers.get('connection') ?? '').toLowerCase();
  if (connection === 'close' || (head.version !== '1.1' && connection !== 'keep-alive')) return false;
  return (
    head.headers.has('content-length') ||
    head.headers.has('transfer-encoding') ||
    head.status === 204 ||
    head.status === 304 ||
    options.method === 'HEAD'
  );
}

/**
 * Fetches over kept-alive connections, at most `maxPerHost` per host
 * (http:// and https://; TLS connections too are kept and reused).
 *
 * @example
 * ```ts
 * const pool = new HttpPool(loop);
 * const pages = yield* gather(...urls.map((u) => pool.fetch(u)));
 * pool.close();
 * ```
 */
export class HttpPool {
  readonly #loop: EventLoop;
  readonly #maxPerHost: number;
  readonly #hosts = new Map<string, Host>();
  #closed = false;

  constructor(loop: EventLoop, options: PoolOptions = {}) {
    this.#loop = loop;
    this.#maxPerHost = options.maxPerHost ?? 6;
  }

  /**
   * Fetches `url` on a pooled connection (a generator coroutine).
   *
   * @throws {FetchError}
   */
  *fetch(url: string, options: FetchOptions = {}): Coroutine<FetchResult> {
    try {
      return yield* waitFor(this.#exchange(url, options), options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    } catch (error) {
      throw toFetchError(url, error);
    }
  }

  /** Idle connections kept now, all hosts together. */
  get idleConnections(): number {
    let n = 0;
    for (const host of this.#hosts.values()) n += host.idle.length;
    return n;
  }

  /** Closes every idle connection; later fetches fail. */
  close(): void {
    this.#closed = true;
    for (const host of this.#hosts.values()) {
      for (const conn of host.idle) conn.abort();
      host.idle = [];
    }
  }

  *#exchange(url: string, options: FetchOptions): Coroutine<FetchResult> {
    if (this.#closed) throw new FetcherClosedError('the pool is closed');
    const target = parseHttpUrl(url);
    const request = formatRequest(target, { ...options, keepAlive: true });
    const key = poolKey(target, options);
    for (let attempt = 0; ; attempt++) {
      const marks = new TimingMarks();
      const conn = yield* this.#acquire(key, target, options, marks);
      let reusable = false;
      const parser = new TimedParser(options, marks);
      try {
        yield* conn.exchange(this.#loop, request, parser);
        const result = toResult(url, parser);
        reusable = keepsAlive(parser, options);
        return result;
      } catch (error) {
        // A kept-alive connection the server closed meanwhile fails before
        // any byte: try once more on a fresh connection.
        if (conn.reused && parser.received === 0 && attempt === 0) continue;
        throw error;
      } finally {
        conn.release();
        this.#release(key, conn, reusable);
      }
    }
  }

  *#acquire(key: string, target: HttpTarget, options: FetchOptions, marks: TimingMarks): Coroutine<Connection> {
    let host = this.#hosts.get(key);
    if (host === undefined) {
      host = { idle: [], open: 0, waiters: [] };
      this.#hosts.set(key, host);
    }
    for (;;) {
      const idle = host.idle.pop();
      if (idle !== undefined) {
        idle.reused = true;
        idle.unpark();
        marks.began();
        marks.connected();
        return idle;
      }
      if (host.open < this.#maxPerHost) break;
      const turn = this.#loop.createFuture<void>();
      host.waiters.push(() => {
        if (!turn.done()) turn.setResult(undefined);
      });
      yield* turn;
    }
    host.open++;
    marks.began();
    try {
      return yield* this.#connect(host, target, options, marks);
    } catch (error) {
      host.open--;
      host.waiters.shift()?.();
      throw error;
    }
  }

  *#connect(host: Host, target: HttpTarget, options: FetchOptions, marks: TimingMarks): Coroutine<Connection> {
    // An idle connection that the server closes (or that receives stray
    // bytes) leaves the pool at once rather than fail the next request.
    const onIdleGone = (gone: Connection): void => {
      const at = host.idle.indexOf(gone);
      if (at === -1) return;
      host.idle.splice(at, 1);
      gone.abort();
      host.open--;
      host.waiters.shift()?.();
    };
    const sock = yield* connectAny(this.#loop, target);
    marks.connected();
    if (target.tls) {
      try {
        const tls = yield* this.#loop.startTls(sock, startTlsOptions(target, options));
        marks.secured();
        return new TlsConnection(this.#loop, tls, onIdleGone);
      } catch (error) {
        sock.close();
        throw error;
      }
    }
    const conn = new PoolConnection(onIdleGone);
    // (On failure connectAcceptedSocket closes the socket.)
    yield* this.#loop.connectAcceptedSocket(() => conn, sock);
    return conn;
  }

  #release(key: string, conn: Connection, reusable: boolean): void {
    const host = this.#hosts.get(key);
    if (host === undefined) return;
    if (reusable && !this.#closed && conn.usable()) {
      host.idle.push(conn);
      conn.park();
    } else {
      conn.abort();
      host.open--;
    }
    host.waiters.shift()?.();
  }
}
