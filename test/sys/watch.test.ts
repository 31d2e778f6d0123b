import { describe, expect, it } from 'vitest';

import { close, pipe } from '../../src/sys/index.js';
import { FdWatcher } from '../../src/sys/watch.js';
import { trackClosable } from '../helpers/fds.js';

describe('FdWatcher', () => {
  it('start() on an fd closed behind its back is an OSError EBADF, not an abort inside libuv', () => {
    const [r, w] = pipe();
    close(w);
    const watcher = trackClosable(new FdWatcher(r, () => {}));
    close(r);
    expect(() => watcher.start()).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'uv_poll_start' }));
  });

  it('an error the kernel reports on the fd reaches the callback as an OSError', async () => {
    // A pipe's write end whose read end is gone: epoll reports EPOLLERR,
    // which libuv turns into a negative status and stops watching.
    const [r, w] = pipe();
    const calls: unknown[][] = [];
    const got = new Promise<void>((resolve) => {
      const watcher = trackClosable(
        new FdWatcher(w, (...args: unknown[]) => {
          calls.push(args);
          resolve();
        }),
      );
      close(r);
      watcher.start();
    });
    // No 2 s race: a callback that never comes fails on the test's timeout.
    await got;
    // One more turn of Node's loop (libuv polls again in it): stopped, not called again.
    await new Promise((resolve) => setImmediate(resolve));
    close(w);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.[0]).toMatchObject({ code: 'EBADF', syscall: 'uv_poll' });
  });
});
