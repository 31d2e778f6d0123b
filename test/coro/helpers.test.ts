import { describe, expect, it } from 'vitest';

import {
  CancelledError,
  type Coroutine,
  gather,
  getRunningLoop,
  sleep,
  TimeoutError,
  waitFor,
  withTimeout,
} from '../../src/coro/index.js';
import { testSocketpair } from '../helpers/fds.js';
import { BACKENDS, testLoop } from '../helpers/loops.js';
import { watchdog } from '../helpers/watchdog.js';

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

  it('getRunningLoop is typed as the EventLoop: its socket operations need no cast', () => {
    const loop = testLoop(backend);
    const [a, b] = testSocketpair();
    b.setBlocking(false);
    function* main(): Coroutine<string> {
      a.send('typed');
      const data: Buffer = yield* getRunningLoop().sockRecv(b, 16);
      return data.toString();
    }
    expect(loop.runUntilComplete(main())).toBe('typed');
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

  it('withTimeout: the result in time; else TimeoutError at the yield, finally run, the wait given up', () => {
    const loop = testLoop(backend);
    // A timeout that never fired would leave the receive waiting forever:
    // the watchdog (10 s) then stops the loop and runUntilComplete throws.
    loop.addReader(watchdog(), () => loop.stop());
    const [a, b] = testSocketpair();
    a.setBlocking(false);
    const steps: string[] = [];
    function* slow(): Coroutine<number> {
      try {
        return yield* loop.sockRecvInto(a, Buffer.alloc(16));
      } finally {
        steps.push('finally');
      }
    }
    function* main(): Coroutine<string[]> {
      const fast = yield* withTimeout(sleep(5, 'fast'), 1000);
      let caught = '';
      const t0 = loop.time();
      try {
        yield* withTimeout(slow(), 30);
      } catch (e) {
        caught = e instanceof TimeoutError ? `TimeoutError: ${e.message}` : String(e);
      }
      const took = loop.time() - t0;
      // The task goes on; the receive was cancelled, so new data is not taken by it.
      b.send('late');
      const n = yield* withTimeout(loop.sockRecvInto(a, Buffer.alloc(16)), 1000);
      // Not before its deadline, on the loop's own clock (the timer fires
      // once loop.time() reaches it); no upper bound: how late is load.
      return [fast, caught, String(took >= 30), String(n), ...steps];
    }
    expect(loop.runUntilComplete(main())).toEqual([
      'fast',
      'TimeoutError: timed out after 30 ms',
      'true',
      '4',
      'finally',
    ]);
  });

  it('withTimeout nests: the inner deadline, then the outer; null waits without limit; outside a Task it uses waitFor', () => {
    const loop = testLoop(backend);
    function* main(): Coroutine<string[]> {
      const out: string[] = [];
      try {
        yield* withTimeout(withTimeout(sleep(1000), 20), 500);
      } catch (e) {
        out.push(`inner ${e instanceof TimeoutError}`);
      }
      try {
        yield* withTimeout(withTimeout(sleep(1000), 500), 20);
      } catch (e) {
        out.push(`outer ${e instanceof TimeoutError}`);
      }
      out.push(yield* withTimeout(sleep(5, 'no limit'), null));
      return out;
    }
    expect(loop.runUntilComplete(main())).toEqual(['inner true', 'outer true', 'no limit']);
    // A coroutine stepped by hand has no current Task: withTimeout wraps it in waitFor's.
    const loop2 = testLoop(backend);
    const outer = loop2.createFuture<string>();
    loop2.callSoon(() => {
      const gen = withTimeout(sleep(5, 'by waitFor'), 1000);
      const first = gen.next();
      expect(first.done).toBe(false);
      (first.value as ReturnType<typeof sleep>).addDoneCallback(() => outer.setResult(gen.next().value as string));
    });
    expect(loop2.runUntilComplete(outer)).toBe('by waitFor');
  });
});
