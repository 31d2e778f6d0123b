/**
 * Delivering a real signal to this process while its main thread is blocked
 * in a syscall, from a child process (the main thread cannot run a timer
 * while it blocks). select, poll and epoll_wait fail with EINTR on any caught
 * signal, whatever SA_RESTART says (signal(7)).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { expect, onTestFinished } from 'vitest';

import { testPipe } from './fds.js';

export interface SignalPlan {
  /** How many SIGUSR2 the process caught so far (read after the blocking call). */
  caught(): number;
  /** Settles once `n` SIGUSR2 were caught (Node runs the handler on its next turn). */
  whenCaught(n: number): Promise<void>;
  /** Settles once the child printed its first line (it runs the plan from then on). */
  started: Promise<void>;
}

/**
 * Runs `script` in sh with $P set to this process's pid, counting the SIGUSR2
 * it sends. The child is killed, and waited for, before the handler goes:
 * a SIGUSR2 without one would end this process.
 */
function signalPlan(script: string): SignalPlan {
  let count = 0;
  const waiters: { n: number; resolve: () => void }[] = [];
  const handler = (): void => {
    count++;
    for (const w of waiters.filter((w) => count >= w.n)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  };
  process.on('SIGUSR2', handler);
  const child: ChildProcess = spawn('sh', ['-c', `P=${process.pid}; echo started; ${script}`], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const exited = once(child, 'exit');
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    process.off('SIGUSR2', handler);
  });
  const started = once(child.stdout as NodeJS.ReadableStream, 'data').then(() => undefined);
  return {
    caught: () => count,
    whenCaught: (n) => (count >= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n, resolve }))),
    started,
  };
}

const seconds = (ms: number): string => (ms / 1000).toFixed(3);

/**
 * Sends SIGUSR2 to this process after `afterMs`, then optionally writes one
 * byte to `writeFd` (through /proc/<pid>/fd) `thenWriteAfterMs` later.
 */
export function signalWhileBlocked(afterMs: number, writeFd?: number, thenWriteAfterMs = 0): SignalPlan {
  let script = `sleep ${seconds(afterMs)}; kill -USR2 $P`;
  if (writeFd !== undefined) script += `; sleep ${seconds(thenWriteAfterMs)}; printf x > /proc/$P/fd/${writeFd}`;
  return signalPlan(script);
}

/**
 * Blocks in `wait(1000)` on nothing ready while a SIGUSR2 arrives every
 * 100 ms, and checks the PEP 475 contract: the handler ran, nothing was
 * reported, and the wait resumed with what was left of its timeout. A wait
 * that restarted with its whole timeout after each signal would never end
 * while the signals go on: after 10 s of them a byte reaches `marker`, which
 * the wait watches, and it reports that instead of nothing. No upper bound
 * on the time taken: only a wait that does not honour its timeout fails.
 *
 * @param watch - given the fd of the marker pipe, returns the wait (which
 *   must watch that fd for reading along with its idle ones)
 */
export async function expectResumesAfterSignal(
  watch: (marker: number) => (timeoutMs: number) => unknown,
  nothing: unknown,
): Promise<void> {
  const [marker, w] = testPipe();
  const wait = watch(marker);
  const plan = signalPlan(
    `i=0; while [ $i -lt 100 ]; do sleep 0.1; kill -USR2 $P; i=$((i+1)); done; printf x > /proc/$P/fd/${w}`,
  );
  await plan.started;
  const before = plan.caught();
  const t0 = performance.now();
  const result = wait(1000);
  const elapsed = performance.now() - t0;
  // Signals sent while it blocked (at least one lands in any 1 s of the train).
  await plan.whenCaught(before + 1);
  expect(result).toEqual(nothing);
  // Never early: EINTR is no reason to return (5 ms for rounding to whole ms).
  expect(elapsed).toBeGreaterThanOrEqual(995);
}

/**
 * Blocks in `wait(5000)` while a signal arrives at 100 ms and a byte reaches
 * the pipe `writeFd` at 300 ms, and returns what the wait reported.
 */
export async function waitThroughSignal<T>(wait: (timeoutMs: number) => T, writeFd: number): Promise<T> {
  const plan = signalWhileBlocked(100, writeFd, 200);
  await plan.started;
  const result = wait(5000);
  await plan.whenCaught(1);
  expect(plan.caught()).toBe(1);
  return result;
}
