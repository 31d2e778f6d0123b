/**
 * Delivering a real signal to this process while its main thread is blocked
 * in a syscall, from a child process (the main thread cannot run a timer
 * while it blocks). select, poll and epoll_wait fail with EINTR on any caught
 * signal, whatever SA_RESTART says (signal(7)).
 */
import { spawn } from 'node:child_process';
import { expect, onTestFinished } from 'vitest';

export interface SignalPlan {
  /** How many SIGUSR2 the process caught so far (read after the blocking call). */
  caught(): number;
}

/**
 * Sends SIGUSR2 to this process after `afterMs`, then optionally writes one
 * byte to `writeFd` (through /proc/<pid>/fd) `thenWriteAfterMs` later.
 */
export function signalWhileBlocked(afterMs: number, writeFd?: number, thenWriteAfterMs = 0): SignalPlan {
  let count = 0;
  const handler = (): void => {
    count++;
  };
  process.on('SIGUSR2', handler);
  onTestFinished(() => {
    process.off('SIGUSR2', handler);
  });
  const s = (ms: number): string => (ms / 1000).toFixed(3);
  let script = `sleep ${s(afterMs)}; kill -USR2 ${process.pid}`;
  if (writeFd !== undefined) {
    script += `; sleep ${s(thenWriteAfterMs)}; printf x > /proc/${process.pid}/fd/${writeFd}`;
  }
  const child = spawn('sh', ['-c', script], { stdio: 'ignore' });
  onTestFinished(() => {
    child.kill('SIGKILL');
  });
  return { caught: () => count };
}

/**
 * Lets Node run the signal handler that was queued while the thread was
 * blocked (libuv delivers it through its signal pipe on the next turn).
 */
export async function flushSignals(plan: SignalPlan, expected = 1): Promise<void> {
  const deadline = Date.now() + 2000;
  while (plan.caught() < expected && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * Blocks in `wait(1000)` on nothing ready while a signal arrives at 300 ms,
 * and checks the PEP 475 contract: the handler ran, nothing was reported, and
 * the wait resumed with what was left of its timeout (restarting with the
 * whole timeout would take ~1300 ms).
 */
export async function expectResumesAfterSignal(wait: (timeoutMs: number) => unknown, nothing: unknown): Promise<void> {
  const plan = signalWhileBlocked(300);
  const t0 = performance.now();
  const result = wait(1000);
  const elapsed = performance.now() - t0;
  await flushSignals(plan);
  expect(plan.caught()).toBe(1);
  expect(result).toEqual(nothing);
  expect(elapsed).toBeGreaterThanOrEqual(995);
  expect(elapsed).toBeLessThan(1250);
}

/**
 * Blocks in `wait(5000)` while a signal arrives at 100 ms and a byte reaches
 * the pipe `writeFd` at 300 ms, and returns what the wait reported.
 */
export async function waitThroughSignal<T>(wait: (timeoutMs: number) => T, writeFd: number): Promise<T> {
  const plan = signalWhileBlocked(100, writeFd, 200);
  const result = wait(5000);
  await flushSignals(plan);
  expect(plan.caught()).toBe(1);
  return result;
}
