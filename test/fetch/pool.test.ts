/**
 * HttpPool in cooperative mode against a node:http server in this process,
 * which counts the connections it sees.
 */
import { createServer, type Server } from 'node:http';
import type { Socket as NetSocket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';

import { type Coroutine, gather, sleep } from '../../src/coro/index.js';
import { HttpPool } from '../../src/fetch/index.js';
import { BACKENDS, testLoop } from '../helpers/loops.js';

let server: Server | null = null;

afterEach(() => {
  server?.closeAllConnections();
  server?.close();
  server = null;
});

async function countingServer(
  keepAliveTimeoutMs = 5000,
): Promise<{ port: number; connections: () => number; sockets: NetSocket[] }> {
  const sockets: NetSocket[] = [];
  server = createServer((req, res) => {
    if (req.url === '/close') res.setHeader('connection', 'close');
    res.end(`page ${req.url}`);
  });
  server.keepAliveTimeout = keepAliveTimeoutMs;
  server.on('connection', (s) => sockets.push(s));
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as { port: number }).port, connections: () => sockets.length, sockets };
}

describe.each(BACKENDS)('HttpPool on %s', (backend) => {
  it('reuses kept-alive connections, at most maxPerHost at once', async () => {
    const { port, connections } = await countingServer();
    const loop = testLoop(backend);
    const pool = new HttpPool(loop, { maxPerHost: 2 });
    const bodies = await loop.run(function* (): Coroutine<string[]> {
      const results = yield* gather(
        ...Array.from({ length: 20 }, (_, i) => pool.fetch(`http://127.0.0.1:${port}/${i}`)),
      );
      return results.map((r) => r.body.toString());
    });
    expect(bodies).toEqual(Array.from({ length: 20 }, (_, i) => `page /${i}`));
    expect(connections()).toBe(2);
    expect(pool.idleConnections).toBe(2);
    pool.close();
    expect(pool.idleConnections).toBe(0);
  });

  it('does not keep a connection the server closes (Connection: close)', async () => {
    const { port, connections } = await countingServer();
    const loop = testLoop(backend);
    const pool = new HttpPool(loop, { maxPerHost: 1 });
    await loop.run(function* (): Coroutine<void> {
      yield* pool.fetch(`http://127.0.0.1:${port}/close`);
      yield* pool.fetch(`http://127.0.0.1:${port}/again`);
    });
    expect(connections()).toBe(2);
    pool.close();
  });

  it('retries once on a fresh connection when a kept-alive one went stale', async () => {
    const { port, connections, sockets } = await countingServer();
    const loop = testLoop(backend);
    const pool = new HttpPool(loop, { maxPerHost: 1 });
    const body = await loop.run(function* (): Coroutine<string> {
      yield* pool.fetch(`http://127.0.0.1:${port}/first`);
      // The server drops the idle connection behind the pool's back, and the
      // next request takes it before the loop has seen the EOF.
      for (const s of sockets) s.destroy();
      return (yield* pool.fetch(`http://127.0.0.1:${port}/second`)).body.toString();
    });
    expect(body).toBe('page /second');
    expect(connections()).toBe(2);
    pool.close();
  });

  it('drops an idle connection as soon as the server closes it', async () => {
    const { port, connections, sockets } = await countingServer();
    const loop = testLoop(backend);
    const pool = new HttpPool(loop, { maxPerHost: 1 });
    const idle = await loop.run(function* (): Coroutine<number[]> {
      yield* pool.fetch(`http://127.0.0.1:${port}/first`);
      const before = pool.idleConnections;
      for (const s of sockets) s.destroy();
      // Until the pool notices the FIN (its reader on the idle socket): no
      // 50 ms guess; a pool that never drops it fails on the test's timeout.
      while (pool.idleConnections > 0) yield* sleep(1);
      const after = pool.idleConnections;
      yield* pool.fetch(`http://127.0.0.1:${port}/second`);
      return [before, after, pool.idleConnections];
    });
    expect(idle).toEqual([1, 0, 1]);
    expect(connections()).toBe(2);
    pool.close();
    expect(pool.idleConnections).toBe(0);
  });
});
