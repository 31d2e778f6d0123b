/**
 * Loops for tests: one per backend, closed when the test ends. Set
 * IOMUX_SELECTOR=select|poll|epoll to run the loop suites on one backend.
 */
import { onTestFinished } from 'vitest';

import { EventLoop, type EventLoopOptions, type SelectorName } from '../../src/loop/index.js';

const ALL: SelectorName[] = ['select', 'poll', 'epoll'];

/** The backends the loop suites run on. */
export const BACKENDS: SelectorName[] = (() => {
  const chosen = process.env['IOMUX_SELECTOR'];
  if (chosen === undefined || chosen === '') return ALL;
  if (!ALL.includes(chosen as SelectorName)) throw new Error(`IOMUX_SELECTOR must be one of ${ALL.join(', ')}`);
  return [chosen as SelectorName];
})();

/** A loop on `selector`, closed (and its unreported exceptions surfaced) at the end of the test. */
export function testLoop(selector: SelectorName, options: Omit<EventLoopOptions, 'selector'> = {}): EventLoop {
  const loop = new EventLoop({ selector, ...options });
  onTestFinished(() => {
    if (!loop.isClosed() && !loop.isRunning()) loop.close();
  });
  return loop;
}
