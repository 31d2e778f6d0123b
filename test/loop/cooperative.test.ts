import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, get } from 'node:http';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';

import {
  CancelledError,
  type Coroutine,
  currentTask,
  gather,
  getRunningLoop,
  sleep,
  TimeoutError,
  waitFor,
} from '../../src/coro/index.js';
import { EventLoop } from '../../src/loop/index.js';
import { AF_UNIX, eventfd, read, SOCK_STREAM, Socket, socketpair } from '../../src/sys/index.js';
import { openFdCount, testSocketpair, track } from '../helpers/fds.js';
import { BACKENDS, testLoop } from '../helpers/loops.js';
import { echoServer, listenLoopback, tcpSocket } from '../helpers/net.js';

// The addon the package loads (a prebuild or build/Release), for a worker to require.
const require = createRequire(import.meta.url);
const addonPath = (require('node-gyp-build') as { path(dir: string): string }).path(
  new URL('../..', import.meta.url).pathname,
);

/** Threads of this process, from /proc/self/status. */
function threadCount(): number {
  return Number(/^Threads:\s+(\d+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);
}

describe.each(BACKENDS)('cooperative mode on %s', (backend) => {
  it('an async function a callback starts belongs to no Task, even when a Task woke the loop: cancelling that Task leaves it alone', async () => {
    const loop = testLoop(backend);
    const plainDelay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
    const result = await loop.run(async () => {
      const otherFuture = loop.createFuture<string>();
      let otherOutcome = 'pending';
      let otherTask: unknown = 'unset';
      const other = async (): Promise<void> => {
        otherTask = currentTask();
        try {
          otherOutcome = await otherFuture;
        } catch (e) {
          otherOutcome = e instanceof CancelledError ? 'cancelled' : String(e);
        }
      };
      const main = loop.createTask(async () => {
        await plainDelay(1); // now in a promise continuation, outside the loop's tick
        loop.callSoon(() => void other()); // wakes the loop from main's code
        await plainDelay(40); // a plain promise: main cannot be interrupted here
        return 'main ran on';
      });
      await plainDelay(20);
      main.cancel();
      await plainDelay(5);
      const afterCancel = otherOutcome;
      otherFuture.setResult('other finished');
      await plainDelay(5);
      return [afterCancel, otherOutcome, otherTask === null, main.cancelled()];
    });
    expect(result).toEqual(['pending', 'other finished', true, true]);
  });

  it('run() takes a generator, a Future, a promise or a function, and settles with its outcome', async () => {
    const loop = testLoop(backend);
    function* gen(): Coroutine<string> {
      yield* sleep(2);
      return 'generator';
    }
    expect(await loop.run(gen())).toBe('generator');
    const fut = loop.createFuture<string>();
    setTimeout(() => loop.callSoonThreadsafe(() => fut.setResult('future')), 5);
    expect(await loop.run(fut)).toBe('future');
    expect(await loop.run(Promise.resolve('promise'))).toBe('promise');
    expect(
      await loop.run(async () => {
        await sleep(2);
        return getRunningLoop() === loop ? 'async function' : 'wrong loop';
      }),
    ).toBe('async function');
    await expect(
      loop.run(async () => {
        await sleep(1);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(loop.isRunning()).toBe(false);
  });

  it('refuses a second run or runForever meanwhile, and close() while running', async () => {
    const loop = testLoop(backend);
    const first = loop.run(async () => {
      await sleep(20);
      return 1;
    });
    await expect(loop.run(Promise.resolve(2))).rejects.toMatchObject({ code: 'ERR_LOOP_RUNNING' });
    expect(() => loop.runForever()).toThrow(expect.objectContaining({ code: 'ERR_LOOP_RUNNING' }));
    expect(() => loop.close()).toThrow(expect.objectContaining({ code: 'ERR_LOOP_RUNNING' }));
    expect(await first).toBe(1);
  });

  it('async functions as coroutines: sockRecv, sleep, gather, waitFor', async () => {
    const loop = testLoop(backend);
    const [a, b] = testSocketpair();
    a.setBlocking(false);
    b.setBlocking(false);
    const result = await loop.run(async () => {
      const reader = loop.createTask(async () => (await loop.sockRecv(b, 100)).toString());
      await sleep(5);
      await loop.sockSendAll(a, 'hello');
      const [text, two] = await gather(reader, sleep(3, 2));
      let timedOut = false;
      try {
        await waitFor(sleep(1000), 10);
      } catch (e) {
        timedOut = e instanceof TimeoutError;
      }
      return { text, two, timedOut };
    });
    expect(result).toEqual({ text: 'hello', two: 2, timedOut: true });
  });

  it('cancelling an async task rejects the Future it awaits and aborts its signal', async () => {
    const loop = testLoop(backend);
    const log = await loop.run(async () => {
      const seen: string[] = [];
      const stubborn = loop.createTask(async (signal) => {
        try {
          await sleep(1000);
        } catch (e) {
          seen.push(`${(e as Error).name} aborted=${signal.aborted}`);
        }
        await sleep(1);
        return 'went on';
      });
      const plain = loop.createTask(async () => {
        await sleep(1000);
      });
      await sleep(5);
      stubborn.cancel();
      plain.cancel('bye');
      seen.push(await stubborn);
      try {
        await plain;
      } catch (e) {
        seen.push(`${e instanceof CancelledError} ${(e as Error).message} ${plain.cancelled()}`);
      }
      return seen;
    });
    expect(log).toEqual(['CancelledError aborted=true', 'went on', 'true bye true']);
  });

  it('a timer further away than a Node timer can wait (2^31 - 1 ms) neither spins the loop nor warns', async () => {
    const loop = testLoop(backend);
    const warnings: string[] = [];
    const onWarning = (w: Error): void => {
      warnings.push(w.name);
    };
    process.on('warning', onWarning);
    try {
      const iterations = await loop.run(async () => {
        const far = loop.callLater(2 ** 40, () => {});
        const before = loop.iterations;
        await new Promise((resolve) => setTimeout(resolve, 100));
        far.cancel();
        return loop.iterations - before;
      });
      // Woken by the Node timer above and little else: it used to wake every 1 ms.
      expect(iterations).toBeLessThan(10);
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).not.toContain('TimeoutOverflowWarning');
  });

  it('a registration that outlived its fd (a dup keeps the file) neither spins the idle run nor stops it waking', async () => {
    const loop = testLoop(backend);
    const [a, peer] = testSocketpair();
    const keep = Socket.fromFd(a.fileno());
    try {
      const got = await loop.run(async () => {
        loop.addReader(a, () => {});
        peer.send('x'); // the old file stays readable: nobody reads it
        await sleep(0);
        const fd = a.fileno();
        a.close();
        const [c, d] = testSocketpair();
        expect(c.fileno()).toBe(fd);
        let runs = 0;
        loop.addReader(c, () => {
          runs++;
        });
        const before = loop.iterations;
        await new Promise((resolve) => setTimeout(resolve, 50));
        expect(runs).toBe(0);
        expect(loop.iterations - before).toBeLessThan(10);
        loop.removeReader(c);
        // On epoll the set was renewed under libuv's watcher: it still wakes the loop.
        const received = loop.createFuture<string>();
        loop.addReader(c, () => {
          loop.removeReader(c);
          received.setResult(c.recv(10).toString());
        });
        d.send('after');
        return await received;
      });
      expect(got).toBe('after');
    } finally {
      keep.close();
    }
  });

  it('a selector closed behind an idle run fails the run, not leaves it pending', async () => {
    const loop = testLoop(backend);
    const [, b] = testSocketpair();
    b.setBlocking(false);
    const run = loop.run(async () => {
      setTimeout(() => loop.selector.close(), 10);
      await loop.sockRecv(b, 1);
    });
    await expect(run).rejects.toMatchObject({ code: 'ERR_SELECTOR_CLOSED' });
    expect(loop.isRunning()).toBe(false);
  });

  it('run(fn) runs fn as a Task, as createTask(fn) does: currentTask(), its AbortSignal', async () => {
    const loop = testLoop(backend);
    const seen = await loop.run(async (signal) => {
      const task = currentTask();
      return [task !== null && task.signal === signal, signal.aborted];
    });
    expect(seen).toEqual([true, false]);
  });

  // The loop has no timer of its own here: it waits without limit, so each
  // future settles only if its wake-up reached the loop (else the test times
  // out). How promptly is a benchmark's question, not a test's.
  it('wake-ups: a Node timer, a promise continuation and another thread all wake a waiting loop', async () => {
    const loop = testLoop(backend);
    const efd = track(eventfd(0));
    const delays = await loop.run(async () => {
      const out: number[] = [];
      const t0 = performance.now();
      const fromTimer = loop.createFuture<number>();
      setTimeout(() => loop.callSoon(() => fromTimer.setResult(performance.now())), 20);
      out.push((await fromTimer) - t0 - 20);
      const fromPromise = loop.createFuture<number>();
      const t1 = performance.now();
      void new Promise((resolve) => setTimeout(resolve, 20)).then(() =>
        loop.callSoonThreadsafe(() => fromPromise.setResult(performance.now())),
      );
      out.push((await fromPromise) - t1 - 20);
      // Another thread writes the eventfd the loop reads.
      const fromThread = loop.createFuture<number>();
      loop.addReader(efd, () => {
        read(efd, Buffer.alloc(8));
        loop.removeReader(efd);
        fromThread.setResult(performance.now());
      });
      const t2 = performance.now();
      const worker = new Worker(
        `const { write } = require(${JSON.stringify(addonPath)});
         setTimeout(() => { const b = Buffer.alloc(8); b.writeBigUInt64LE(1n); write(${efd}, b); }, 20);`,
        { eval: true },
      );
      out.push((await fromThread) - t2 - 20);
      await worker.terminate();
      return out;
    });
    expect(delays).toHaveLength(3);
    // Each woke the loop after its 20 ms, never before (1 ms of timer slack).
    for (const d of delays) expect(d).toBeGreaterThan(-1);
  });

  // Counted, not timed: CPU time over a window measured the machine's load
  // as much as the loop. An idle loop iterates only when something wakes it.
  it('an idle loop sleeps: it iterates when woken, never polls while idle', async () => {
    const loop = testLoop(backend);
    const [, b] = testSocketpair();
    b.setBlocking(false);
    const iterations = await loop.run(async () => {
      loop.addReader(b, () => {});
      const before = loop.iterations;
      await sleep(500);
      const n = loop.iterations - before;
      loop.removeReader(b);
      return n;
    });
    // Woken once by its timer (plus an iteration or two when a Node timer
    // fires a rounding short of the deadline); a loop that polled while
    // idle, through setImmediate or a helper that kept posting back, runs
    // hundreds of iterations in 500 ms on any machine.
    expect(iterations).toBeLessThan(10);
  });

  it('a node:http server, a setInterval and fs.promises keep working while iomux serves 1,000 connections', async () => {
    const loop = testLoop(backend);
    const http = createServer((_req, res) => res.end('node:http ok'));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const httpPort = (http.address() as { port: number }).port;
    let ticks = 0;
    const interval = setInterval(() => ticks++, 10);
    const fetchHttp = (): Promise<string> =>
      new Promise((resolve, reject) => {
        get(`http://127.0.0.1:${httpPort}/`, (res) => {
          let body = '';
          res.on('data', (d) => {
            body += d;
          });
          res.on('end', () => resolve(body));
        }).on('error', reject);
      });
    try {
      const { sock: server, port } = listenLoopback(1000);
      const wave = backend === 'select' ? 250 : 1000;
      function* client(): Coroutine<boolean> {
        const sock = tcpSocket();
        yield* loop.sockConnect(sock, ['127.0.0.1', port]);
        yield* loop.sockSendAll(sock, 'ping');
        sock.shutdown(1);
        const reply = yield* loop.sockRecv(sock, 10);
        sock.close();
        return reply.toString() === 'ping';
      }
      const sideWork = (async () => {
        const results: string[] = [];
        for (let i = 0; i < 5; i++) {
          results.push(await fetchHttp());
          results.push((await readFile(new URL(import.meta.url))).length > 0 ? 'fs ok' : 'fs empty');
        }
        return results;
      })();
      const ok = await loop.run(async () => {
        let count = 0;
        for (let done = 0; done < 1000; done += wave) {
          const [, ...replies] = (await gather(
            echoServer(loop, server, wave),
            ...Array.from({ length: wave }, () => client()),
          )) as [number, ...boolean[]];
          count += replies.filter(Boolean).length;
          await sleep(15);
        }
        return count;
      });
      expect(ok).toBe(1000);
      expect(await sideWork).toEqual(Array(5).fill(['node:http ok', 'fs ok']).flat());
      expect(ticks).toBeGreaterThan(0);
    } finally {
      clearInterval(interval);
      http.close();
    }
  });

  it('1,000 run/close cycles leak no fd and no thread', async () => {
    // What earlier tests released (a terminated worker's fds, node:http's
    // sockets) may still be closing: the counts may fall meanwhile, never
    // rise. A leak in a cycle is a thousand fds or threads.
    const fds = openFdCount();
    const threads = threadCount();
    for (let i = 0; i < 1000; i++) {
      const loop = new EventLoop({ backend });
      const [a, b] = socketpair();
      a.setBlocking(false);
      b.setBlocking(false);
      await loop.run(async () => {
        a.send('x');
        await loop.sockRecv(b, 1);
      });
      loop.close();
      a.close();
      b.close();
    }
    // Closed libuv handles are freed in the close phase of Node's loop:
    // one turn through it (an immediate runs after that phase's turn).
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(openFdCount()).toBeLessThanOrEqual(fds);
    expect(threadCount()).toBeLessThanOrEqual(threads);
  });

  it('a write the full socket refused in the last iteration of a slice leaves once the peer reads, with no other wake-up', async () => {
    const loop = testLoop(backend);
    const [mine, peer] = testSocketpair(AF_UNIX, SOCK_STREAM);
    mine.setBlocking(false);
    peer.setBlocking(false);
    // The peer's receive buffer and the socket's send buffer, full.
    let filled = 0;
    const big = Buffer.alloc(65536, 'f');
    for (let n = mine.trySend(big); n !== null; n = mine.trySend(big)) filled += n;
    for (let n = mine.trySend('f'); n !== null; n = mine.trySend('f')) filled += n;
    let total = 0;
    await loop.run(async () => {
      const [transport] = await loop.connectAcceptedSocket(() => ({}), mine);
      await new Promise<void>((resolve) => {
        loop.callSoon(() => {
          // Past the slice's 2 ms: this is its last iteration.
          const until = Date.now() + 5;
          while (Date.now() < until) {
            // spin
          }
          transport.write('abc');
          resolve();
        });
      });
      // Only the socket turning writable can wake the loop now.
      const deadline = Date.now() + 2000;
      while (total < filled + 3 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 5));
        for (let n = peer.tryRecvInto(big); n !== null && n > 0; n = peer.tryRecvInto(big)) total += n;
      }
      transport.abort();
    });
    expect(total).toBe(filled + 3);
  });
});

describe('cooperative mode with more than FD_SETSIZE fds open', () => {
  // The helper thread's own eventfd then has a number >= 1024: it once went
  // into an fd_set (FD_SET past its end, issue 14). select still watches only
  // the low fds it was given; the wait must work and the fds come back.
  it.each(['select', 'poll'] as const)('a %s loop waits on a low fd and is woken', async (backend) => {
    const [a, b] = testSocketpair();
    b.setBlocking(false);
    const filler = Array.from({ length: 1100 }, () => track(eventfd(0)));
    expect(Math.max(...filler)).toBeGreaterThanOrEqual(1024);
    const loop = testLoop(backend);
    const got = await loop.run(async () => {
      // After this tick: the loop has gone idle (its wait armed) by then.
      setImmediate(() => a.send('late'));
      return (await loop.sockRecv(b, 16)).toString();
    });
    expect(got).toBe('late');
  });
});
