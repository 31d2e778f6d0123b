/**
 * Delivering a real signal to this process while its main thread is blocked
 * in a syscall, from a child process (the main thread cannot run a timer
 * while it blocks). select, poll and epoll_wait fail with EINTR on any caught
 * signal, whatever SA_RESTART says (signal(7)).
 */
import { spawn } from 'node:child_process';
import { onTestFinished } from 'vitest';

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
