/**
 * What a traced loop records beyond its waits: the callbacks it runs, and
 * its socket operations -- each as issued when the loop hands out its
 * Future, and as completed, with its bytes and how it ended, when that
 * Future's done callbacks run (the moment its waiter learns of it).
 *
 * @module
 */
import { Future, Task } from '../coro/index.js';
import type { Runnable } from '../coro/types.js';
import { Handle } from './handle.js';
import {
  CALL_FUTURE_DONE,
  CALL_HANDLE,
  CALL_OTHER,
  CALL_TASK,
  CALL_TASK_DONE,
  type LoopTrace,
  TRACE_OPS,
  type TraceOp,
} from './trace.js';

/** Where a traced operation is recorded: the loop's trace and lane while it stays attached, and its clock. */
interface Recorder {
  readonly trace: LoopTrace | null;
  readonly lane: number;
  traceTime(): number;
}

/**
 * @internal Records a callback the loop ran: a handle by its function's name, a Task's
 * step by the Task's name, a done Future's callbacks, or the kind of the
 * loop's own watcher (a socket operation retried on readiness).
 */
export function traceCall(trace: LoopTrace, lane: number, ts: number, dur: number, item: Runnable): void {
  if (item instanceof Handle) trace.call(lane, ts, dur, CALL_HANDLE, item.describe());
  else if (item instanceof Task) trace.call(lane, ts, dur, item.done() ? CALL_TASK_DONE : CALL_TASK, item.name);
  else if (item instanceof Future) trace.call(lane, ts, dur, CALL_FUTURE_DONE, '');
  else trace.call(lane, ts, dur, CALL_OTHER, item.constructor.name);
}

/** What a completed operation moved: bytes received or sent; for accept the new socket's fd. */
function moved(value: unknown, sent: number): number {
  if (typeof value === 'number') return value;
  if (value instanceof Uint8Array) return value.length;
  if (Array.isArray(value)) {
    const sock = value[0] as { fileno?: () => number } | undefined;
    return typeof sock?.fileno === 'function' ? sock.fileno() : 0;
  }
  return sent;
}

/**
 * @internal Records `future`'s operation in `trace` and returns it unchanged.
 *
 * @param sent - for a send, the bytes it sends
 */
export function traceOp<T>(
  recorder: Recorder,
  op: TraceOp,
  sock: { fileno(): number },
  future: Future<T>,
  sent = 0,
): Future<T> {
  const { trace, lane } = recorder;
  if (trace === null) return future;
  let fd = -1;
  try {
    fd = sock.fileno();
  } catch {
    // A closed socket: the operation fails; the trace says fd -1.
  }
  const ts = recorder.traceTime();
  const id = trace.opBegin(lane, ts, TRACE_OPS.indexOf(op), fd);
  // Done at once (a send the socket's buffer took): ended as it began.
  if (future.done()) ended(trace, lane, ts, id, future, sent);
  else {
    future.addDoneCallback((done) => {
      // Tracing stopped (or moved to another trace or lane) meanwhile: the
      // export shows the operation as still pending then.
      if (recorder.trace === trace && recorder.lane === lane) ended(trace, lane, recorder.traceTime(), id, done, sent);
    });
  }
  return future;
}

function ended(trace: LoopTrace, lane: number, ts: number, id: number, done: Future<unknown>, sent: number): void {
  if (done.cancelled()) {
    trace.opEnd(lane, ts, id, 0, 2);
  } else if (done.hasUnretrievedException()) {
    // Not retrieved here: its waiter (or the loop's report) still owns it.
    trace.opEnd(lane, ts, id, 0, 1);
  } else {
    let bytes = 0;
    let outcome = 0;
    try {
      bytes = moved(done.result(), sent);
    } catch {
      outcome = 1; // an exception its waiter retrieved already
    }
    trace.opEnd(lane, ts, id, bytes, outcome);
  }
}
