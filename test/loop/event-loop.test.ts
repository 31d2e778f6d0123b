import { describe, expect, it, onTestFinished } from 'vitest';

import { CancelledError, type Coroutine, sleep } from '../../src/coro/index.js';
import { EventLoop, type Handle } from '../../src/loop/index.js';
import { EpollSelector, EVENT_WRITE, PollSelector, SelectSelector, UringSelector } from '../../src/selectors/index.js';
import { close, eventfd, Socket } from '../../src/sys/index.js';
import { signalEventfd, testSocketpair } from '../helpers/fds.js';
import { BACKENDS, testLoop } from '../helpers/loops.js';
import { watchdog } from '../helpers/watchdog.js';

/** A coroutine that sleeps `ms` on the loop that runs it. */
function* pause(ms: number): Coroutine<void> {
  yield* sleep(ms);
}

describe.each(BACKENDS)('EventLoop on %s', (backend) => {
  describe('callbacks', () => {
    it('callSoon runs callbacks in order, with their arguments', () => {
      const loop = testLoop(backend);
      const order: unknown[] = [];
      loop.callSoon((a: number, b: string) => order.push([a, b]), 1, 'x');
      loop.callSoon(() => order.push('second'));
      loop.callSoon(() => loop.stop());
      loop.runForever();
      expect(order).toEqual([[1, 'x'], 'second']);
    });

    it('a callback scheduled by a callback runs in the next iteration, after the ones already queued', () => {
      const loop = testLoop(backend);
      const order: string[] = [];
      loop.callSoon(() => {
        order.push('a');
        loop.callSoon(() => order.push('c'));
      });
      loop.callSoon(() => order.push('b'));
      loop.callSoon(() => loop.callSoon(() => loop.stop()));
      loop.runForever();
      expect(order).toEqual(['a', 'b', 'c']);
    });

    it('a cancelled handle never runs', () => {
      const loop = testLoop(backend);
      const ran: string[] = [];
      const h = loop.callSoon(() => ran.push('no'));
      h.cancel();
      h.cancel();
      expect(h.cancelled()).toBe(true);
      loop.callSoon(() => loop.stop());
      loop.runForever();
      expect(ran).toEqual([]);
    });

    it('bad arguments: TypeError / RangeError, nothing scheduled', () => {
      const loop = testLoop(backend);
      expect(() => loop.callSoon('x' as unknown as () => void)).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
      );
      expect(() => loop.callLater(Number.NaN, () => {})).toThrow(RangeError);
      expect(() => loop.callLater('5' as unknown as number, () => {})).toThrow(TypeError);
      expect(() => loop.callAt(1, null as unknown as () => void)).toThrow(TypeError);
      expect(() => new EventLoop({ selector: 'kqueue' as 'epoll' })).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
      );
    });

    it('a selector instance must come empty: one with keys is refused and left as it was', () => {
      const [a] = testSocketpair();
      const selectors = { select: SelectSelector, poll: PollSelector, epoll: EpollSelector, io_uring: UringSelector };
      using sel = new selectors[backend]();
      sel.register(a, EVENT_WRITE, "not the loop's");
      expect(() => new EventLoop({ selector: sel })).toThrow(
        expect.objectContaining({
          name: 'TypeError',
          code: 'ERR_INVALID_ARG_VALUE',
          message: expect.stringMatching(/empty selector.*1 key$/),
        }),
      );
      expect(sel.getKey(a).data).toBe("not the loop's");
      expect(sel.select(0).map(([key]) => key.data)).toEqual(["not the loop's"]);
      // Emptied, the same selector serves a loop.
      sel.unregister(a);
      const loop = new EventLoop({ selector: sel });
      loop.callSoon(() => loop.stop());
      loop.runForever();
      expect(loop.selector).toBe(sel);
    });
  });

  describe('timers', () => {
    it('fire in time order, no earlier than asked', () => {
      const loop = testLoop(backend);
      const order: [string, number][] = [];
      const t0 = loop.time();
      loop.callLater(30, () => order.push(['30', loop.time() - t0]));
      loop.callLater(10, () => order.push(['10', loop.time() - t0]));
      loop.callLater(20, () => order.push(['20', loop.time() - t0]));
      loop.callLater(40, () => loop.stop());
      loop.runForever();
      expect(order.map(([n]) => n)).toEqual(['10', '20', '30']);
      for (const [name, at] of order) expect(at).toBeGreaterThanOrEqual(Number(name));
    });

    it('timers due at the same time run in the order scheduled (FIFO ties)', () => {
      const loop = testLoop(backend);
      const when = loop.time() + 5;
      const order: number[] = [];
      for (let i = 0; i < 20; i++) loop.callAt(when, () => order.push(i));
      loop.callAt(when + 1, () => loop.stop());
      loop.runForever();
      expect(order).toEqual(Array.from({ length: 20 }, (_, i) => i));
    });

    it('a cancelled timer never fires; 1,000 timers with most cancelled still run right', () => {
      const loop = testLoop(backend);
      const fired: number[] = [];
      const handles: Handle[] = [];
      for (let i = 0; i < 1000; i++) handles.push(loop.callLater(i % 10, () => fired.push(i)));
      handles.forEach((h, i) => {
        if (i % 10 !== 0) h.cancel();
      });
      loop.callLater(20, () => loop.stop());
      loop.runForever();
      expect(fired.sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i * 10));
    });

    it('a timer wakes a loop blocked in the selector', () => {
      const loop = testLoop(backend);
      // A loop that did not wake for its timer would be woken by the watchdog
      // (10 s) instead: which callback stopped it tells, whatever the load.
      const stoppedBy: string[] = [];
      loop.addReader(watchdog(), () => {
        stoppedBy.push('watchdog');
        loop.stop();
      });
      const t0 = loop.time();
      let firedAt = 0;
      loop.callLater(50, () => {
        stoppedBy.push('timer');
        firedAt = loop.time();
        loop.stop();
      });
      const before = loop.iterations;
      loop.runForever();
      expect(stoppedBy).toEqual(['timer']);
      // Never early, on the loop's own clock.
      expect(firedAt - t0).toBeGreaterThanOrEqual(50);
      // Blocked, not polling until the timer was due: a handful of
      // iterations (a wait can end a rounding short of the deadline).
      expect(loop.iterations - before).toBeLessThan(10);
    });
  });

  describe('readers and writers', () => {
    it('addReader calls back while readable; removeReader stops it', () => {
      const loop = testLoop(backend);
      const [a, b] = testSocketpair();
      const got: string[] = [];
      loop.addReader(b, () => {
        const data = b.recv(100).toString();
        got.push(data);
        if (got.length === 2) {
          expect(loop.removeReader(b)).toBe(true);
          loop.stop();
        } else {
          a.send('two');
        }
      });
      a.send('one');
      loop.runForever();
      expect(got).toEqual(['one', 'two']);
      expect(loop.removeReader(b)).toBe(false);
    });

    it('one reader and one writer on the same fd; a new reader replaces the old', () => {
      const loop = testLoop(backend);
      const [a, b] = testSocketpair();
      const calls: string[] = [];
      loop.addReader(b, () => calls.push('old reader'));
      loop.addReader(b, () => {
        calls.push('reader');
        b.recv(10);
        loop.removeReader(b);
      });
      loop.addWriter(b, () => {
        calls.push('writer');
        loop.removeWriter(b);
      });
      a.send('x');
      loop.callLater(20, () => loop.stop());
      loop.runForever();
      expect(calls.sort()).toEqual(['reader', 'writer']);
      expect(loop.removeWriter(b)).toBe(false);
    });

    it('removing and re-adding a reader between iterations keeps working', () => {
      const loop = testLoop(backend);
      const [a, b] = testSocketpair();
      let count = 0;
      const onReadable = (): void => {
        b.recv(10);
        count++;
        loop.removeReader(b);
        if (count === 100) {
          loop.stop();
          return;
        }
        loop.callSoon(() => {
          loop.addReader(b, onReadable);
          a.send('x');
        });
      };
      loop.addReader(b, onReadable);
      a.send('x');
      loop.runForever();
      expect(count).toBe(100);
    });

    it('a reader removed before the wait is not called even if the fd is ready', () => {
      const loop = testLoop(backend);
      const efd = eventfd(1);
      const calls: string[] = [];
      loop.addReader(efd, () => calls.push('reader'));
      loop.callSoon(() => loop.removeReader(efd));
      loop.callLater(20, () => loop.stop());
      loop.runForever();
      close(efd);
      // The reader was queued in the same iteration as the removal, behind
      // it: a removed reader's queued run is skipped, never called.
      expect(calls).toEqual([]);
    });

    it('an fd closed while watched and replaced by another file: the new one is watched', () => {
      const loop = testLoop(backend);
      const [a, b] = testSocketpair();
      loop.addReader(b, () => {});
      b.close();
      const [c, d] = testSocketpair();
      const seen: string[] = [];
      loop.addReader(d, () => {
        seen.push(d.recv(10).toString());
        loop.stop();
      });
      c.send('new');
      loop.runForever();
      expect(seen).toEqual(['new']);
      void a;
    });

    it('a watched fd closed while a dup keeps its file open, its number reused: the new file gets no callbacks for the old, nothing spins', () => {
      const loop = testLoop(backend);
      const [a, peer] = testSocketpair();
      const keep = Socket.fromFd(a.fileno());
      onTestFinished(() => keep.close());
      loop.addReader(a, () => {});
      peer.send('x'); // the old file stays readable: nobody reads it
      loop.runUntilComplete(pause(0));
      const fd = a.fileno();
      a.close();
      const [c] = testSocketpair();
      expect(c.fileno()).toBe(fd);
      let runs = 0;
      loop.addReader(c, () => {
        runs++;
      });
      loop.runUntilComplete(pause(30));
      expect(runs).toBe(0);
      loop.removeReader(c);
      const before = loop.iterations;
      loop.runUntilComplete(pause(30));
      // Woken by the timer and little else: on epoll the stale registration
      // woke it on every wait, some 60,000 times a second.
      expect(loop.iterations - before).toBeLessThan(10);
    });

    it('an fd closed behind the loop (no dup) while watched: its reader runs at most once, nothing spins', () => {
      const loop = testLoop(backend);
      const efd = eventfd(1);
      let runs = 0;
      loop.addReader(efd, () => {
        runs++;
      });
      loop.runUntilComplete(pause(0));
      close(efd);
      runs = 0;
      const before = loop.iterations;
      loop.runUntilComplete(pause(30));
      // poll reported POLLNVAL on every wait, some 400,000 times a second.
      expect(runs).toBeLessThanOrEqual(1);
      expect(loop.iterations - before).toBeLessThan(10);
      loop.removeReader(efd);
    });

    it('a closed fd whose interest changes is dropped and reported, and the loop goes on', () => {
      const reports: string[] = [];
      const loop = testLoop(backend);
      loop.setExceptionHandler((_l, ctx) => reports.push(ctx.message));
      const [, b] = testSocketpair();
      loop.addReader(b, () => {});
      loop.addWriter(b, () => {
        b.close();
        loop.removeWriter(b);
      });
      loop.callLater(30, () => loop.stop());
      loop.runForever();
      expect(loop.isRunning()).toBe(false);
      if (backend === 'poll') expect(reports).toEqual([]);
      else expect(reports.every((m) => /closed while watched/.test(m))).toBe(true);
    });
  });

  describe('running and stopping', () => {
    it('runUntilComplete returns the result or throws the exception', () => {
      const loop = testLoop(backend);
      function* ok(): Coroutine<number> {
        yield* sleep(1);
        return 42;
      }
      function* fails(): Coroutine<never> {
        yield* sleep(1);
        throw new Error('boom');
      }
      expect(loop.runUntilComplete(ok())).toBe(42);
      expect(() => loop.runUntilComplete(fails())).toThrow('boom');
      const fut = loop.createFuture<string>();
      loop.callLater(5, () => fut.setResult('later'));
      expect(loop.runUntilComplete(fut)).toBe('later');
      const cancelled = loop.createFuture();
      loop.callSoon(() => cancelled.cancel());
      expect(() => loop.runUntilComplete(cancelled)).toThrow(CancelledError);
    });

    it('isRunning, no re-entry, no second loop, no close while running', () => {
      const loop = testLoop(backend);
      const other = testLoop(backend);
      const seen: unknown[] = [];
      loop.callSoon(() => {
        seen.push(loop.isRunning());
        for (const f of [() => loop.runForever(), () => other.runForever(), () => loop.close()]) {
          try {
            f();
          } catch (e) {
            seen.push((e as { code: string }).code);
          }
        }
        loop.stop();
      });
      loop.runForever();
      expect(seen).toEqual([true, 'ERR_LOOP_RUNNING', 'ERR_LOOP_RUNNING', 'ERR_LOOP_RUNNING']);
      expect(loop.isRunning()).toBe(false);
    });

    it('runUntilComplete throws when stopped before the future is done', () => {
      const loop = testLoop(backend);
      loop.callSoon(() => loop.stop());
      expect(() => loop.runUntilComplete(loop.createFuture())).toThrow(
        expect.objectContaining({
          name: 'LoopStateError',
          code: 'ERR_LOOP_STOPPED',
          message: expect.stringMatching(/stopped before the Future completed/),
        }),
      );
    });

    it('a closed loop refuses work; close() is idempotent', () => {
      const loop = new EventLoop({ backend });
      loop.close();
      loop.close();
      expect(loop.isClosed()).toBe(true);
      expect(loop.selector.closed).toBe(true);
      for (const f of [() => loop.callSoon(() => {}), () => loop.runForever(), () => loop.createFuture()]) {
        expect(f).toThrow(expect.objectContaining({ code: 'ERR_LOOP_CLOSED' }));
      }
      expect(loop.removeReader(0)).toBe(false);
    });
  });

  describe('exceptions and debug', () => {
    it('a throwing callback is reported and the loop goes on', () => {
      const loop = testLoop(backend);
      const reports: [string, unknown][] = [];
      loop.setExceptionHandler((l, ctx) => {
        expect(l).toBe(loop);
        reports.push([ctx.message, ctx.exception]);
      });
      const boom = new Error('boom');
      loop.callSoon(function thrower() {
        throw boom;
      });
      let after = false;
      loop.callSoon(() => {
        after = true;
        loop.stop();
      });
      loop.runForever();
      expect(after).toBe(true);
      expect(reports).toEqual([['Exception in callback thrower', boom]]);
    });

    it('without a handler, the default one logs the message and stack', () => {
      const lines: string[] = [];
      const loop = testLoop(backend, { logger: (m) => lines.push(m) });
      loop.callSoon(() => {
        throw new Error('logged');
      });
      loop.callSoon(() => loop.stop());
      loop.runForever();
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/Exception in callback <anonymous>\nError: logged/);
    });

    it('a throwing exception handler falls back to the default one', () => {
      const lines: string[] = [];
      const loop = testLoop(backend, { logger: (m) => lines.push(m) });
      loop.setExceptionHandler(() => {
        throw new Error('handler broke');
      });
      loop.callSoon(() => {
        throw new Error('original');
      });
      loop.callSoon(() => loop.stop());
      loop.runForever();
      expect(lines.join('\n')).toMatch(/Unhandled error in exception handler[\s\S]*handler broke[\s\S]*original/);
      loop.setExceptionHandler(null);
      expect(loop.getExceptionHandler()).toBeNull();
    });

    it('debug mode warns about callbacks slower than slowCallbackMs', () => {
      const lines: string[] = [];
      const loop = testLoop(backend, { debug: true, slowCallbackMs: 20, logger: (m) => lines.push(m) });
      expect(loop.debug).toBe(true);
      // The loop times callbacks on its own clock: a test clock that only
      // slowOne moves makes "slow" exact, where a busy wait made any callback
      // preempted for 20 ms on a loaded machine "slow" too (as asyncio's
      // tests patch loop.time).
      let now = 1000;
      loop.time = () => now;
      loop.callSoon(function slowOne() {
        now += 30;
      });
      loop.callSoon(function fastOne() {});
      loop.callSoon(() => loop.stop());
      loop.runForever();
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^Executing slowOne took \d+\.\d ms \(slow callback\)$/);
    });
  });

  it('an eventfd signalled from outside wakes the loop through addReader', () => {
    const loop = testLoop(backend);
    const efd = eventfd(0);
    let woke = false;
    loop.addReader(efd, () => {
      woke = true;
      loop.removeReader(efd);
      loop.stop();
    });
    loop.callLater(10, () => signalEventfd(efd));
    loop.runForever();
    close(efd);
    expect(woke).toBe(true);
  });
});
