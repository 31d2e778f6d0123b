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
import { type Coroutine, waitFor } from '../coro/index.js';
import { formatRequest, type HttpTarget, parseHttpUrl, type ResponseParser } from '../http/index.js';
import type { EventLoop } from '../loop/index.js';
import { type Socket, TLS_WANT_READ, TLS_WANT_WRITE, TlsSocket } from '../sys/index.js';
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

interface Connection {
  /** The TLS socket for https (closing it closes the socket beneath). */
  sock: Socket | TlsSocket;
  /** Reused at least once: a failure before any byte may be a stale keep-alive. */
  reused: boolean;
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

// A byte's room: an idle connection has nothing to say, so a record it
// does decrypt is a stray byte that makes it unusable anyway.
const PROBE = Buffer.alloc(1);

/**
 * Whether an idle connection that turned readable is gone. A plain socket
 * is (the server closed it, or sent what no request asked for). A TLS
 * socket may have received a record that is no data -- a TLS 1.3 session
 * ticket -- which a read consumes and answers with a want: it stays.
 */
function idleTlsIsGone(sock: Socket | TlsSocket): boolean {
  if (!(sock instanceof TlsSocket)) return true;
  try {
    const n = sock.tryRecvInto(PROBE);
    return n !== TLS_WANT_READ && n !== TLS_WANT_WRITE;
  } catch {
    return true;
  }
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
      for (const conn of host.idle) {
        this.#loop.removeReader(conn.sock);
        conn.sock.close();
      }
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
        yield* this.#loop.sockSendAll(conn.sock, request);
        marks.sent();
        yield* readResponse(this.#loop, conn.sock, parser);
        const result = toResult(url, parser);
        reusable = keepsAlive(parser, options);
        return result;
      } catch (error) {
        // A kept-alive connection the server closed meanwhile fails before
        // any byte: try once more on a fresh connection.
        if (conn.reused && parser.received === 0 && attempt === 0) continue;
        throw error;
      } finally {
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
        // The request's own receive takes over the registration in this
        // same iteration: no epoll_ctl.
        this.#loop.removeReader(idle.sock);
        marks.began();
        marks.connected();
        return { sock: idle.sock, reused: true };
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
      return { sock: yield* this.#connect(target, options, marks), reused: false };
    } catch (error) {
      host.open--;
      host.waiters.shift()?.();
      throw error;
    }
  }

  *#connect(target: HttpTarget, options: FetchOptions, marks: TimingMarks): Coroutine<Socket | TlsSocket> {
    const sock = yield* connectAny(this.#loop, target);
    marks.connected();
    if (!target.tls) return sock;
    try {
      const tls = yield* this.#loop.startTls(sock, startTlsOptions(target, options));
      marks.secured();
      return tls;
    } catch (error) {
      sock.close();
      throw error;
    }
  }

  #release(key: string, conn: Connection, reusable: boolean): void {
    const host = this.#hosts.get(key);
    if (host === undefined) return;
    if (reusable && !this.#closed) {
      host.idle.push(conn);
      // Watch the idle connection: a server that closes it (or sends stray
      // bytes) makes it unusable, and it is dropped at once rather than
      // failing the next request. The registration also stays in place, so
      // reusing the connection costs no epoll_ctl ADD/DEL pair.
      this.#loop.addReader(conn.sock, this.#onIdleReadable, host, conn);
    } else {
      conn.sock.close();
      host.open--;
    }
    host.waiters.shift()?.();
  }

  readonly #onIdleReadable = (host: Host, conn: Connection): void => {
    const at = host.idle.indexOf(conn);
    if (at === -1) return;
    if (!idleTlsIsGone(conn.sock)) return;
    host.idle.splice(at, 1);
    this.#loop.removeReader(conn.sock);
    conn.sock.close();
    host.open--;
    host.waiters.shift()?.();
  };
}
