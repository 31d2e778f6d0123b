/**
 * The fetch leg: the library's fetchers (the generator coroutine in owning
 * mode, async/await in cooperative mode) through the fault proxy to the
 * embedded server and nginx, each body checked against the SHA-256 of the
 * same URL fetched directly (no proxy) by node:http before the soak began.
 */
import { createHash } from 'node:crypto';

import { CancelledError, type Coroutine } from 'iomux/coro';
import { type FetchResult, fetchAsync, fetchCoroutine } from 'iomux/fetch';
import type { EventLoop } from 'iomux/loop';

import { bump, errorCode, type Tally } from './tally.js';

/** One URL the soak fetches, with what it must return. */
export interface FetchTarget {
  /** The server's name (a proxy route): "serve-epoll", "nginx"... */
  route: string;
  path: string;
  /** SHA-256 (hex) of the body, as node:http fetched it directly. */
  sha256: string;
  bytes: number;
}

/** Per-fetch limit handed to the fetcher (an expired one is an error code, not a hang). */
export const FETCH_TIMEOUT_MS = 60_000;

function check(target: FetchTarget, result: FetchResult, tally: Tally): string {
  if (result.status !== 200) return `HTTP_${result.status}`;
  const got = createHash('sha256').update(result.body).digest('hex');
  if (got !== target.sha256) {
    tally.failures.push(
      `fetch ${target.route}${target.path}: body of ${result.body.length} bytes differs (want ${target.bytes})`,
    );
    return 'MISMATCH';
  }
  tally.bytesVerified += result.body.length;
  return 'ok';
}

/** One fetch through the proxy's port for `target`, generator style: resolves to the outcome code. */
export function* fetchOnce(loop: EventLoop, port: number, target: FetchTarget, tally: Tally): Coroutine<string> {
  bump(tally.ops, `fetch to ${target.route}`);
  try {
    const result = yield* fetchCoroutine(loop, `http://127.0.0.1:${port}${target.path}`, {
      timeoutMs: FETCH_TIMEOUT_MS,
    });
    return check(target, result, tally);
  } catch (error) {
    if (error instanceof CancelledError) throw error;
    return errorCode(error);
  }
}

/** The same with fetchAsync, for cooperative mode. */
export async function fetchOnceAsync(
  loop: EventLoop,
  port: number,
  target: FetchTarget,
  tally: Tally,
): Promise<string> {
  bump(tally.ops, `fetch to ${target.route}`);
  try {
    const result = await fetchAsync(loop, `http://127.0.0.1:${port}${target.path}`, { timeoutMs: FETCH_TIMEOUT_MS });
    return check(target, result, tally);
  } catch (error) {
    if (error instanceof CancelledError) throw error;
    return errorCode(error);
  }
}

/** Counts an outcome under `kind` (ops) and, unless 'ok', under errors. */
export function countOutcome(tally: Tally, kind: string, outcome: string): void {
  bump(tally.ops, kind);
  if (outcome !== 'ok') bump(tally.errors, `${kind} ${outcome}`);
}
