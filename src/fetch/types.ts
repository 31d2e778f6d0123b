/**
 * What every fetch style returns and throws.
 *
 * @module
 */
import { InvalidStateError } from '../coro/index.js';
import type { RequestOptions } from '../http/index.js';
import type { PemInput } from '../sys/index.js';
import type { FetchTimings, TimedParser } from './timings.js';

/** A fetched response. */
export interface FetchResult {
  url: string;
  status: number;
  /** Lower-cased names; repeated fields joined with ', '. */
  headers: Record<string, string>;
  body: Buffer;
  /** When each step ended (connect, TLS, send, first byte, end): ms on the loop's clock. */
  timings: FetchTimings;
}

/** Options shared by every fetch style (a ResponseParser takes them as they are). */
export interface FetchOptions extends RequestOptions {
  /** Give up after this many milliseconds, connection included (default 30,000). */
  timeoutMs?: number;
  /** Most body bytes accepted (default 256 MiB). */
  maxBodyBytes?: number;
  /** Most bytes of the response head (default 64 KiB). */
  maxHeaderBytes?: number;
  /**
   * https: the certificates to trust (PEM; several may follow one another,
   * or come as an array) instead of Node's bundled roots.
   */
  ca?: PemInput;
  /**
   * https: fail when the server's certificate does not verify against the
   * roots (or `ca`) or does not name the URL's host (default true). false
   * accepts any certificate, and with it anyone in the middle: for tests.
   */
  rejectUnauthorized?: boolean;
}

export const DEFAULT_TIMEOUT_MS = 30_000;

/** A Fetcher or HttpPool used after close() (ERR_FETCHER_CLOSED). */
export class FetcherClosedError extends Error {
  readonly code = 'ERR_FETCHER_CLOSED';

  override get name(): string {
    return 'FetcherClosedError';
  }
}

/**
 * A fetch that failed: `code` is the cause's (ECONNREFUSED, ENOTFOUND,
 * ERR_HTTP_..., ERR_TIMEOUT...; over https also the TLS ones:
 * CERT_HAS_EXPIRED, ERR_TLS_CERT_ALTNAME_INVALID, ERR_SSL_UNEXPECTED_EOF_WHILE_READING
 * for a body the server cut off without close_notify...).
 */
export class FetchError extends Error {
  readonly code: string;
  readonly url: string;

  constructor(url: string, cause: unknown) {
    const message = cause instanceof Error ? cause.message : String(cause);
    super(`${url}: ${message}`, { cause });
    this.url = url;
    const code = (cause as { code?: unknown } | null)?.code;
    this.code = typeof code === 'string' ? code : 'ERR_FETCH';
  }

  override get name(): string {
    return 'FetchError';
  }
}

/** Wraps any failure of a fetch of `url` (once). */
export function toFetchError(url: string, cause: unknown): FetchError {
  return cause instanceof FetchError ? cause : new FetchError(url, cause);
}

/** The result of a parser that is done, its timings ended now. */
export function toResult(url: string, parser: TimedParser): FetchResult {
  const head = parser.head;
  if (head === null) throw new InvalidStateError('the response is not parsed yet');
  return {
    url,
    status: head.status,
    headers: head.headers.toObject(),
    body: parser.body(),
    timings: parser.marks.finish(),
  };
}

/**
 * The error of a host with no address to try. Made only when it is thrown:
 * an Error captures a stack, which costs more than a whole request here.
 */
export function noAddressError(hostname: string): Error {
  // getaddrinfo's own word for a name with no address: the code users check.
  return Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' });
}
