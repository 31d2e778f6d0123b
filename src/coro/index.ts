/**
 * `iomux/coro`: Futures, Tasks and the helpers that drive generator
 * coroutines (and, in cooperative mode, async functions) on an EventLoop.
 *
 * @module
 */
export {
  CancelledError,
  InvalidStateError,
  type LoopStateCode,
  LoopStateError,
  TimeoutError,
  WrongLoopError,
} from './errors.js';
export { type DoneCallback, Future, isCoroutine } from './future.js';
export { type Awaitable, ensureFuture, type GatherOptions, gather, sleep, waitFor, withTimeout } from './helpers.js';
export { getRunningLoop } from './running.js';
export { type Coroutine, currentTask, Task, type TaskTarget } from './task.js';
export type { Cancellable, ExceptionContext, LoopLike, RunningLoop } from './types.js';
