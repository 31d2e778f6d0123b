/**
 * `iomux/fetch`: the notes' fetchers, for real. Four styles, one result:
 * `{ url, status, headers, body, timings }`.
 *
 * - {@link fetchBusyPoll}: a non-blocking socket polled in a busy loop (11.3, first listing)
 * - {@link Fetcher}: select + callbacks + an event loop (11.3)
 * - {@link fetchCoroutine}: a generator coroutine on the iomux loop (11.10)
 * - {@link fetchAsync}: async/await on the iomux loop in cooperative mode (11.9)
 *
 * and {@link HttpPool}: keep-alive connections per host, for many URLs; and
 * {@link fetchWithModel}: the notes' five I/O models (blocking, non-blocking,
 * select/poll/epoll, signal-driven, io_uring), one fetch each (models.ts).
 *
 * Every one takes http:// and https:// URLs; for https the options `ca`
 * and `rejectUnauthorized` say what to trust (tls.ts shares one client
 * context per such pair, so sessions resume from fetch to fetch).
 *
 * @module
 */
export { fetchBusyPoll } from './busy-poll.js';
export { fetchAsync, fetchCoroutine } from './coroutine.js';
export { Fetcher, type FetcherCallback, type FetcherOptions } from './fetcher.js';
export {
  fetchBlocking,
  fetchSignalDriven,
  fetchWithModel,
  IO_MODELS,
  type IoModel,
  type ModelOptions,
  modelFamily,
  type SignalDrivenOptions,
} from './models.js';
export { HttpPool, type PoolOptions } from './pool.js';
export type { FetchTimings } from './timings.js';
export { FetchError, FetcherClosedError, type FetchOptions, type FetchResult } from './types.js';
