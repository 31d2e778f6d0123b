/**
 * Loops for tests: one per backend, closed when the test ends. Set
 * IOMUX_SELECTOR=select|poll|epoll|io_uring to run the loop suites on one
 * backend. io_uring is in the list wherever the kernel offers it (CI's
 * does; a container that forbids it runs the other three).
 */
import { onTestFinished } from 'vitest';

import { type BackendName, EventLoop, type EventLoopOptions } from '../../src/loop/index.js';
import { IoUring } from '../../src/sys/index.js';

const ALL: BackendName[] = IoUring.available() ? ['select', 'poll', 'epoll', 'io_uring'] : ['select', 'poll', 'epoll'];

/** The backends the loop suites run on. */
export const BACKENDS: BackendName[] = (() => {
  const chosen = process.env['IOMUX_SELECTOR'];
  if (chosen === undefined || chosen === '') return ALL;
  if (!ALL.includes(chosen as BackendName)) throw new Error(`IOMUX_SELECTOR must be one of ${ALL.join(', ')}`);
  return [chosen as BackendName];
})();

/** A loop on `backend`, closed (and its unreported exceptions surfaced) at the end of the test. */
export function testLoop(
  backend: BackendName,
  options: Omit<EventLoopOptions, 'selector' | 'backend'> = {},
): EventLoop {
  const loop = new EventLoop({ backend, ...options });
  onTestFinished(() => {
    if (!loop.isClosed() && !loop.isRunning()) loop.close();
  });
  return loop;
}
