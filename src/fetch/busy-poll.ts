/**
 * The notes' first fetcher (11.3): a non-blocking socket and a busy loop
 * that keeps asking -- is it connected yet? can I send? is there data? --
 * burning a core while it waits. Here for what it teaches (and measures);
 * use the multiplexed fetchers for real work.
 *
 * @module
 */
import { TimeoutError } from '../coro/index.js';
import { formatRequest, parseHttpUrl, ResponseParser } from '../http/index.js';
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
} from '../sys/index.js';
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
  url: string,
  info: AddrInfo,
  request: Buffer,
  options: FetchOptions,
  deadline: Deadline,
): FetchResult {
  const sock = new Socket(info.family, SOCK_STREAM);
  try {
    sock.setBlocking(false);
    const rc = sock.connectEx(info.address); // 阻塞不会消耗cpu: it returns at once
    if (rc !== 0 && rc !== EINPROGRESS) throw new OSError(rc, 'connect', JSON.stringify(info.address));
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
      if (n !== null) sent += n;
      deadline.check();
    }
    const parser = new ResponseParser(options);
    const buffer = Buffer.allocUnsafe(64 * 1024);
    for (;;) {
      const n = sock.tryRecvInto(buffer);
      if (n === null) {
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
  } finally {
    sock.close();
  }
}

/**
 * Fetches `url` by busy-polling one non-blocking socket. It runs to the end
 * before returning (the promise is settled when it returns); it burns CPU
 * while it waits.
 *
 * @throws {FetchError} (through the promise)
 */
export function fetchBusyPoll(url: string, options: FetchOptions = {}): Promise<FetchResult> {
  try {
    const deadline = new Deadline(options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const target = parseHttpUrl(url);
    const request = formatRequest(target, options);
    let lastError: unknown = null;
    for (const info of resolveSpinning(target.hostname, target.port, deadline)) {
      try {
        return Promise.resolve(exchangeSpinning(url, info, request, options, deadline));
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
