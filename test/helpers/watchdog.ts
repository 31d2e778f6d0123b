/**
 * Proving "this wait returns on its own" without an upper bound on its time.
 *
 * A test whose thread blocks in select/poll/epoll_wait never runs its own
 * timeout: a wait that hangs would hang the whole run. A watchdog is an
 * eventfd that another thread makes readable after a long time (10 s): put
 * it among the fds the wait watches, and a wait that does not return by
 * itself returns the watchdog instead, which the test's assertions on what
 * the wait reported then reject. A wait that is merely slow (a loaded
 * machine) never fails; only one that would hang does.
 */
import { Worker } from 'node:worker_threads';
import { onTestFinished } from 'vitest';

import { close, eventfd } from '../../src/sys/index.js';

/** An eventfd made readable by another thread after `ms`; both go when the test ends. */
export function watchdog(ms = 10_000): number {
  const fd = eventfd(0);
  // The worker writes with node:fs (it cannot load TypeScript): fds are per process.
  const worker = new Worker(
    `const { workerData } = require('node:worker_threads');
     const one = Buffer.alloc(8);
     one.writeBigUInt64LE(1n);
     setTimeout(() => require('node:fs').writeSync(workerData.fd, one), workerData.ms);`,
    { eval: true, workerData: { fd, ms } },
  );
  worker.unref();
  onTestFinished(async () => {
    // The thread first, so it never writes to a number the fd's close freed.
    await worker.terminate();
    close(fd);
  });
  return fd;
}
