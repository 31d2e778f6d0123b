import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { expect, it } from 'vitest';

import type { Coroutine } from '../../src/coro/index.js';
import { testLoop } from '../helpers/loops.js';

it('an exception nobody retrieved is reported when its Task is collected', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const loop = testLoop('epoll');
  const reports: string[] = [];
  loop.setExceptionHandler((_l, ctx) => reports.push(`${ctx.message}: ${(ctx.exception as Error).message}`));
  function* fails(): Coroutine<void> {
    yield;
    throw new Error('collected unseen');
  }
  function* waitABit(): Coroutine<void> {
    for (let i = 0; i < 5; i++) yield;
  }
  (() => {
    loop.createTask(fails());
  })();
  loop.runUntilComplete(waitABit());
  // Collect until the report comes (finalizers run on a later turn): no
  // deadline of its own, a report that never comes fails on the test's timeout.
  while (reports.length === 0) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  expect(reports).toEqual(['Task exception was never retrieved: collected unseen']);
});
