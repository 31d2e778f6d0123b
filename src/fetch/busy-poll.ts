/**
 * The notes' first fetcher (11.3): a non-blocking socket and a busy loop
 * that keeps asking -- is it connected yet? can I send? is there data? --
 * burning a core while it waits. Here for what it teaches (and measures);
 * use the multiplexed fetchers for real work.
 *
 * https:// is the same model one layer up: the TLS socket is non-blocking
 * too, and each of its steps (handshake, send, receive) is asked again and
 * again while OpenSSL answers TLS_WANT_READ / TLS_WANT_WRITE.
 *
 * @module
 */
import { TimeoutError } from '../coro/index.js';
import { formatRequest, type HttpTarget, parseHttpUrl } from '../http/index.js';
import { GetAddrInfoError } from '../loop/index.js';
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
  type TlsSocket,
} from '../sys/index.js';
import { TimedParser, TimingMarks } from './timings.js';
import { wrapClient } from './tls.js';
import {
  DEFAULT_TIMEOUT_MS,
  type FetchOptions,
  type FetchResult,
  noAddressError,
  toFetchError,
  toResult,
} from './types.js';

class Deadline {
  readonly #end: number;
  readonly #ms: number;

  constructor(ms: number) {
    this.#ms = ms;
    this.#end = performance.now() + ms;
  }

  check(): void {
    if (performance.now() > this.#end) {
      throw new TimeoutError(`timed out after ${this.#ms} ms`);
    }
  }
}

function resolveSpinning(hostname: string, port: number, deadline: Deadline): AddrInfo[] {
  const direct = numericAddrInfo(hostname, port, AF_UNSPEC, SOCK_STREAM);
  if (direct !== null) return direct;
  const resolver = new Resolver();
  try {
    resolver.submit(1, hostname, String(port), AF_UNSPEC, SOCK_STREAM);
    for (;;) {
      // Ask again and again, as the notes' loop does.
      for (const done of resolver.take()) {
        if (done.error !== 0) throw new GetAddrInfoError(done.error, hostname, done.message, done.errno);
        return done.results;
      }
      deadline.check();
    }
  } finally {
    resolver.close();
  }
}

function exchangeSpinning(
  target: HttpTarget,
  info: AddrInfo,
  request: Buffer,
  options: FetchOptions,
  deadline: Deadline,
  marks: TimingMarks,
): FetchResult {
  const sock = new Socket(info.family, SOCK_STREAM);
  let tls: TlsSocket | null = null;
  try {
    sock.setBlocking(false);
    const rc = sock.connectEx(info.address); // 阻塞不会消耗cpu: it returns at once
    if (rc !== 0 && rc !== EINPROGRESS) throw new OSError(rc, 'connect', JSON.stringify(info.address));
    if (target.tls) {
      spinConnected(sock, info, deadline);
      marks.connected();
      tls = wrapClient(sock, target, options);
      return exchangeTls(target.url, tls, request, options, deadline, marks);
    }
    // 不停的询问连接是否建立好: keep trying to send until the connection is up.
    let sent = 0;
    while (sent < request.length) {
      const error = sock.getsockopt(SOL_SOCKET, SO_ERROR);
      if (error !== 0) throw new OSError(error, 'connect', JSON.stringify(info.address));
      let n: number | null = null;
      try {
        n = sock.trySend(request.subarray(sent));
      } catch (e) {
        if ((e as { code?: string }).code !== 'ENOTCONN') throw e;
      }
      if (n !== null) {
        marks.connected(); // the first send that went through: the connection is up
        sent += n;
      }
      deadline.check();
    }
    marks.sent();
    return receiveSpinning(target.url, (buffer) => sock.tryRecvInto(buffer) ?? -1, options, deadline, marks);
  } finally {
    // Once a TLS socket exists, closing it sends close_notify (best effort) and closes the socket.
    if (tls !== null) tls.close();
    else sock.close();
  }
}

/**
 * Spins until the connect finished: the TLS socket is made on a connected
 * one (its session is kept under the peer's address).
 */
function spinConnected(sock: Socket, info: AddrInfo, deadline: Deadline): void {
  for (;;) {
    const error = sock.getsockopt(SOL_SOCKET, SO_ERROR);
    if (error !== 0) throw new OSError(error, 'connect', JSON.stringify(info.address));
    try {
      sock.getpeername();
      return;
    } catch (e) {
      if ((e as { code?: string }).code !== 'ENOTCONN') throw e;
    }
    deadline.check();
  }
}

/**
 * The request and its response over TLS, every step asked again while it
 * wants readiness (a negative TLS_WANT_*), with the same arguments, as
 * OpenSSL requires. The reads stop the moment the parser has a complete
 * response: a server that then closes without close_notify is never read.
 */
function exchangeTls(
  url: string,
  tls: TlsSocket,
  request: Buffer,
  options: FetchOptions,
  deadline: Deadline,
  marks: TimingMarks,
): FetchResult {
  while (tls.tryHandshake() !== 0) deadline.check();
  marks.secured();
  let sent = 0;
  while (sent < request.length) {
    const n = tls.trySend(request, sent);
    if (n > 0) sent += n;
    else deadline.check();
  }
  marks.sent();
  // A TLS read throws ERR_SSL_UNEXPECTED_EOF_WHILE_READING for a close without close_notify: never a short body.
  return receiveSpinning(url, (buffer) => tls.tryRecvInto(buffer), options, deadline, marks);
}

/**
 * The response, asked for again and again: `tryRecv` gives a count, 0 at
 * the end, or a negative number while nothing came (EAGAIN, or a TLS want).
 * Reading stops the moment the parser has a complete response.
 */
function receiveSpinning(
  url: string,
  tryRecv: (buffer: Buffer) => number,
  options: FetchOptions,
  deadline: Deadline,
  marks: TimingMarks,
): FetchResult {
  const parser = new TimedParser(options, marks);
  const buffer = Buffer.allocUnsafe(64 * 1024);
  for (;;) {
    const n = tryRecv(buffer);
    if (n < 0) {
      deadline.check();
      continue;
    }
    if (n === 0) {
      parser.end();
      break;
    }
    parser.feed(buffer.subarray(0, n));
    if (parser.done) break;
  }
  return toResult(url, parser);
}

/**
 * Fetches `url` (http:// or https://) by busy-polling one non-blocking
 * socket. It runs to the end before returning (the promise is settled when
 * it returns); it burns CPU while it waits.
 *
 * @throws {FetchError} (through the promise): over https also the TLS codes
 *   (CERT_HAS_EXPIRED, ERR_TLS_CERT_ALTNAME_INVALID, ERR_SSL_UNEXPECTED_EOF_WHILE_READING...)
 */
export function fetchBusyPoll(url: string, options: FetchOptions = {}): Promise<FetchResult> {
  try {
    const marks = new TimingMarks();
    const deadline = new Deadline(options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const target = parseHttpUrl(url);
    const request = formatRequest(target, options);
    let lastError: unknown = null;
    for (const info of resolveSpinning(target.hostname, target.port, deadline)) {
      try {
        return Promise.resolve(exchangeSpinning(target, info, request, options, deadline, marks));
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code !== 'ECONNREFUSED' && code !== 'ENETUNREACH' && code !== 'EADDRNOTAVAIL') throw error;
        lastError = error;
      }
    }
    throw lastError ?? noAddressError(target.hostname);
  } catch (error) {
    return Promise.reject(toFetchError(url, error));
  }
}
