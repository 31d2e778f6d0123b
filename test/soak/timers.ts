/**
 * The timer leg: storms of callLater handles, some cancelled before and
 * some after a while (a cancelled timer must never run, every other one
 * must run, and none before its time); Tasks cancelled part-way through a
 * sleep (they end cancelled, the others with their value); waitFor deadlines
 * that expire around a sleep and around a receive that never completes (the
 * reader is removed: the round checks the selector is empty at its end).
 * A generator version for owning mode and an async one for cooperative mode,
 * which also waits on Node's own timers in between.
 */
import { CancelledError, type Coroutine, sleep, type Task, TimeoutError, waitFor } from 'iomux/coro';
import type { EventLoop, TimerHandle } from 'iomux/loop';
import { socketpair } from 'iomux/sys';

import type { Rng } from './prng.js';
import { bump, type Tally } from './tally.js';

/** How long a storm may take to deliver its timers (loop time), generous for a loaded machine. */
const STORM_DEADLINE_MS = 60_000;

interface Storm {
  handles: TimerHandle[];
  cancelled: Set<number>;
  fired: Set<number>;
}

function startStorm(loop: EventLoop, rng: Rng, count: number, tally: Tally): Storm {
  const storm: Storm = { handles: [], cancelled: new Set(), fired: new Set() };
  for (let i = 0; i < count; i++) {
    const when = loop.time() + rng.int(0, 60);
    storm.handles.push(
      loop.callAt(when, () => {
        if (storm.cancelled.has(i)) tally.failures.push(`timer ${i}: ran after it was cancelled`);
        if (loop.time() < when) tally.failures.push(`timer ${i}: ran ${when - loop.time()} ms early`);
        storm.fired.add(i);
      }),
    );
  }
  for (let i = 0; i < count; i++) if (rng.chance(0.3)) cancel(storm, i);
  return storm;
}

function cancel(storm: Storm, i: number): void {
  if (storm.fired.has(i)) return;
  storm.handles[i]?.cancel();
  storm.cancelled.add(i);
}

function cancelSome(storm: Storm, rng: Rng): void {
  for (let i = 0; i < storm.handles.length; i++) if (rng.chance(0.2)) cancel(storm, i);
}

function stormDone(storm: Storm): boolean {
  return storm.fired.size + storm.cancelled.size >= storm.handles.length;
}

function endStorm(storm: Storm, tally: Tally): void {
  const missing = storm.handles.length - storm.cancelled.size - storm.fired.size;
  if (missing > 0) tally.failures.push(`timers: ${missing} never ran within ${STORM_DEADLINE_MS} ms`);
  bump(tally.ops, 'timer fired', storm.fired.size);
  bump(tally.ops, 'timer cancelled', storm.cancelled.size);
}

function* sleeper(ms: number, value: number): Coroutine<number> {
  yield* sleep(ms);
  return value;
}

function settleTask(task: Task<number>, wasCancelled: boolean, value: number, tally: Tally): void {
  if (wasCancelled && task.cancelled()) {
    bump(tally.ops, 'task cancelled');
    return;
  }
  if (!wasCancelled || !task.cancelled()) {
    const exception = task.exception();
    if (exception !== null) tally.failures.push(`task: failed with ${exception}`);
    else if (task.result() !== value) tally.failures.push(`task: returned ${task.result()}, not ${value}`);
    else bump(tally.ops, 'task finished');
  }
}

function countTimeout(error: unknown, kind: string, tally: Tally): void {
  if (error instanceof TimeoutError) bump(tally.ops, kind);
  else tally.failures.push(`${kind}: wanted TimeoutError, got ${error}`);
}

/** The leg in generator style (owning mode, or any mode). */
export function* timerLeg(loop: EventLoop, rng: Rng, count: number, tally: Tally): Coroutine<void> {
  const storm = startStorm(loop, rng, count, tally);
  const tasks = Array.from({ length: Math.max(2, count >> 3) }, (_, i) => loop.createTask(sleeper(rng.int(0, 300), i)));
  const doomed = tasks.map(() => rng.chance(0.5));
  yield* sleep(rng.int(0, 40));
  cancelSome(storm, rng);
  const cancelledNow = tasks.map((t, i) => doomed[i] === true && t.cancel());
  for (let i = 0; i < tasks.length; i++) {
    const task = tasks[i] as Task<number>;
    try {
      yield* task;
    } catch (error) {
      if (!(error instanceof CancelledError)) tally.failures.push(`task: ${error}`);
    }
    settleTask(task, cancelledNow[i] === true, i, tally);
  }
  try {
    yield* waitFor(sleeper(10_000, 0), rng.int(0, 30));
    tally.failures.push('waitFor: a 10 s sleep beat a 30 ms deadline');
  } catch (error) {
    countTimeout(error, 'waitFor timeout (sleep)', tally);
  }
  const [a, b] = socketpair();
  try {
    b.setBlocking(false);
    yield* waitFor(loop.sockRecv(b, 16), rng.int(0, 30));
    tally.failures.push('waitFor: a receive on a silent socket completed');
  } catch (error) {
    countTimeout(error, 'waitFor timeout (recv)', tally);
  } finally {
    a.close();
    b.close();
  }
  const started = loop.time();
  while (!stormDone(storm) && loop.time() - started < STORM_DEADLINE_MS) yield* sleep(10);
  endStorm(storm, tally);
}

/** The same in async/await, for cooperative mode; Node's own timers run in between. */
export async function timerLegAsync(loop: EventLoop, rng: Rng, count: number, tally: Tally): Promise<void> {
  const storm = startStorm(loop, rng, count, tally);
  const tasks = Array.from({ length: Math.max(2, count >> 3) }, (_, i) =>
    loop.createTask(async () => {
      await sleep(rng.int(0, 300));
      return i;
    }),
  );
  const doomed = tasks.map(() => rng.chance(0.5));
  await new Promise((resolve) => setTimeout(resolve, rng.int(0, 40)));
  bump(tally.ops, 'node timer');
  cancelSome(storm, rng);
  const cancelledNow = tasks.map((t, i) => doomed[i] === true && t.cancel());
  for (let i = 0; i < tasks.length; i++) {
    const task = tasks[i] as Task<number>;
    try {
      await task;
    } catch (error) {
      if (!(error instanceof CancelledError)) tally.failures.push(`task: ${error}`);
    }
    settleTask(task, cancelledNow[i] === true, i, tally);
  }
  try {
    await waitFor(sleep(10_000), rng.int(0, 30));
    tally.failures.push('waitFor: a 10 s sleep beat a 30 ms deadline');
  } catch (error) {
    countTimeout(error, 'waitFor timeout (sleep)', tally);
  }
  const [a, b] = socketpair();
  try {
    b.setBlocking(false);
    await waitFor(loop.sockRecv(b, 16), rng.int(0, 30));
    tally.failures.push('waitFor: a receive on a silent socket completed');
  } catch (error) {
    countTimeout(error, 'waitFor timeout (recv)', tally);
  } finally {
    a.close();
    b.close();
  }
  const started = loop.time();
  while (!stormDone(storm) && loop.time() - started < STORM_DEADLINE_MS) await sleep(10);
  endStorm(storm, tally);
}
