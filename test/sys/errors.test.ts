import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';

import {
  AF_INET,
  BlockingIOError,
  EFD_NONBLOCK,
  isErrnoError,
  OSError,
  read,
  SOCK_STREAM,
  Socket,
} from '../../src/sys/index.js';
import { testEventfd } from '../helpers/fds.js';

describe('OSError', () => {
  it('has Node-style fields and a "<syscall> <CODE> <detail>" message', () => {
    const e = new OSError(111, 'connect', '127.0.0.1:1');
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('OSError');
    expect(e.code).toBe('ECONNREFUSED');
    expect(e.errno).toBe(-111);
    expect(e.syscall).toBe('connect');
    expect(e.message).toBe('connect ECONNREFUSED 127.0.0.1:1');
    expect(new OSError(9, 'close').message).toBe('close EBADF');
  });

  it('names errnos libuv does not know (EINPROGRESS) and unknown numbers', () => {
    expect(new BlockingIOError(115, 'connect').code).toBe('EINPROGRESS');
    expect(new BlockingIOError(114, 'connect').code).toBe('EALREADY');
    expect(new OSError(11, 'read').code).toBe('EAGAIN');
    expect(new OSError(4000, 'x').code).toBe('E4000');
  });

  it('BlockingIOError is an OSError, thrown by the addon for EAGAIN', () => {
    const fd = testEventfd(0, EFD_NONBLOCK);
    let caught: unknown;
    try {
      read(fd, Buffer.alloc(8));
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(BlockingIOError);
    expect(caught).toBeInstanceOf(OSError);
    expect((caught as Error).name).toBe('BlockingIOError');
    expect(isErrnoError(caught)).toBe(true);
    expect(isErrnoError(caught, 'EAGAIN')).toBe(true);
    expect(isErrnoError(caught, 'EBADF')).toBe(false);
    expect(isErrnoError(new Error('x'))).toBe(false);
  });

  it('the addon loads and throws its own classes in several worker threads at once', async () => {
    // Workers cannot load TypeScript: they load dist/, which the global setup
    // (test/helpers/global-setup.ts) builds from the sources at every run.
    const dist = new URL('../../dist/sys/index.js', import.meta.url);
    expect(existsSync(dist), 'dist/ is built by the global setup: run through vitest').toBe(true);
    const code = `
      const { parentPort } = require('node:worker_threads');
      import(${JSON.stringify(dist.href)}).then((sys) => {
        const s = new sys.Socket(sys.AF_INET, sys.SOCK_STREAM);
        let code = '';
        try { s.getpeername(); } catch (e) { code = (e instanceof sys.OSError) + ':' + e.code; }
        const ep = new sys.Epoll();
        const fd = sys.eventfd(1);
        ep.register(fd, sys.EPOLLIN);
        const ready = ep.poll(0).length;
        ep.close(); s.close(); sys.close(fd);
        parentPort.postMessage(code + ':' + ready);
      });`;
    const results = await Promise.all(
      Array.from({ length: 4 }, () => {
        const worker = new Worker(code, { eval: true });
        return new Promise<string>((resolve, reject) => {
          worker.once('message', (m: string) => {
            void worker.terminate();
            resolve(m);
          });
          worker.once('error', reject);
        });
      }),
    );
    expect(results).toEqual(Array(4).fill('true:ENOTCONN:1'));
    // And the main thread's addon still works.
    const s = new Socket(AF_INET, SOCK_STREAM);
    expect(() => s.getpeername()).toThrow(OSError);
    s.close();
  });
});
