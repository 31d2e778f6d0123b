/**
 * Every fetch style's timings (what the demo's waterfall draws): each step
 * at or after the one before, and the server's hold time in the wait phase,
 * against `iomux serve --latency` in a child process, over http and https.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type CertificateSet, makeCertificates } from '../../bench/src/tls-certs.js';
import { startServerProcess } from '../../src/cli/demo.js';
import { type FetchStyle, fetchMany, STYLES } from '../../src/cli/fetch-many.js';
import { gather } from '../../src/coro/index.js';
import {
  type FetchResult,
  type FetchTimings,
  fetchBlocking,
  fetchSignalDriven,
  HttpPool,
} from '../../src/fetch/index.js';
import { TimingMarks } from '../../src/fetch/timings.js';
import { EventLoop } from '../../src/loop/index.js';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const HOLD_MS = 40;
let plain: { port: number; stop: () => void };
let tls: { port: number; stop: () => void };
let certs: CertificateSet;

beforeAll(async () => {
  certs = makeCertificates();
  plain = await startServerProcess(CLI, HOLD_MS);
  tls = await startServerProcess(CLI, HOLD_MS, { certFile: certs.server.certFile, keyFile: certs.server.keyFile });
}, 60_000);

afterAll(() => {
  plain?.stop();
  tls?.stop();
});

/** The timings are in step order, within the fetch, and the hold is in the wait. */
function expectTimings(t: FetchTimings, secured: boolean, before: number, after: number): void {
  expect(t.start).toBeGreaterThanOrEqual(before);
  expect(t.end).toBeLessThanOrEqual(after);
  expect(t.connected).toBeGreaterThanOrEqual(t.start);
  if (secured) {
    expect(t.secured).not.toBeNull();
    expect(t.secured as number).toBeGreaterThanOrEqual(t.connected);
    expect(t.sent).toBeGreaterThanOrEqual(t.secured as number);
  } else {
    expect(t.secured).toBeNull();
    expect(t.sent).toBeGreaterThanOrEqual(t.connected);
  }
  expect(t.firstByte).toBeGreaterThanOrEqual(t.sent);
  expect(t.end).toBeGreaterThanOrEqual(t.firstByte);
  // The server holds each page HOLD_MS before it answers: the wait phase.
  expect(t.firstByte - t.sent).toBeGreaterThanOrEqual(HOLD_MS - 5);
}

describe.each([
  ['http', false],
  ['https', true],
] as const)('fetch timings over %s', (scheme, secure) => {
  const url = (i: number): string => `${scheme}://127.0.0.1:${secure ? tls.port : plain.port}/goods/${i}/`;
  const options = (): { ca?: string } => (secure ? { ca: certs.ca.cert } : {});

  it.each(STYLES)('%s: every page has its steps in order', async (style: FetchStyle) => {
    const before = performance.now();
    const results = await fetchMany([url(1), url(2), url(3)], {
      style,
      backend: 'epoll',
      concurrency: 3,
      timeoutMs: 20_000,
      ...options(),
    });
    const after = performance.now();
    for (const r of results) {
      expect(r).toHaveProperty('status', 200);
      expectTimings((r as FetchResult).timings, secure, before, after);
    }
  });

  it('the blocking and signal-driven models too', () => {
    const before = performance.now();
    const one = fetchBlocking(url(4), options());
    const many = fetchSignalDriven([url(5), url(6)], options());
    const after = performance.now();
    for (const r of [one, ...many]) {
      expect(r).toHaveProperty('status', 200);
      expectTimings((r as FetchResult).timings, secure, before, after);
    }
  });

  it('a kept-alive connection reused: no connect, no handshake', () => {
    const loop = new EventLoop({ backend: 'epoll' });
    const pool = new HttpPool(loop, { maxPerHost: 1 });
    try {
      const before = performance.now();
      const first = loop.runUntilComplete(pool.fetch(url(7), options()));
      const second = loop.runUntilComplete(pool.fetch(url(8), options()));
      const after = performance.now();
      expectTimings(first.timings, secure, before, after);
      expect(second.timings.secured).toBeNull();
      expect(second.timings.firstByte - second.timings.sent).toBeGreaterThanOrEqual(HOLD_MS - 5);
      // Reused: connected the moment the connection was taken from the pool.
      expect(second.timings.connected - second.timings.start).toBeLessThan(
        second.timings.sent - second.timings.start + 1,
      );
      expect(second.timings.start).toBeGreaterThanOrEqual(first.timings.end);
    } finally {
      pool.close();
      loop.close();
    }
  });
});

describe('TimingMarks', () => {
  it('gives a step never marked the time of the one before it, and keeps the first mark of each', () => {
    const marks = new TimingMarks();
    marks.sent();
    const sent = marks.finish().sent;
    marks.sent();
    const t = marks.finish();
    expect(t.sent).toBe(sent);
    expect(t.connected).toBe(t.start);
    expect(t.secured).toBeNull();
    expect(t.firstByte).toBe(t.end);
    expect(t.start).toBeLessThanOrEqual(t.sent);
  });
});

describe('HttpPool timings', () => {
  it('a page that waited for the pool, then reused a kept-alive connection, has no connect phase', () => {
    const loop = new EventLoop({ backend: 'epoll' });
    const pool = new HttpPool(loop, { maxPerHost: 1 });
    try {
      const url = (i: number): string => `http://127.0.0.1:${plain.port}/goods/${i}/`;
      const [first, second] = loop.runUntilComplete(
        (function* () {
          return yield* gather(pool.fetch(url(1)), pool.fetch(url(2)));
        })(),
      ) as [FetchResult, FetchResult];
      // Its fetch began when its turn came: after the first one ended.
      expect(second.timings.start).toBeGreaterThanOrEqual(first.timings.end);
      expect(second.timings.connected - second.timings.start).toBeLessThan(HOLD_MS / 2);
    } finally {
      pool.close();
      loop.close();
    }
  });
});
