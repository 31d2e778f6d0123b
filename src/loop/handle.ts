/**
 * Handles: a scheduled callback with its arguments, cancellable.
 *
 * @module
 */
import type { ExceptionContext } from '../coro/index.js';
import { RUN, type Runnable } from '../coro/types.js';

/** A callback of any arguments, as a handle stores it. */
export type Callback = (...args: never[]) => void;

/** What a handle needs of its loop. */
export interface HandleOwner {
  callExceptionHandler(context: ExceptionContext): void;
  /** @internal A timer handle was cancelled: the loop counts it for heap compaction. */
  timerCancelled(handle: TimerHandle): void;
}

const NO_ARGS: readonly unknown[] = Object.freeze([]);

/**
 * @internal What an fd's reader or writer slot holds: queued when the fd is
 * ready; disarmed when replaced or removed, after which a run already queued
 * does nothing. A Handle (addReader, addWriter), or the loop's own socket
 * operation waiting for readiness, which then needs no Handle of its own.
 */
export interface Watcher extends Runnable {
  disarm(): void;
}

/**
 * @internal One fd's reader and writer slots (the loop's registration of the
 * fd). A socket operation that waits keeps it, so that giving its slot up
 * when it completes needs no lookup by fd.
 */
export interface IoSlots {
  readonly reader: Watcher | null;
  readonly writer: Watcher | null;
}

/** A callback scheduled by callSoon, addReader or addWriter. */
// A Watcher (structurally: the interface is internal, so it stays out of the .d.ts).
export class Handle {
  #callback: Callback | null;
  #args: readonly unknown[];
  #cancelled = false;
  protected readonly owner: HandleOwner;

  constructor(callback: Callback, args: readonly unknown[], owner: HandleOwner) {
    this.#callback = callback;
    this.#args = args;
    this.owner = owner;
  }

  /** Prevents the callback from running (idempotent); drops its references. */
  cancel(): void {
    if (this.#cancelled) return;
    this.#cancelled = true;
    this.#callback = null;
    this.#args = NO_ARGS;
  }

  /** True once cancelled. */
  cancelled(): boolean {
    return this.#cancelled;
  }

  /** @internal As a reader or writer: replaced or removed (see Watcher). */
  disarm(): void {
    this.cancel();
  }

  /** @internal Runs the callback unless cancelled; an exception goes to the loop's handler. */
  [RUN](): void {
    const callback = this.#callback;
    if (callback === null) return;
    const args = this.#args as never[];
    try {
      if (args.length === 0) callback();
      else callback(...args);
    } catch (exception) {
      this.owner.callExceptionHandler({
        message: `Exception in callback ${describe(callback)}`,
        exception,
        handle: this,
      });
    }
  }

  /** @internal The callback's name, for debug messages. */
  describe(): string {
    return this.#callback === null ? '<cancelled>' : describe(this.#callback);
  }
}

function describe(callback: Callback): string {
  return callback.name === '' ? '<anonymous>' : callback.name;
}

/** A callback scheduled at a time: callLater / callAt. */
export class TimerHandle extends Handle {
  /** @internal Tie-breaker: timers due at the same time run in scheduling order. */
  readonly seq: number;
  /** Loop time (ms) when it is due. */
  readonly when: number;
  /** @internal True while in the loop's timer heap (cancelling it then counts toward compaction). */
  scheduled = false;

  constructor(when: number, seq: number, callback: Callback, args: readonly unknown[], owner: HandleOwner) {
    super(callback, args, owner);
    this.when = when;
    this.seq = seq;
  }

  override cancel(): void {
    if (this.cancelled()) return;
    super.cancel();
    this.owner.timerCancelled(this);
  }
}
