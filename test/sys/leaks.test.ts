import { existsSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';

import {
  AF_INET,
  close,
  EPOLLIN,
  Epoll,
  eventfd,
  POLLIN,
  Poll,
  pipe,
  SOCK_STREAM,
  Socket,
  socketpair,
} from '../../src/sys/index.js';
import { newFds, openFdTable } from '../helpers/fds.js';

describe('fd lifetime', () => {
  it('10,000 open/close cycles of every kind of object leave /proc/self/fd unchanged', () => {
    const before = openFdTable();
    for (let i = 0; i < 10_000; i++) {
      const efd = eventfd();
      const [r, w] = pipe();
      const [a, b] = socketpair();
      const s = new Socket(AF_INET, SOCK_STREAM);
      const ep = new Epoll();
      ep.register(efd, EPOLLIN);
      const p = new Poll();
      p.register(r, POLLIN);
      const dup = Socket.fromFd(a.fileno());
      ep.close();
      p.close();
      dup.close();
      s.close();
      a.close();
      b.close();
      close(r);
      close(w);
      close(efd);
    }
    expect(newFds(before)).toEqual([]);
  });

  it('failed calls leak nothing', () => {
    const before = openFdTable();
    for (let i = 0; i < 1000; i++) {
      expect(() => Socket.fromFd(1_000_000)).toThrow();
      expect(() => new Socket(999, SOCK_STREAM)).toThrow();
      const ep = new Epoll();
      expect(() => Socket.fromFd(ep.fileno())).toThrow(expect.objectContaining({ code: 'ENOTSOCK' }));
      ep.close();
    }
    expect(newFds(before)).toEqual([]);
  });

  it('the garbage collector closes sockets and epolls nobody closed', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const before = openFdTable();
    (() => {
      for (let i = 0; i < 500; i++) {
        new Epoll();
        new Socket(AF_INET, SOCK_STREAM);
        socketpair();
      }
    })();
    expect(newFds(before).length).toBeGreaterThanOrEqual(2000);
    // Collect until they are closed (finalizers run on a later turn): no
    // deadline of its own, fds that never close fail on the test's timeout.
    while (newFds(before).length > 0) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(newFds(before)).toEqual([]);
  });

  it('sockets a worker never closed are closed when the worker ends', async () => {
    // Workers cannot load TypeScript: they load dist/, which the global setup
    // (test/helpers/global-setup.ts) builds from the sources at every run.
    const dist = new URL('../../dist/sys/index.js', import.meta.url);
    expect(existsSync(dist), 'dist/ is built by the global setup: run through vitest').toBe(true);
    const code = `
      const { parentPort } = require('node:worker_threads');
      import(${JSON.stringify(dist.href)}).then((sys) => {
        const keep = [];
        const server = new sys.Socket(sys.AF_INET, sys.SOCK_STREAM);
        server.bind(['127.0.0.1', 0]);
        server.listen();
        keep.push(server);
        for (let i = 0; i < 50; i++) {
          keep.push(...sys.socketpair());
          const client = new sys.Socket(sys.AF_INET, sys.SOCK_STREAM);
          client.connect(server.getsockname());
          keep.push(client, server.accept()[0], sys.Socket.fromFd(client.fileno()));
        }
        // Kept alive (and the sockets reachable) until told to exit.
        parentPort.once('message', () => process.exit(0));
        parentPort.postMessage(keep.length);
      });`;
    const before = openFdTable();
    const worker = new Worker(code, { eval: true });
    const made = await new Promise<number>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    expect(made).toBe(251);
    expect(newFds(before).length).toBeGreaterThanOrEqual(made);
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    worker.postMessage('exit');
    await exited;
    // The worker's own fds (its event loop's) go with it too.
    expect(newFds(before)).toEqual([]);
  });
});

describe('native memory', () => {
  it('a closed Epoll frees its result array at once, not when the collector gets to it', () => {
    // 1,000 epolls of 65,536 records (768 KiB each), opened and closed with
    // no turn of the event loop, when N-API finalizers could run: held until
    // collected, they were 750 MiB.
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 1000; i++) {
      const ep = new Epoll(-1, 0, { maxEvents: 65_536 });
      const events = ep.events;
      events.fill(1); // touched, so the pages count in RSS
      ep.close();
      // Its view is detached: no JavaScript reaches the freed bytes.
      expect(events.length).toBe(0);
      expect(ep.events.length).toBe(0);
    }
    const grownMiB = (process.memoryUsage().rss - before) / 2 ** 20;
    // Generous: the sanitizers' quarantine keeps up to 256 MiB of freed memory.
    expect(grownMiB).toBeLessThan(400);
  });
});
