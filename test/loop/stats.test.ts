import { describe, expect, it } from 'vitest';

import { type Coroutine, sleep } from '../../src/coro/index.js';
import { LoopTrace } from '../../src/loop/index.js';
import { write } from '../../src/sys/index.js';
import { testEventfd, testSocketpair } from '../helpers/fds.js';
import { BACKENDS, testLoop } from '../helpers/loops.js';

function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // the loop answers nothing meanwhile: what a slow callback is
  }
}

function* nap(ms: number): Coroutine<void> {
  yield* sleep(ms);
}

describe.each(BACKENDS)('loop.stats() on %s', (backend) => {
  it('starts at zero, with the threshold of slow callbacks', () => {
    const loop = testLoop(backend, { slowCallbackMs: 25 });
    expect(loop.stats()).toEqual({
      iterations: 0,
      waitMs: 0,
      runMs: 0,
      idleMs: 0,
      callbacks: 0,
      events: 0,
      eventsPerWait: 0,
      maxEventsPerWait: 0,
      timers: 0,
      ready: 0,
      fds: 0,
      slowIterations: 0,
      longestRunMs: 0,
      slowCallbacks: null,
      slowCallbackMs: 25,
    });
  });

  it('splits the time between waiting in the selector and running callbacks', () => {
    const loop = testLoop(backend);
    function* main(): Coroutine<void> {
      yield* sleep(40);
      busy(20);
    }
    const t0 = performance.now();
    loop.runUntilComplete(main());
    const wall = performance.now() - t0;
    const s = loop.stats();
    expect(s.iterations).toBe(loop.iterations);
    expect(s.iterations).toBeGreaterThanOrEqual(2);
    // The sleep is spent blocked in the selector, the busy loop running a callback.
    expect(s.waitMs).toBeGreaterThanOrEqual(35);
    expect(s.runMs).toBeGreaterThanOrEqual(20);
    expect(s.waitMs + s.runMs).toBeLessThanOrEqual(wall);
    expect(s.callbacks).toBeGreaterThanOrEqual(2);
    expect(s.longestRunMs).toBeGreaterThanOrEqual(20);
  });

  it('counts the ready events of each wait', () => {
    const loop = testLoop(backend);
    const fds = [testEventfd(1), testEventfd(1), testEventfd(1)];
    let seen = 0;
    for (const fd of fds) {
      loop.addReader(fd, () => {
        seen++;
        loop.removeReader(fd);
        if (seen === fds.length) loop.stop();
      });
    }
    loop.runForever();
    const s = loop.stats();
    expect(s.events).toBe(3);
    expect(s.maxEventsPerWait).toBe(3);
    expect(s.eventsPerWait).toBeCloseTo(3 / s.iterations, 10);
  });

  it('reads what is pending: timers (cancelled ones left out), queued callbacks, watched fds', () => {
    const loop = testLoop(backend);
    const [a] = testSocketpair();
    loop.callLater(10_000, () => {});
    loop.callLater(10_000, () => {}).cancel();
    loop.callSoon(() => {});
    loop.callSoon(() => {});
    loop.addReader(a, () => {});
    const s = loop.stats();
    expect(s.timers).toBe(1);
    expect(s.ready).toBe(2);
    expect(s.fds).toBe(1);
    loop.close();
    expect(loop.stats().fds).toBe(0);
  });

  it('counts slow iterations always, single slow callbacks only when they are timed one by one', () => {
    const loop = testLoop(backend, { slowCallbackMs: 15 });
    // Three quick callbacks that add up to a slow iteration, then one slow callback.
    for (let i = 0; i < 3; i++) loop.callSoon(busy, 7);
    loop.callSoon(() => loop.callSoon(() => loop.stop()));
    loop.runForever();
    let s = loop.stats();
    // At least that one (a loaded machine may stall another iteration too).
    expect(s.slowIterations).toBeGreaterThanOrEqual(1);
    expect(s.slowCallbacks).toBeNull();

    const logged: string[] = [];
    const debugLoop = testLoop(backend, { slowCallbackMs: 15, debug: true, logger: (m) => logged.push(m) });
    for (let i = 0; i < 3; i++) debugLoop.callSoon(busy, 7);
    debugLoop.callSoon(busy, 20);
    debugLoop.callSoon(() => debugLoop.stop());
    debugLoop.runForever();
    s = debugLoop.stats();
    expect(s.slowIterations).toBeGreaterThanOrEqual(1);
    expect(s.slowCallbacks).toBeGreaterThanOrEqual(1);
    expect(logged.length).toBe(s.slowCallbacks);
    expect(logged.some((m) => /^Executing busy took (1[5-9]|[2-9]\d|\d{3,})\.\d ms \(slow callback\)$/.test(m))).toBe(
      true,
    );
  });

  it('resetStats() zeroes the counters; the pending gauges stay true', () => {
    const loop = testLoop(backend);
    loop.runUntilComplete(nap(5));
    loop.callLater(10_000, () => {});
    expect(loop.stats().iterations).toBeGreaterThan(0);
    loop.resetStats();
    const s = loop.stats();
    expect(s.iterations).toBe(0);
    expect(s.waitMs).toBe(0);
    expect(s.runMs).toBe(0);
    expect(s.callbacks).toBe(0);
    expect(s.longestRunMs).toBe(0);
    expect(s.timers).toBe(1);
  });

  it('counts in cooperative mode too', async () => {
    const loop = testLoop(backend);
    const [a, b] = testSocketpair();
    await loop.run(async () => {
      const received = loop.sockRecv(a, 10);
      await sleep(50);
      write(b.fileno(), Buffer.from('x'));
      expect((await received).toString()).toBe('x');
    });
    const s = loop.stats();
    expect(s.iterations).toBeGreaterThan(0);
    expect(s.callbacks).toBeGreaterThan(0);
    // The 50 ms sleep was spent asleep in Node's event loop, not in the
    // selector: most of it, however slow the ticks around it are (a
    // sanitized build on a loaded machine took 2 ms of a 5 ms sleep).
    expect(s.idleMs).toBeGreaterThanOrEqual(25);
    expect(s.waitMs).toBeLessThan(s.idleMs);
  });

  it('returns a snapshot: a later iteration does not change it', () => {
    const loop = testLoop(backend);
    const before = loop.stats();
    loop.runUntilComplete(nap(1));
    expect(before.iterations).toBe(0);
    expect(loop.stats().iterations).toBeGreaterThan(0);
  });
});

it('cooperative: the time asleep in Node waiting for an awaited Node timer is idle (and traced)', async () => {
  const loop = testLoop('epoll');
  const trace = new LoopTrace({ capacity: 1024 });
  loop.setTrace(trace);
  const t0 = performance.now();
  await loop.run(async () => {
    await new Promise((resolve) => setTimeout(resolve, 100));
  });
  expect(performance.now() - t0).toBeGreaterThanOrEqual(95);
  expect(loop.stats().idleMs).toBeGreaterThanOrEqual(80);
  expect(trace.events().some((e) => e.kind === 'idle' && e.dur >= 80)).toBe(true);
});
