/**
 * What a loop knows of itself: its counters, always on -- two clock reads
 * an iteration (before its wait, after its callbacks) beside the one it
 * takes anyway after the wait, and a few additions -- and, once a trace is
 * attached, the record of every wait, callback and socket operation. What
 * one callback costs is measured only when the callbacks are timed one by
 * one (debug mode, or a trace attached).
 *
 * @module
 */
import type { Future } from '../coro/index.js';
import { RUN, type Runnable } from '../coro/types.js';
import type { RingQueue } from './ready-queue.js';
import type { LoopTrace, TraceOp } from './trace.js';
import { callKind, traceCall, traceOp } from './trace-ops.js';

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
}

/** @internal The loop's counters, and its trace when one is attached. */
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
  /** The trace attached (setTrace), and the loop's lane in it. */
  trace: LoopTrace | null = null;
  lane = 0;
  /** Callbacks are timed one by one: in debug mode, or while traced. */
  timed: boolean;
  readonly #debug: boolean;
  readonly #logSlow: (item: Runnable, took: number) => void;
  // While a timed callback runs: when it began (else NaN).
  #clock = Number.NaN;
  // The lane this loop had in each trace it was attached to: attached again, it goes back to it.
  readonly #lanes = new WeakMap<LoopTrace, number>();

  readonly #time: () => number;

  /**
   * @param slowMs - a callback (an iteration's callbacks) this long or longer is slow
   * @param debug - time every callback and log the slow ones with `logSlow`
   * @param time - the loop's clock (its time(), which a test may replace), in ms
   */
  constructor(slowMs: number, debug: boolean, logSlow: (item: Runnable, took: number) => void, time: () => number) {
    this.slowMs = slowMs;
    this.#debug = debug;
    this.timed = debug;
    this.#logSlow = logSlow;
    this.#time = time;
  }

  /**
   * Attaches `trace` (or detaches, with null): `lane` names a new lane, or
   * is the number of one of the trace's; a new lane is named `label` when
   * none is given and the trace is new to this loop.
   *
   * @throws {TypeError} ERR_INVALID_ARG_TYPE when trace is neither a LoopTrace nor null
   * @throws {RangeError} ERR_OUT_OF_RANGE for a lane number the trace does not have
   */
  setTrace(trace: LoopTrace | null, lane: string | number | undefined, label: string): void {
    if (trace !== null && (typeof trace !== 'object' || typeof trace.addLane !== 'function')) {
      throw Object.assign(new TypeError('trace must be a LoopTrace or null'), { code: 'ERR_INVALID_ARG_TYPE' });
    }
    if (
      typeof lane === 'number' &&
      (trace === null || !Number.isInteger(lane) || lane < 0 || lane >= trace.lanes.length)
    ) {
      throw Object.assign(new RangeError(`lane ${lane} is not one of the trace's`), { code: 'ERR_OUT_OF_RANGE' });
    }
    if (trace !== null) {
      const before = this.#lanes.get(trace);
      if (typeof lane === 'number') this.lane = lane;
      else if (lane !== undefined || before === undefined) this.lane = trace.addLane(lane ?? label);
      else this.lane = before;
      this.#lanes.set(trace, this.lane);
    }
    this.trace = trace;
    this.timed = this.#debug || trace !== null;
  }

  /** One wait, given `timeoutMs`: begun at `t0`, ended at `t1`, `n` events. */
  waited(t0: number, t1: number, n: number, timeoutMs: number | null): void {
    this.iterations++;
    this.waitMs += t1 - t0;
    this.events += n;
    if (n > this.maxEvents) this.maxEvents = n;
    if (this.trace !== null) this.trace.wait(this.lane, t0, t1 - t0, timeoutMs, n);
  }

  /** Cooperative mode: the loop slept in Node's event loop from `since` until `now`. */
  idled(since: number, now: number): void {
    this.idleMs += now - since;
    this.trace?.idle(this.lane, since, now - since);
  }

  /**
   * Runs the `ntodo` callbacks at the head of `ready`, timed one by one with
   * one clock read each (a callback ends when the next begins), the first
   * from `start`: traced, counted when slow, logged too in debug mode.
   *
   * @returns when the last one ended
   */
  runTimed(ready: RingQueue<Runnable>, ntodo: number, start: number): number {
    let t0 = start;
    for (let i = 0; i < ntodo; i++) {
      const item = ready.shift() as Runnable;
      this.#clock = t0;
      // Asked before it runs; recorded if the same trace is still attached after.
      const trace = this.trace;
      const what = trace === null ? 0 : callKind(item);
      item[RUN]();
      const t1 = this.#time();
      const took = t1 - t0;
      if (trace !== null && trace === this.trace) traceCall(trace, this.lane, t0, took, item, what);
      if (took >= this.slowMs) {
        this.slowCallbacks++;
        if (this.#debug) this.#logSlow(item, took);
      }
      t0 = t1;
    }
    this.#clock = Number.NaN;
    return t0;
  }

  /**
   * Records a socket operation in the trace (there must be one) and returns
   * its Future unchanged.
   *
   * @param sent - for a send, the bytes it sends
   */
  op<T>(op: TraceOp, sock: { fileno(): number }, future: Future<T>, sent = 0): Future<T> {
    return traceOp(this, op, sock, future, sent);
  }

  /**
   * A traced operation's time: the start of the callback that runs now (one
   * clock read fewer per event; operations and completions happen inside
   * callbacks), or the clock outside the loop's callbacks.
   */
  traceTime(): number {
    const clock = this.#clock;
    return Number.isNaN(clock) ? this.#time() : clock;
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
      slowCallbacks: this.timed ? this.slowCallbacks : null,
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
