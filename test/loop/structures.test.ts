import { describe, expect, it } from 'vitest';

import { type Callback, type HandleOwner, TimerHandle } from '../../src/loop/handle.js';
import { RingQueue } from '../../src/loop/ready-queue.js';
import { TimerHeap } from '../../src/loop/timer-heap.js';

const owner: HandleOwner = { callExceptionHandler: () => {}, timerCancelled: () => {} };
const noop: Callback = () => {};

describe('RingQueue', () => {
  it('is FIFO across growth and wrap-around', () => {
    const q = new RingQueue<number>();
    let next = 0;
    let expected = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 37; i++) q.push(next++);
      for (let i = 0; i < 30; i++) expect(q.shift()).toBe(expected++);
    }
    expect(q.length).toBe(next - expected);
    while (q.length > 0) expect(q.shift()).toBe(expected++);
    expect(q.shift()).toBeUndefined();
    q.push(1);
    q.clear();
    expect(q.length).toBe(0);
  });
});

describe('TimerHeap', () => {
  function timer(when: number, seq: number): TimerHandle {
    return new TimerHandle(when, seq, noop, [], owner);
  }

  it('pops by time, and in scheduling order for equal times', () => {
    const heap = new TimerHeap();
    const timers = [timer(5, 0), timer(1, 1), timer(5, 2), timer(3, 3), timer(1, 4), timer(5, 5)];
    for (const t of [...timers].reverse()) heap.push(t);
    const order: number[] = [];
    for (let t = heap.pop(); t !== undefined; t = heap.pop()) order.push(t.seq);
    expect(order).toEqual([1, 4, 3, 0, 2, 5]);
  });

  it('sorts 10,000 random timers', () => {
    const heap = new TimerHeap();
    for (let i = 0; i < 10_000; i++) heap.push(timer(Math.floor(Math.random() * 1000), i));
    let last = timer(-1, -1);
    for (let t = heap.pop(); t !== undefined; t = heap.pop()) {
      expect(t.when > last.when || (t.when === last.when && t.seq > last.seq)).toBe(true);
      last = t;
    }
  });

  it('drops cancelled timers lazily, and compacts past 100 timers with more than half cancelled', () => {
    const heap = new TimerHeap();
    const timers = Array.from({ length: 300 }, (_, i) => timer(i, i));
    for (const t of timers) heap.push(t);
    for (const t of timers.slice(0, 100)) {
      t.cancel();
      heap.noteCancelled(t);
    }
    heap.purge(); // not over half: only the cancelled top goes
    expect(heap.size).toBe(200);
    expect(heap.cancelledCount).toBe(0);
    for (const t of timers.slice(150, 300)) {
      t.cancel();
      heap.noteCancelled(t);
    }
    expect(heap.cancelledCount).toBe(150);
    heap.purge();
    expect(heap.size).toBe(50);
    expect(heap.cancelledCount).toBe(0);
    expect(heap.peek()?.seq).toBe(100);
    // A timer cancelled after it left the heap does not count.
    const popped = heap.pop() as TimerHandle;
    popped.cancel();
    heap.noteCancelled(popped);
    expect(heap.cancelledCount).toBe(0);
  });
});
