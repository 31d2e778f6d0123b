/**
 * A loop's counters, always on: two clock reads an iteration (before its
 * wait, after its callbacks) beside the one it takes anyway after the wait,
 * and a few additions. What one callback costs is measured only when the
 * callbacks are timed one by one (debug mode, or a trace attached).
 *
 * @module
 */

/** What {@link EventLoop.stats} returns: the loop's counters since it was made (or reset). */
export interface LoopStats {
  /** Iterations run (each: one wait in the selector, then the callbacks due). */
  iterations: number;
  /** Milliseconds spent in the selector's waits (select, poll, epoll_wait, io_uring_enter). */
  waitMs: number;
  /** Milliseconds spent after the waits: queueing due timers and running callbacks and Task steps. */
  runMs: number;
  /**
   * Cooperative mode (`loop.run`): milliseconds the loop slept in Node's
   * event loop (libuv) waiting for its fds or timers -- where an owning
   * loop blocks in its selector instead. 0 in owning mode.
   */
  idleMs: number;
  /** Callbacks, Task steps and done-callback batches run. */
  callbacks: number;
  /** Ready fds the waits returned, in all (on io_uring: its readiness polls; completed socket operations are not counted). */
  events: number;
  /** events / iterations (0 before the first). */
  eventsPerWait: number;
  /** The most events one wait returned. */
  maxEventsPerWait: number;
  /** Timers scheduled and not yet due (cancelled ones left out). */
  timers: number;
  /** Callbacks queued for the next iteration. */
  ready: number;
  /** Files the selector watches. */
  fds: number;
  /** Iterations whose callbacks together ran `slowCallbackMs` or longer: the loop answered no I/O meanwhile. */
  slowIterations: number;
  /** The longest run of one iteration's callbacks, ms. */
  longestRunMs: number;
  /**
   * Single callbacks that ran `slowCallbackMs` or longer -- counted only
   * while callbacks are timed one by one (debug mode, or a trace
   * attached), else null.
   */
  slowCallbacks: number | null;
  /** The threshold of the two counts above, ms (the loop's `slowCallbackMs` option). */
  slowCallbackMs: number;
}

/** What the meter cannot count itself: read from the loop when asked. */
export interface LoopGauges {
  timers: number;
  ready: number;
  fds: number;
  timedOneByOne: boolean;
}

/** The loop's counters. */
export class LoopMeter {
  iterations = 0;
  waitMs = 0;
  runMs = 0;
  idleMs = 0;
  callbacks = 0;
  events = 0;
  maxEvents = 0;
  slowIterations = 0;
  longestRunMs = 0;
  slowCallbacks = 0;
  readonly slowMs: number;

  constructor(slowMs: number) {
    this.slowMs = slowMs;
  }

  /** One wait: begun at `t0`, ended at `t1`, `n` events. */
  waited(t0: number, t1: number, n: number): void {
    this.iterations++;
    this.waitMs += t1 - t0;
    this.events += n;
    if (n > this.maxEvents) this.maxEvents = n;
  }

  /** The callbacks after a wait: `ran` of them, from `t1` to `t2`. */
  ran(t1: number, t2: number, ran: number): void {
    const took = t2 - t1;
    this.runMs += took;
    this.callbacks += ran;
    if (took >= this.slowMs) this.slowIterations++;
    if (took > this.longestRunMs) this.longestRunMs = took;
  }

  /** A snapshot. */
  snapshot(gauges: LoopGauges): LoopStats {
    return {
      iterations: this.iterations,
      waitMs: this.waitMs,
      runMs: this.runMs,
      idleMs: this.idleMs,
      callbacks: this.callbacks,
      events: this.events,
      eventsPerWait: this.iterations === 0 ? 0 : this.events / this.iterations,
      maxEventsPerWait: this.maxEvents,
      timers: gauges.timers,
      ready: gauges.ready,
      fds: gauges.fds,
      slowIterations: this.slowIterations,
      longestRunMs: this.longestRunMs,
      slowCallbacks: gauges.timedOneByOne ? this.slowCallbacks : null,
      slowCallbackMs: this.slowMs,
    };
  }

  /** Back to zero. */
  reset(): void {
    this.iterations = 0;
    this.waitMs = 0;
    this.runMs = 0;
    this.idleMs = 0;
    this.callbacks = 0;
    this.events = 0;
    this.maxEvents = 0;
    this.slowIterations = 0;
    this.longestRunMs = 0;
    this.slowCallbacks = 0;
  }
}
