/**
 * The running loop of this thread, as asyncio's `get_running_loop()`.
 *
 * @module
 */
import { LoopStateError } from './errors.js';
import type { LoopLike, RunningLoop } from './types.js';

let running: LoopLike | null = null;

/**
 * The loop running now: inside a callback, a Task's step or `loop.run()`.
 *
 * @throws {LoopStateError} ERR_NO_RUNNING_LOOP when none is running
 */
export function getRunningLoop(): RunningLoop & LoopLike {
  if (running === null) throw new LoopStateError('ERR_NO_RUNNING_LOOP', 'no running event loop');
  // Every loop that sets itself running is an EventLoop (see RunningLoop).
  return running as RunningLoop & LoopLike;
}

/** @internal The loop's run methods set and restore it; returns the previous one. */
export function setRunningLoop(loop: LoopLike | null): LoopLike | null {
  const previous = running;
  running = loop;
  return previous;
}

/** @internal The running loop or null. */
export function peekRunningLoop(): LoopLike | null {
  return running;
}
