/**
 * Fetching many URLs with one style, at most `concurrency` at a time: what
 * `iomux fetch` and `iomux demo` run.
 */
import type { Coroutine } from '../coro/index.js';
import {
  type FetchError,
  Fetcher,
  type FetchOptions,
  type FetchResult,
  fetchAsync,
  fetchBusyPoll,
  fetchCoroutine,
  HttpPool,
} from '../fetch/index.js';
import { toFetchError } from '../fetch/types.js';
import { type BackendName, EventLoop } from '../loop/index.js';
import { type FetchTrace, tracePage } from './trace-pages.js';

/** The four fetch styles of the notes. */
export type FetchStyle = 'busy' | 'callback' | 'coroutine' | 'async';
export const STYLES: readonly FetchStyle[] = ['busy', 'callback', 'coroutine', 'async'];

export interface FetchManyOptions {
  style: FetchStyle;
  backend: BackendName;
  concurrency: number;
  timeoutMs: number;
  /**
   * Coroutine and async styles: reuse connections per host through an
   * HttpPool (at most `concurrency` per host) instead of Connection: close.
   */
  keepAlive?: boolean;
  /** https: the certificates to trust instead of Node's bundled roots (PEM). */
  ca?: FetchOptions['ca'];
  /** https: false accepts any certificate (`--insecure`); default true. */
  rejectUnauthorized?: boolean;
  /** Called as each URL finishes, in finishing order. */
  onDone?: (index: number, outcome: FetchResult | FetchError) => void;
  /**
   * Record into a trace: the loop's (the Fetcher's) waits, callbacks and
   * socket operations on `loopLane`, each page with its phases on `pagesLane`.
   */
  trace?: FetchTrace;
}

/** Fetches every URL; results in the order given; a failure is a FetchError in its place. */
export async function fetchMany(
  urls: readonly string[],
  options: FetchManyOptions,
): Promise<(FetchResult | FetchError)[]> {
  const results: (FetchResult | FetchError)[] = new Array(urls.length);
  const trace = options.trace;
  // When each URL's fetch was started: a failure's span begins there.
  const started = new Float64Array(urls.length);
  const begin = (i: number): void => {
    started[i] = performance.now();
  };
  const done = (i: number, outcome: FetchResult | FetchError): void => {
    results[i] = outcome;
    if (trace !== undefined) {
      tracePage(trace.trace, trace.pagesLane, urls[i] as string, outcome, started[i] as number, performance.now());
    }
    options.onDone?.(i, outcome);
  };
  const fetchOptions: FetchOptions = { timeoutMs: options.timeoutMs };
  if (options.ca !== undefined) fetchOptions.ca = options.ca;
  if (options.rejectUnauthorized !== undefined) fetchOptions.rejectUnauthorized = options.rejectUnauthorized;
  switch (options.style) {
    case 'busy':
      for (let i = 0; i < urls.length; i++) {
        const url = urls[i] as string;
        begin(i);
        done(i, await fetchBusyPoll(url, fetchOptions).catch((e: unknown) => toFetchError(url, e)));
      }
      break;
    case 'callback':
      for (let start = 0; start < urls.length; start += options.concurrency) {
        const fetcher = new Fetcher({ selector: options.backend });
        if (trace !== undefined) fetcher.setTrace(trace.trace, trace.loopLane);
        const wave = urls.slice(start, start + options.concurrency).map((url, k) => {
          begin(start + k);
          return fetcher.getUrl(url, fetchOptions).then(
            (r) => done(start + k, r),
            (e: unknown) => done(start + k, toFetchError(url, e)),
          );
        });
        fetcher.run();
        fetcher.close();
        await Promise.all(wave);
      }
      break;
    case 'coroutine': {
      const loop = new EventLoop({ backend: options.backend });
      if (trace !== undefined) loop.setTrace(trace.trace, trace.loopLane);
      const pool = options.keepAlive === true ? new HttpPool(loop, { maxPerHost: options.concurrency }) : null;
      let next = 0;
      function* worker(): Coroutine<void> {
        while (next < urls.length) {
          const i = next++;
          const url = urls[i] as string;
          begin(i);
          try {
            done(
              i,
              pool === null ? yield* fetchCoroutine(loop, url, fetchOptions) : yield* pool.fetch(url, fetchOptions),
            );
          } catch (e) {
            done(i, toFetchError(url, e));
          }
        }
      }
      const workers = Array.from({ length: Math.min(options.concurrency, urls.length) }, () =>
        loop.createTask(worker()),
      );
      function* all(): Coroutine<void> {
        for (const w of workers) yield* w;
      }
      try {
        loop.runUntilComplete(all());
      } finally {
        pool?.close();
        loop.close();
      }
      break;
    }
    case 'async': {
      const loop = new EventLoop({ backend: options.backend });
      if (trace !== undefined) loop.setTrace(trace.trace, trace.loopLane);
      const pool = options.keepAlive === true ? new HttpPool(loop, { maxPerHost: options.concurrency }) : null;
      let next = 0;
      try {
        await loop.run(async () => {
          const worker = async (): Promise<void> => {
            while (next < urls.length) {
              const i = next++;
              const url = urls[i] as string;
              begin(i);
              const pending =
                pool === null ? fetchAsync(loop, url, fetchOptions) : loop.createTask(pool.fetch(url, fetchOptions));
              done(i, await Promise.resolve(pending).catch((e: unknown) => toFetchError(url, e)));
            }
          };
          await Promise.all(Array.from({ length: Math.min(options.concurrency, urls.length) }, worker));
        });
      } finally {
        pool?.close();
        loop.close();
      }
      break;
    }
  }
  return results;
}
