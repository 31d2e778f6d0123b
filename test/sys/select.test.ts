import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';

import { AF_INET, close, eventfd, FD_SETSIZE, MSG_OOB, SOCK_STREAM, Socket, select } from '../../src/sys/index.js';
import { SelectSet } from '../../src/sys/select.js';
import { testEventfd, testPipe, testSocketpair, trackClosable } from '../helpers/fds.js';
import { expectResumesAfterSignal, waitThroughSignal } from '../helpers/signals.js';
import { watchdog } from '../helpers/watchdog.js';

describe('select()', () => {
  it('reports a readable eventfd and a writable socket, as the objects given', () => {
    const efd = testEventfd(1);
    const [a, b] = testSocketpair();
    const [r, w, x] = select([efd, b], [a], [], 0);
    expect(r).toEqual([efd]);
    expect(w).toHaveLength(1);
    expect(w[0]).toBe(a);
    expect(x).toEqual([]);
  });

  it('keeps the order given and reports a repeated entry each time, like Python', () => {
    const e1 = testEventfd(1);
    const e2 = testEventfd(1);
    const idle = testEventfd(0);
    expect(select([e2, idle, e1, e2], [], [], 0)[0]).toEqual([e2, e1, e2]);
  });

  it('reports readiness that arrives while it waits', () => {
    const [a, b] = testSocketpair();
    a.send('x');
    const [r] = select([b], [], [], 1000);
    expect(r).toEqual([b]);
    expect(b.recv(1).toString()).toBe('x');
  });

  it('reports TCP urgent data as exceptional', () => {
    const server = trackClosable(new Socket(AF_INET, SOCK_STREAM));
    server.bind(['127.0.0.1', 0]);
    server.listen();
    const client = trackClosable(new Socket(AF_INET, SOCK_STREAM));
    client.connect(server.getsockname());
    const [conn] = server.accept();
    trackClosable(conn);
    client.send('!', MSG_OOB);
    const [, , x] = select([], [], [conn], 1000);
    expect(x).toEqual([conn]);
  });

  it('returns empty lists on timeout, not before the timeout', () => {
    const idle = testEventfd(0);
    // A select that ignored its timeout would return the watchdog (10 s), not nothing.
    const dog = watchdog();
    const t0 = performance.now();
    const result = select([idle, dog], [], [], 50);
    const elapsed = performance.now() - t0;
    expect(result).toEqual([[], [], []]);
    expect(elapsed).toBeGreaterThanOrEqual(49);
  });

  it('rounds a sub-millisecond timeout up instead of polling', () => {
    const idle = testEventfd(0);
    const dog = watchdog();
    const t0 = performance.now();
    expect(select([idle, dog], [], [], 0.01)).toEqual([[], [], []]);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(0.9);
  });

  it('returns at once with timeout 0 and accepts empty lists', () => {
    expect(select([], [], [], 0)).toEqual([[], [], []]);
  });

  it('refuses an fd >= FD_SETSIZE with a RangeError before touching any fd_set', () => {
    const efd = testEventfd(1);
    expect(FD_SETSIZE).toBe(1024);
    expect(() => select([efd, FD_SETSIZE], [], [], 0)).toThrow(
      expect.objectContaining({
        name: 'RangeError',
        code: 'ERR_OUT_OF_RANGE',
        message: expect.stringContaining('fd 1024'),
      }),
    );
    expect(() => select([], [], [2_000_000], 0)).toThrow(RangeError);
    // Nothing else changed: the same call without the bad fd still works.
    expect(select([efd], [], [], 0)[0]).toEqual([efd]);
  });

  it('refuses negative, fractional and non-fd entries', () => {
    expect(() => select([-1], [], [], 0)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => select([1.5], [], [], 0)).toThrow(RangeError);
    expect(() => select(['3' as unknown as number], [], [], 0)).toThrow(
      expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }),
    );
    expect(() => select([{ fileno: () => -5 }], [], [], 0)).toThrow(RangeError);
  });

  it('refuses lists that are not arrays with the same code, naming which one', () => {
    for (const [args, name] of [
      [[undefined, [], []], 'readable'],
      [[[], null, []], 'writable'],
      [[[], [], 3], 'exceptional'],
    ] as const) {
      expect(() => select(...(args as unknown as [number[], number[], number[]]), 0)).toThrow(
        expect.objectContaining({
          name: 'TypeError',
          code: 'ERR_INVALID_ARG_TYPE',
          message: expect.stringContaining(`"${name}"`),
        }),
      );
    }
  });

  it('refuses a negative, NaN or non-number timeout (Python raises too)', () => {
    expect(() => select([], [], [], -1)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => select([], [], [], Number.NaN)).toThrow(RangeError);
    expect(() => select([], [], [], '5' as unknown as number)).toThrow(TypeError);
    expect(() => select([], [], [], 2 ** 31)).toThrow(RangeError);
  });

  it('raises EBADF for a closed fd', () => {
    const [r] = testPipe();
    close(r); // the tracker's close at the end is then a no-op
    expect(() => select([r], [], [], 0)).toThrow(
      expect.objectContaining({ name: 'OSError', code: 'EBADF', syscall: 'select' }),
    );
  });

  it('resumes after a signal (EINTR) and still honours its timeout', async () => {
    const idle = testEventfd(0);
    await expectResumesAfterSignal((marker) => (ms) => select([idle, marker], [], [], ms), [[], [], []]);
  });

  it('reports readiness that arrives after a signal interrupted it', async () => {
    const [r, w] = testPipe();
    expect((await waitThroughSignal((ms) => select([r], [], [], ms), w))[0]).toEqual([r]);
  });
});

describe('SelectSet', () => {
  it('a watched fd closed here while another thread reuses its number is never an EBADF from wait', async () => {
    // A loop keeps a closed fd in its set for one iteration. select(2) then
    // fails with EBADF and wait() drops the closed fd; but when another
    // thread opens an fd between that failure and the scan, the number is
    // open again, nothing is found closed, and wait() used to throw EBADF
    // (the soak hit it: a select loop on the main thread, workers around it).
    const dist = new URL('../../dist/sys/index.js', import.meta.url);
    expect(existsSync(dist), 'run `npm run build` first').toBe(true);
    const stop = new Int32Array(new SharedArrayBuffer(4));
    const churn = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads');
      import(${JSON.stringify(dist.href)}).then((sys) => {
        parentPort.postMessage('ready');
        for (let i = 0; i < 50_000_000 && Atomics.load(workerData, 0) === 0; i++) sys.close(sys.eventfd());
      });`,
      { eval: true, workerData: stop },
    );
    await new Promise((resolve) => churn.once('message', resolve));
    const set = new SelectSet();
    let failure: unknown = null;
    try {
      const started = performance.now();
      for (let i = 0; i < 200_000 && performance.now() - started < 3000; i++) {
        const fd = eventfd();
        set.set(fd, 1);
        close(fd);
        try {
          // The closed fd reported both ways, or whatever now holds its number.
          set.wait(0);
        } catch (error) {
          failure = error;
          break;
        }
        if (set.size > 0) set.set(fd, 0);
      }
    } finally {
      Atomics.store(stop, 0, 1);
      await churn.terminate();
      set.close();
    }
    expect(failure).toBeNull();
  });
});
