/**
 * The notes' generator-coroutine fetcher (11.10), and its async/await twin
 * (11.9), both on the iomux loop: connect, send, read until the response is
 * complete -- written straight down, each wait a `yield*` (or an `await`).
 * For https:// one more wait comes after the connect, `loop.startTls`, and
 * the same sock_* operations then run on the TLS socket it gives.
 *
 * @module
 */
import { type Coroutine, waitFor, withTimeout } from '../coro/index.js';
import { formatRequest, type HttpTarget, parseHttpUrl } from '../http/index.js';
import type { EventLoop } from '../loop/index.js';
import { SOCK_NONBLOCK, SOCK_STREAM, Socket, type TlsContext, type TlsSocket } from '../sys/index.js';
import { TimedParser, TimingMarks } from './timings.js';
import { clientContext } from './tls.js';
import {
  DEFAULT_TIMEOUT_MS,
  type FetchOptions,
  type FetchResult,
  noAddressError,
  toFetchError,
  toResult,
} from './types.js';

// The first read of a response: under 4 KiB, so Buffer.allocUnsafe takes it
// from Node's shared pool -- a page fits, and 1,000 requests in flight make
// no separate ArrayBuffers for the GC to track. A read that fills it moves
// the rest of the response to a larger buffer.
const FIRST_READ_SIZE = 4000;
const LARGE_READ_SIZE = 64 * 1024;

/**
 * Fetches `url` (http:// or https://) as a generator coroutine: `yield*`
 * it in another coroutine or run it as a Task. Host names are resolved off
 * the loop; each address is tried in turn.
 *
 * @throws {FetchError} (code ECONNREFUSED, ENOTFOUND, ERR_HTTP_*, ERR_TIMEOUT...; over
 *   https also CERT_HAS_EXPIRED, ERR_TLS_CERT_ALTNAME_INVALID, ERR_SSL_UNEXPECTED_EOF_WHILE_READING...)
 *
 * @example
 * ```ts
 * const page = loop.runUntilComplete(fetchCoroutine(loop, 'http://127.0.0.1:8080/goods/1/'));
 * ```
 */
export function* fetchCoroutine(loop: EventLoop, url: string, options: FetchOptions = {}): Coroutine<FetchResult> {
  try {
    return yield* withTimeout(exchange(loop, url, options), options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  } catch (error) {
    throw toFetchError(url, error);
  }
}

function* exchange(loop: EventLoop, url: string, options: FetchOptions): Coroutine<FetchResult> {
  const marks = new TimingMarks();
  const target = parseHttpUrl(url);
  const request = formatRequest(target, options);
  const sock = yield* connectAny(loop, target);
  marks.connected();
  let conn: Socket | TlsSocket = sock;
  try {
    if (target.tls) {
      conn = yield* loop.startTls(sock, startTlsOptions(target, options));
      marks.secured();
    }
    yield* loop.sockSendAll(conn, request);
    marks.sent();
    const parser = new TimedParser(options, marks);
    yield* readResponse(loop, conn, parser);
    return toResult(url, parser);
  } finally {
    // The TLS socket once there is one: its close sends close_notify, then closes the socket.
    conn.close();
  }
}

/**
 * `loop.startTls` options for an https target: the shared client context of
 * `options`' trust settings (so sessions resume across fetches), and the
 * URL's host for SNI and the certificate check.
 */
export function startTlsOptions(
  target: HttpTarget,
  options: FetchOptions,
): { context: TlsContext; serverName: string } {
  return { context: clientContext(options), serverName: target.hostname };
}

/**
 * A non-blocking socket connected to the first of the target's addresses
 * that accepts (names resolved off the loop).
 *
 * @throws the last address's connect error
 */
export function* connectAny(loop: EventLoop, target: HttpTarget): Coroutine<Socket> {
  const addresses = yield* loop.getaddrinfo(target.hostname, target.port, { type: SOCK_STREAM });
  let lastError: unknown = null;
  for (const { family, address } of addresses) {
    // Non-blocking from socket(2) on: two fcntl calls fewer than setBlocking(false).
    const sock = new Socket(family, SOCK_STREAM | SOCK_NONBLOCK);
    try {
      yield* loop.sockConnect(sock, address);
      return sock;
    } catch (error) {
      sock.close();
      lastError = error;
    }
  }
  throw lastError ?? noAddressError(target.hostname);
}

/**
 * Feeds `parser` from `sock` until the response is complete (or the peer
 * closes). It stops reading the moment the parser is done, so a TLS server
 * that closes without close_notify after a complete response is never read;
 * before that, such a close throws ERR_SSL_UNEXPECTED_EOF_WHILE_READING.
 */
export function* readResponse(loop: EventLoop, sock: Socket | TlsSocket, parser: TimedParser): Coroutine<void> {
  let buffer: Buffer | null = Buffer.allocUnsafe(FIRST_READ_SIZE);
  while (buffer !== null) buffer = received(parser, buffer, yield* loop.sockRecvInto(sock, buffer));
}

/**
 * Hands the `n` bytes just read into `buffer` to the parser (0: the peer
 * closed). Returns the buffer for the next read -- a larger one after a read
 * that filled it -- or null once the response is complete.
 */
function received(parser: TimedParser, buffer: Buffer, n: number): Buffer | null {
  if (n === 0) {
    parser.end();
    return null;
  }
  parser.feed(buffer.subarray(0, n));
  if (parser.done) return null;
  return n === buffer.length && buffer.length < LARGE_READ_SIZE ? Buffer.allocUnsafe(LARGE_READ_SIZE) : buffer;
}

/**
 * Fetches `url` with async/await, for a loop in cooperative mode
 * (`await loop.run(...)`): the same steps as {@link fetchCoroutine}.
 *
 * @throws {FetchError} (through the promise)
 *
 * @example
 * ```ts
 * const page = await loop.run(() => fetchAsync(loop, 'http://127.0.0.1:8080/goods/1/'));
 * ```
 */
export async function fetchAsync(loop: EventLoop, url: string, options: FetchOptions = {}): Promise<FetchResult> {
  try {
    const task = loop.createTask(async () => {
      const marks = new TimingMarks();
      const target = parseHttpUrl(url);
      const request = formatRequest(target, options);
      const addresses = await loop.getaddrinfo(target.hostname, target.port, { type: SOCK_STREAM });
      let lastError: unknown = null;
      for (const { family, address } of addresses) {
        const sock = new Socket(family, SOCK_STREAM | SOCK_NONBLOCK);
        let conn: Socket | TlsSocket = sock;
        try {
          try {
            await loop.sockConnect(sock, address);
          } catch (error) {
            lastError = error;
            continue;
          }
          marks.connected();
          if (target.tls) {
            conn = await loop.startTls(sock, startTlsOptions(target, options));
            marks.secured();
          }
          await loop.sockSendAll(conn, request);
          marks.sent();
          const parser = new TimedParser(options, marks);
          let buffer: Buffer | null = Buffer.allocUnsafe(FIRST_READ_SIZE);
          while (buffer !== null) buffer = received(parser, buffer, await loop.sockRecvInto(conn, buffer));
          return toResult(url, parser);
        } finally {
          conn.close();
        }
      }
      throw lastError ?? noAddressError(target.hostname);
    });
    return await waitFor(task, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  } catch (error) {
    throw toFetchError(url, error);
  }
}
