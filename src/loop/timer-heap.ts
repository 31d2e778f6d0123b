/**
 * Timers in a binary min-heap ordered by (when, seq): the earliest first,
 * and timers due at the same time in the order they were scheduled.
 * Cancellation is lazy: a cancelled timer stays until it reaches the top or
 * the heap is compacted (more than 100 timers and more than half cancelled).
 *
 * @module
 */
import type { TimerHandle } from './handle.js';

const COMPACT_MIN = 100;

function before(a: TimerHandle, b: TimerHandle): boolean {
  return a.when < b.when || (a.when === b.when && a.seq < b.seq);
}

export class TimerHeap {
  #heap: TimerHandle[] = [];
  #cancelled = 0;

  /** Timers in the heap, cancelled ones included. */
  get size(): number {
    return this.#heap.length;
  }

  push(timer: TimerHandle): void {
    const heap = this.#heap;
    timer.scheduled = true;
    heap.push(timer);
    this.#siftUp(heap.length - 1);
  }

  /** The earliest timer (maybe cancelled), without removing it. */
  peek(): TimerHandle | undefined {
    return this.#heap[0];
  }

  pop(): TimerHandle | undefined {
    const heap = this.#heap;
    const top = heap[0];
    if (top === undefined) return undefined;
    const last = heap.pop() as TimerHandle;
    if (heap.length > 0) {
      heap[0] = last;
      this.#siftDown(0);
    }
    top.scheduled = false;
    if (top.cancelled()) this.#cancelled--;
    return top;
  }

  /** Counts a timer cancelled while in the heap (ignored once it left). */
  noteCancelled(timer: TimerHandle): void {
    if (timer.scheduled) this.#cancelled++;
  }

  /** How many cancelled timers are still in the heap. */
  get cancelledCount(): number {
    return this.#cancelled;
  }

  /**
   * Drops cancelled timers: all of them when compaction pays (more than 100
   * timers, more than half cancelled), else just those at the top.
   */
  purge(): void {
    const heap = this.#heap;
    if (heap.length > COMPACT_MIN && this.#cancelled * 2 > heap.length) {
      this.#heap = heap.filter((t) => {
        if (t.cancelled()) t.scheduled = false;
        return !t.cancelled();
      });
      this.#cancelled = 0;
      for (let i = (this.#heap.length >> 1) - 1; i >= 0; i--) this.#siftDown(i);
      return;
    }
    while (heap.length > 0 && (heap[0] as TimerHandle).cancelled()) this.pop();
  }

  clear(): void {
    for (const t of this.#heap) t.scheduled = false;
    this.#heap = [];
    this.#cancelled = 0;
  }

  #siftUp(index: number): void {
    const heap = this.#heap;
    const item = heap[index] as TimerHandle;
    let i = index;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent] as TimerHandle;
      if (!before(item, p)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = item;
  }

  #siftDown(index: number): void {
    const heap = this.#heap;
    const n = heap.length;
    const item = heap[index] as TimerHandle;
    let i = index;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      let child = left;
      if (right < n && before(heap[right] as TimerHandle, heap[left] as TimerHandle)) child = right;
      const c = heap[child] as TimerHandle;
      if (!before(c, item)) break;
      heap[i] = c;
      i = child;
    }
    heap[i] = item;
  }
}
