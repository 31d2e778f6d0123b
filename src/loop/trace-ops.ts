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
 * @internal What running `item` will do, asked before it runs (a Task's last
 * step leaves it done): a handle's callback, a Task's step, a done Task's or
 * Future's callbacks, or the loop's own watcher (a socket operation retried
 * on readiness).
 */
export function callKind(item: Runnable): number {
  if (item instanceof Handle) return CALL_HANDLE;
  if (item instanceof Task) return item.done() ? CALL_TASK_DONE : CALL_TASK;
  if (item instanceof Future) return CALL_FUTURE_DONE;
  return CALL_OTHER;
}

/**
 * @internal Records a callback the loop ran, of kind `what` ({@link callKind}):
 * a handle by its function's name, a Task by its name, a watcher by its class.
 */
export function traceCall(trace: LoopTrace, lane: number, ts: number, dur: number, item: Runnable, what: number): void {
  const label =
    what === CALL_HANDLE
      ? (item as Handle).describe()
      : what === CALL_TASK || what === CALL_TASK_DONE
        ? (item as Task<unknown>).name
        : what === CALL_FUTURE_DONE
          ? ''
          : item.constructor.name;
  trace.call(lane, ts, dur, what, label);
}

/** What a completed operation moved: bytes received or sent; for accept the new socket's fd. */
function moved(value: unknown, sent: number): number {
  if (typeof value === 'number') return value;
  if (value instanceof Uint8Array) return value.length;
  if (Array.isArray(value)) {
    // recvfrom's [data, address] and recvfromInto's [count, address].
    if (value[0] instanceof Uint8Array) return value[0].length;
    if (typeof value[0] === 'number') return value[0];
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
