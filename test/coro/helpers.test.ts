import { describe, expect, it } from 'vitest';

import {
  CancelledError,
  type Coroutine,
  gather,
  getRunningLoop,
  sleep,
  TimeoutError,
  waitFor,
} from '../../src/coro/index.js';
import { BACKENDS, testLoop } from '../helpers/loops.js';

describe.each(BACKENDS)('helpers on %s', (backend) => {
  it('sleep resolves with its value after the delay; sleep(0) yields once', () => {
    const loop = testLoop(backend);
    function* main(): Coroutine<[string, number]> {
      const t0 = loop.time();
      const v = yield* sleep(20, 'woke');
      const took = loop.time() - t0;
      yield* sleep(0);
      return [v, took];
    }
    const [value, took] = loop.runUntilComplete(main());
    expect(value).toBe('woke');
    expect(took).toBeGreaterThanOrEqual(19.5);
  });

  it('getRunningLoop is the loop inside a task', () => {
    const loop = testLoop(backend);
    function* main(): Coroutine<unknown> {
      yield;
      return getRunningLoop();
    }
    expect(loop.runUntilComplete(main())).toBe(loop);
  });

  it('gather keeps the order given, whatever the finishing order', () => {
    const loop = testLoop(backend);
    function* later<T>(ms: number, v: T): Coroutine<T> {
      yield* sleep(ms);
      return v;
    }
    function* main(): Coroutine<[string, number, boolean]> {
      return yield* gather(later(20, 'slow'), later(1, 2), sleep(5, true));
    }
    expect(loop.runUntilComplete(main())).toEqual(['slow', 2, true]);
    function* none(): Coroutine<[]> {
      return yield* gather();
    }
    expect(loop.runUntilComplete(none())).toEqual([]);
  });

  it('gather fails with the first exception; returnExceptions collects them instead', () => {
    const loop = testLoop(backend);
    function* fail(ms: number, msg: string): Coroutine<never> {
      yield* sleep(ms);
      throw new Error(msg);
    }
    function* first(): Coroutine<unknown> {
      return yield* gather(sleep(10, 'ok'), fail(5, 'second'), fail(1, 'first'));
    }
    expect(() => loop.runUntilComplete(first())).toThrow('first');
    function* all(): Coroutine<unknown[]> {
      return yield* gather(sleep(2, 'ok'), fail(1, 'e1'), { returnExceptions: true });
    }
    const results = loop.runUntilComplete(all());
    expect(results[0]).toBe('ok');
    expect((results[1] as Error).message).toBe('e1');
  });

  it('cancelling a gather cancels its children', () => {
    const loop = testLoop(backend);
    let g: ReturnType<typeof gather> | undefined;
    const children: unknown[] = [];
    function* main(): Coroutine<void> {
      const a = sleep(1000);
      const b = sleep(1000);
      children.push(a, b);
      g = gather(a, b);
      loop.callLater(5, () => g?.cancel());
      yield* g;
    }
    expect(() => loop.runUntilComplete(main())).toThrow(CancelledError);
    expect(children.every((c) => (c as { cancelled(): boolean }).cancelled())).toBe(true);
  });

  it('waitFor returns in time, or cancels the inner task and raises TimeoutError', () => {
    const loop = testLoop(backend);
    let innerCancelled = false;
    function* slow(): Coroutine<string> {
      try {
        yield* sleep(1000);
        return 'late';
      } catch (e) {
        innerCancelled = e instanceof CancelledError;
        throw e;
      }
    }
    function* main(): Coroutine<string> {
      const quick = yield* waitFor(sleep(1, 'quick'), 500);
      try {
        yield* waitFor(slow(), 20);
      } catch (e) {
        if (e instanceof TimeoutError) return `${quick}+timeout`;
        throw e;
      }
      return 'no';
    }
    expect(loop.runUntilComplete(main())).toBe('quick+timeout');
    expect(innerCancelled).toBe(true);
  });

  it('waitFor(null) waits without limit; cancelling waitFor cancels the inner one', () => {
    const loop = testLoop(backend);
    function* main(): Coroutine<string> {
      return yield* waitFor(sleep(5, 'x'), null);
    }
    expect(loop.runUntilComplete(main())).toBe('x');
    const inner = loop.createFuture<void>();
    function* outer(): Coroutine<void> {
      const w = waitFor(inner, 1000);
      loop.callLater(5, () => w.cancel());
      yield* w;
    }
    expect(() => loop.runUntilComplete(outer())).toThrow(CancelledError);
    expect(inner.cancelled()).toBe(true);
  });
});
