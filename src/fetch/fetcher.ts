/**
 * The notes' select + callback + event loop fetcher (11.3), for real: one
 * thread, any number of URLs in flight, a selector holding the callback to
 * run in each key's data -- `connected`, then `writable`, then `readable` --
 * and `run()` is the notes' `loop()`.
 *
 * For https:// the callbacks are the same few with TLS between: after
 * `connected`, one callback (`tlsReady`) takes the TLS socket as far as it
 * goes -- handshake, request, response -- and each time OpenSSL says
 * TLS_WANT_READ or TLS_WANT_WRITE the key is modified to wait for that
 * readiness (a TLS read can need the socket writable, and a write readable).
 *
 * @module
 */
import { TimeoutError } from '../coro/index.js';
import { formatRequest, type HttpTarget, parseHttpUrl } from '../http/index.js';
import { GetAddrInfoError, type LoopTrace } from '../loop/index.js';
import {
  type BaseSelector,
  createSelector,
  EVENT_READ,
  EVENT_WRITE,
  type SelectorKey,
  type SelectorName,
  UringSelector,
} from '../selectors/index.js';
import {
  type AddrInfo,
  AF_UNSPEC,
  EINPROGRESS,
  numericAddrInfo,
  OSError,
  Resolver,
  SO_ERROR,
  SOCK_STREAM,
  SOL_SOCKET,
  Socket,
  TLS_WANT_READ,
  type TlsSocket,
} from '../sys/index.js';
import { TimedParser, TimingMarks } from './timings.js';
import { wrapClient } from './tls.js';
import {
  DEFAULT_TIMEOUT_MS,
  FetcherClosedError,
  type FetchOptions,
  type FetchResult,
  noAddressError,
  toFetchError,
  toResult,
} from './types.js';

/** What each selector key holds: the callback to run when it is ready. */
export type FetcherCallback = (key: SelectorKey<FetcherCallback>, events: number) => void;

export interface FetcherOptions {
  /**
   * A selector, or 'select' | 'poll' | 'epoll' | 'io_uring' (io_uring's
   * poll requests: still readiness, see UringSelector). Default: epoll.
   */
  selector?: BaseSelector<FetcherCallback> | SelectorName | 'io_uring';
}

/**
 * Fetches many URLs concurrently on one selector with callbacks.
 *
 * @example
 * ```ts
 * const fetcher = new Fetcher({ selector: 'select' });
 * const pages = urls.map((url) => fetcher.getUrl(url));   // like the notes' get_url
 * fetcher.run();                                          // the notes' loop()
 * for (const page of await Promise.all(pages)) console.log(page.status);
 * fetcher.close();
 * ```
 */
export class Fetcher {
  readonly selector: BaseSelector<FetcherCallback>;
  readonly #exchanges = new Set<Exchange>();
  #resolver: Resolver | null = null;
  readonly #lookups = new Map<number, Exchange>();
  #nextLookup = 1;
  #trace: LoopTrace | null = null;
  #lane = 0;

  constructor(options: FetcherOptions = {}) {
    const s = options.selector ?? 'epoll';
    this.selector =
      s === 'io_uring'
        ? new UringSelector<FetcherCallback>()
        : typeof s === 'string'
          ? createSelector<FetcherCallback>(s)
          : s;
  }

  /**
   * Starts fetching `url` (http:// or https://); the promise settles once
   * {@link run} gets it done. A failure (refused, reset, malformed, timed
   * out, a certificate that does not verify) rejects this URL's promise
   * only, with a FetchError.
   */
  getUrl(url: string, options: FetchOptions = {}): Promise<FetchResult> {
    return new Promise<FetchResult>((resolve, reject) => {
      let exchange: Exchange;
      try {
        exchange = new Exchange(this, url, options, resolve, reject);
      } catch (error) {
        reject(toFetchError(url, error));
        return;
      }
      this.#exchanges.add(exchange);
      const direct = numericAddrInfo(exchange.target.hostname, exchange.target.port, AF_UNSPEC, SOCK_STREAM);
      if (direct !== null) exchange.start(direct);
      else this.#lookup(exchange);
    });
  }

  /**
   * Records each wait of {@link run} -- its timeout, the keys it returned,
   * the time blocked -- into `trace` on `lane` (one made with
   * `trace.addLane`), until set to null: the notes' loop seen at work.
   *
   * @throws {RangeError} ERR_OUT_OF_RANGE for a lane the trace does not have
   */
  setTrace(trace: LoopTrace | null, lane = 0): void {
    if (trace !== null && (!Number.isInteger(lane) || lane < 0 || lane >= trace.lanes.length)) {
      throw Object.assign(new RangeError(`lane ${lane} is not one of the trace's`), { code: 'ERR_OUT_OF_RANGE' });
    }
    this.#trace = trace;
    this.#lane = lane;
  }

  /** URLs still in flight. */
  get pending(): number {
    return this.#exchanges.size;
  }

  /**
   * The notes' loop(): waits in the selector and runs each ready key's
   * callback until every URL is done (or timed out).
   */
  run(): void {
    while (this.#exchanges.size > 0) {
      const now = performance.now();
      let wait = Number.POSITIVE_INFINITY;
      for (const exchange of this.#exchanges) {
        if (exchange.deadline <= now) exchange.fail(new TimeoutError(`timed out after ${exchange.timeoutMs} ms`));
        else wait = Math.min(wait, exchange.deadline - now);
      }
      if (this.#exchanges.size === 0) break;
      const t0 = this.#trace === null ? 0 : performance.now();
      const ready = this.selector.select(wait);
      this.#trace?.wait(this.#lane, t0, performance.now() - t0, Number.isFinite(wait) ? wait : null, ready.length);
      for (const [key, events] of ready) {
        const callback = key.data;
        callback(key, events);
      }
    }
  }

  /** Closes the selector and the resolver; in-flight URLs fail. */
  close(): void {
    for (const exchange of [...this.#exchanges]) exchange.fail(new FetcherClosedError('the Fetcher was closed'));
    this.#resolver?.close();
    this.#resolver = null;
    this.selector.close();
  }

  /** @internal */
  forget(exchange: Exchange): void {
    this.#exchanges.delete(exchange);
    if (exchange.lookupId !== 0) this.#lookups.delete(exchange.lookupId);
    this.#unwatchResolverWhenIdle();
  }

  #lookup(exchange: Exchange): void {
    if (this.#resolver === null) this.#resolver = new Resolver();
    const resolver = this.#resolver;
    if (this.#lookups.size === 0) this.selector.register(resolver.fileno(), EVENT_READ, () => this.#lookedUp());
    const id = this.#nextLookup++;
    exchange.lookupId = id;
    this.#lookups.set(id, exchange);
    resolver.submit(id, exchange.target.hostname, String(exchange.target.port), AF_UNSPEC, SOCK_STREAM);
  }

  #lookedUp(): void {
    if (this.#resolver === null) return;
    for (const done of this.#resolver.take()) {
      const exchange = this.#lookups.get(done.id);
      if (exchange === undefined) continue;
      this.#lookups.delete(done.id);
      exchange.lookupId = 0;
      if (done.error !== 0)
        exchange.fail(new GetAddrInfoError(done.error, exchange.target.hostname, done.message, done.errno));
      else exchange.start(done.results);
    }
    this.#unwatchResolverWhenIdle();
  }

  #unwatchResolverWhenIdle(): void {
    if (this.#lookups.size > 0 || this.#resolver === null || this.selector.closed) return;
    if (this.selector.getMap().has(this.#resolver.fileno())) this.selector.unregister(this.#resolver.fileno());
  }
}

/** One URL in flight: its socket, its parser and its callbacks. */
class Exchange {
  readonly target: HttpTarget;
  readonly deadline: number;
  readonly timeoutMs: number;
  lookupId = 0;
  readonly #fetcher: Fetcher;
  readonly #url: string;
  readonly #request: Buffer;
  readonly #options: FetchOptions;
  readonly #resolve: (result: FetchResult) => void;
  readonly #reject: (error: unknown) => void;
  #addresses: AddrInfo[] = [];
  #sock: Socket | null = null;
  #tls: TlsSocket | null = null;
  #sent = 0;
  readonly #marks = new TimingMarks();
  #parser: TimedParser;
  #buffer = Buffer.allocUnsafe(16 * 1024);
  #lastError: unknown = null;
  #settled = false;
  readonly #connected: FetcherCallback = () => this.#onConnected();
  readonly #writable: FetcherCallback = () => this.#onWritable();
  readonly #readable: FetcherCallback = () => this.#onReadable();
  readonly #tlsReady: FetcherCallback = () => this.#onTlsReady();

  constructor(
    fetcher: Fetcher,
    url: string,
    options: FetchOptions,
    resolve: (result: FetchResult) => void,
    reject: (error: unknown) => void,
  ) {
    this.#fetcher = fetcher;
    this.#url = url;
    this.#resolve = resolve;
    this.#reject = reject;
    this.target = parseHttpUrl(url);
    this.#request = formatRequest(this.target, options);
    this.#options = options;
    this.#parser = new TimedParser(options, this.#marks);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.deadline = performance.now() + this.timeoutMs;
  }

  /** Connects to the first address (the next ones if it is refused). */
  start(addresses: AddrInfo[]): void {
    this.#addresses = [...addresses];
    this.#connectNext();
  }

  fail(error: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#release();
    this.#reject(toFetchError(this.#url, error));
  }

  #connectNext(): void {
    this.#release();
    const info = this.#addresses.shift();
    if (info === undefined) {
      this.fail(this.#lastError ?? noAddressError(this.target.hostname));
      return;
    }
    try {
      const sock = new Socket(info.family, SOCK_STREAM);
      this.#sock = sock;
      sock.setBlocking(false);
      const rc = sock.connectEx(info.address);
      if (rc !== 0 && rc !== EINPROGRESS) throw new OSError(rc, 'connect', JSON.stringify(info.address));
      // 注册: tell the selector to call `connected` once the socket is writable.
      this.#fetcher.selector.register(sock, EVENT_WRITE, this.#connected);
    } catch (error) {
      this.#lastError = error;
      this.#connectNext();
    }
  }

  #onConnected(): void {
    const sock = this.#sock as Socket;
    const error = sock.getsockopt(SOL_SOCKET, SO_ERROR);
    if (error !== 0) {
      this.#lastError = new OSError(error, 'connect', `${this.target.hostname}:${this.target.port}`);
      this.#connectNext();
      return;
    }
    this.#marks.connected();
    if (this.target.tls) {
      try {
        this.#tls = wrapClient(sock, this.target, this.#options);
      } catch (e) {
        this.fail(e);
        return;
      }
      this.#onTlsReady();
      return;
    }
    this.#fetcher.selector.modify(sock, EVENT_WRITE, this.#writable);
    this.#onWritable();
  }

  /**
   * https: the handshake, the request, the response, each as far as it goes
   * now; a want re-arms the key for the readiness OpenSSL waits for, and
   * the same step runs again with the same arguments when it comes.
   */
  #onTlsReady(): void {
    try {
      const want = this.#stepTls(this.#tls as TlsSocket);
      if (want !== 0) this.#waitTls(want);
      else this.#succeed();
    } catch (error) {
      this.fail(error);
    }
  }

  // As far as the exchange goes now: 0 once the response is complete, else the want.
  #stepTls(tls: TlsSocket): number {
    if (!tls.handshaken) {
      const rc = tls.tryHandshake();
      if (rc !== 0) return rc;
      this.#marks.secured();
    }
    while (this.#sent < this.#request.length) {
      const n = tls.trySend(this.#request, this.#sent);
      if (n < 0) return n;
      this.#sent += n;
    }
    this.#marks.sent();
    // Read until OpenSSL wants more from the kernel: a record it decrypted
    // may still hold bytes (pending()) that no readiness will announce.
    // A close without close_notify throws ERR_SSL_UNEXPECTED_EOF_WHILE_READING;
    // the loop stops the moment a response of known length is complete.
    for (;;) {
      const n = tls.tryRecvInto(this.#buffer);
      if (n < 0) return n;
      if (n === 0) this.#parser.end();
      else this.#parser.feed(this.#buffer.subarray(0, n));
      if (this.#parser.done) return 0;
    }
  }

  #waitTls(want: number): void {
    const events = want === TLS_WANT_READ ? EVENT_READ : EVENT_WRITE;
    this.#fetcher.selector.modify(this.#sock as Socket, events, this.#tlsReady);
  }

  #succeed(): void {
    const result = toResult(this.#url, this.#parser);
    this.#settled = true;
    this.#release();
    this.#resolve(result);
  }

  #onWritable(): void {
    const sock = this.#sock as Socket;
    try {
      while (this.#sent < this.#request.length) {
        const n = sock.trySend(this.#request.subarray(this.#sent));
        if (n === null) return; // stay registered for writing
        this.#sent += n;
      }
      this.#marks.sent();
      this.#fetcher.selector.modify(sock, EVENT_READ, this.#readable);
    } catch (error) {
      this.fail(error);
    }
  }

  #onReadable(): void {
    const sock = this.#sock as Socket;
    try {
      const n = sock.tryRecvInto(this.#buffer);
      if (n === null) return;
      if (n === 0) this.#parser.end();
      else this.#parser.feed(this.#buffer.subarray(0, n));
      if (!this.#parser.done) return;
      this.#succeed();
    } catch (error) {
      this.fail(error);
    }
  }

  #release(): void {
    const sock = this.#sock;
    if (sock !== null) {
      if (!this.#fetcher.selector.closed && this.#fetcher.selector.getMap().has(sock))
        this.#fetcher.selector.unregister(sock);
      // The TLS socket's close sends close_notify (best effort), then closes the socket.
      if (this.#tls !== null) this.#tls.close();
      else sock.close();
      this.#sock = null;
      this.#tls = null;
    }
    if (this.#settled) this.#fetcher.forget(this);
  }
}
