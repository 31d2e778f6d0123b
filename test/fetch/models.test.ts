/**
 * The five I/O models of the notes (fetch/models.ts) against the iomux
 * server in a child process: each fetches the same pages, bodies checked.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startServerProcess } from '../../src/cli/demo.js';
import {
  type FetchError,
  type FetchResult,
  fetchBlocking,
  fetchSignalDriven,
  fetchWithModel,
  IO_MODELS,
} from '../../src/fetch/index.js';
import { IoUring, SIGRTMIN, syscallCount } from '../../src/sys/index.js';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const N = 12;
let port = 0;
let stop = (): void => {};

beforeAll(async () => {
  ({ port, stop } = await startServerProcess(CLI, 5));
}, 30_000);

afterAll(() => stop());

const urls = (): string[] => Array.from({ length: N }, (_, i) => `http://127.0.0.1:${port}/goods/${i}/`);

function expectPages(results: readonly (FetchResult | FetchError)[]): void {
  expect(results).toHaveLength(N);
  results.forEach((r, i) => {
    if (!('status' in r)) throw r;
    expect(r.status).toBe(200);
    expect(r.url).toBe(`http://127.0.0.1:${port}/goods/${i}/`);
    expect(r.body.toString()).toContain(`<h1>goods ${i}</h1>`);
    expect(r.body.toString().endsWith('</html>\n')).toBe(true);
  });
}

describe('fetchWithModel', () => {
  // (Where io_uring is unavailable its model has the test below instead.)
  for (const model of IO_MODELS.filter((m) => m !== 'io_uring' || IoUring.available())) {
    it(`${model}: fetches every page`, async () => {
      const before = syscallCount();
      expectPages(await fetchWithModel(model, urls(), { timeoutMs: 10_000 }));
      expect(syscallCount() - before).toBeGreaterThan(N);
    });
  }

  if (!IoUring.available()) {
    it('io_uring: says it is unavailable', async () => {
      await expect(fetchWithModel('io_uring', urls())).rejects.toMatchObject({ code: 'ERR_IO_URING_UNAVAILABLE' });
    });
  }

  it('busy-polling makes more syscalls per page than epoll (it never sleeps)', async () => {
    const count = async (model: 'non-blocking' | 'epoll'): Promise<number> => {
      const before = syscallCount();
      expectPages(await fetchWithModel(model, urls(), { timeoutMs: 10_000 }));
      return syscallCount() - before;
    };
    // Each page is held 5 ms by the server: the busy loop asks thousands of times meanwhile.
    expect(await count('non-blocking')).toBeGreaterThan(2 * (await count('epoll')));
  });
});

describe('fetchBlocking', () => {
  it('fails with the connect error', () => {
    expect(() => fetchBlocking('http://127.0.0.1:1/')).toThrow(expect.objectContaining({ code: 'ECONNREFUSED' }));
  });

  it('gives up on a page the server holds longer than timeoutMs (SO_RCVTIMEO)', () => {
    expect(() => fetchBlocking(`http://127.0.0.1:${port}/delay/2000`, { timeoutMs: 100 })).toThrow(
      expect.objectContaining({ code: 'ERR_TIMEOUT' }),
    );
  });
});

describe('fetchSignalDriven', () => {
  it('reports each failure in its place and fetches the rest', () => {
    const list = [`http://127.0.0.1:${port}/goods/1/`, 'http://127.0.0.1:1/', `http://127.0.0.1:${port}/goods/2/`];
    const [a, b, c] = fetchSignalDriven(list, { timeoutMs: 10_000, signal: SIGRTMIN + 1 });
    expect(a).toMatchObject({ status: 200 });
    expect(b).toMatchObject({ code: 'ECONNREFUSED' });
    expect(c).toMatchObject({ status: 200 });
  });

  it('times out pages the server holds too long', () => {
    const [r] = fetchSignalDriven([`http://127.0.0.1:${port}/delay/2000`], { timeoutMs: 100 });
    expect(r).toMatchObject({ code: 'ERR_TIMEOUT' });
  });
});
