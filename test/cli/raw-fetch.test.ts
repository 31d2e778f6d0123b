import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startShop } from '../../src/cli/demo.js';
import { fetchAllMultiplexed, fetchBusyPollRaw, type RawBackend } from '../../src/cli/raw-fetch.js';
import { openFdCount } from '../helpers/fds.js';

// The shop runs from the build (a child process cannot load TypeScript).
let shop: Awaited<ReturnType<typeof startShop>>;

beforeAll(async () => {
  shop = await startShop(fileURLToPath(new URL('../../dist/cli/shop-server.js', import.meta.url)));
});

afterAll(() => {
  shop.stop();
});

describe('the notes\u2019 raw fetchers', () => {
  it('busy-poll fetches a page: status and body', () => {
    const page = fetchBusyPollRaw(shop.port, '/goods/7/');
    expect(page.status).toBe(200);
    expect(page.bytes).toBeGreaterThan(100);
    expect(fetchBusyPollRaw(shop.port, '/nope').status).toBe(404);
  });

  it.each(['select', 'poll', 'epoll'] as RawBackend[])('%s + callbacks fetches 50 pages at once', (backend) => {
    const before = openFdCount();
    const paths = Array.from({ length: 50 }, (_, i) => `/goods/${i}/`);
    const pages = fetchAllMultiplexed(backend, shop.port, paths);
    expect(pages.map((p) => p.path).sort()).toEqual([...paths].sort());
    expect(pages.every((p) => p.status === 200)).toBe(true);
    expect(openFdCount()).toBe(before);
  });

  it('a refused port fails the batch with a clear error and leaks no fd', () => {
    const before = openFdCount();
    expect(() => fetchAllMultiplexed('epoll', 1, ['/goods/1/'])).toThrow(/connect failed \(errno 111\)/);
    expect(openFdCount()).toBe(before);
  });
});
