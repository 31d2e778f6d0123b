/**
 * loop.addSignalHandler / removeSignalHandler on every backend, with real
 * signals: process.kill to this process, or a child's kill while the loop
 * blocks. Runs in the forks pool (vitest.config.ts), each file its own
 * process and main thread. A handler that went missing shows as this
 * process dying by the signal.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { describe, expect, it, onTestFinished } from 'vitest';

import { type Coroutine, LoopStateError, sleep } from '../../src/coro/index.js';
import type { EventLoop } from '../../src/loop/index.js';
import { signalDisposition } from '../../src/sys/index.js';
import { BACKENDS, testLoop } from '../helpers/loops.js';
import { watchdog } from '../helpers/watchdog.js';

/** A process.on listener, removed when the test ends. */
function nodeListener(signal: NodeJS.Signals): { calls: () => number; next: () => Promise<void>; off: () => void } {
  let calls = 0;
  let wake: (() => void) | null = null;
  const listener = (): void => {
    calls++;
    wake?.();
  };
  process.on(signal, listener);
  const off = (): void => {
    process.off(signal, listener);
  };
  onTestFinished(off);
  return {
    calls: () => calls,
    next: () =>
      new Promise<void>((resolve) => {
        wake = resolve;
      }),
    off,
  };
}

/** Runs one iteration of the loop (and so applies its pending interest changes). */
function spin(loop: EventLoop): void {
  loop.callSoon(() => loop.stop());
  loop.runForever();
}

/** Stops the loop (and says so) if nothing else does within 10 s: a hang becomes a failed assertion. */
function guard(loop: EventLoop): () => boolean {
  let fired = false;
  loop.addReader(watchdog(), () => {
    fired = true;
    loop.stop();
  });
  return () => fired;
}

/** A child that prints a line, then sends `signal` to this process after `ms` (from sh, so no Node in between). */
async function killFromChild(signal: string, ms: number): Promise<ChildProcess> {
  const child = spawn('sh', ['-c', `echo started; sleep ${ms / 1000}; kill -${signal} ${process.pid}`], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const exited = once(child, 'exit');
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  await once(child.stdout as NodeJS.ReadableStream, 'data');
  return child;
}

describe.each(BACKENDS)('signal handlers on %s', (backend) => {
  it('owning mode: a signal wakes the loop blocked in its wait; the handler runs as a Handle', async () => {
    const loop = testLoop(backend);
    const calls: unknown[] = [];
    const handle = loop.addSignalHandler(
      'SIGINT',
      (a: number, b: string) => {
        calls.push([a, b]);
        loop.stop();
      },
      1,
      'x',
    );
    expect(handle.cancelled()).toBe(false);
    const timedOut = guard(loop);
    await killFromChild('INT', 200);
    // Nothing is scheduled: the loop blocks until the signal's eventfd is readable.
    loop.runForever();
    expect(timedOut()).toBe(false);
    expect(calls).toEqual([[1, 'x']]);
  });

  it('cooperative mode: await loop.run(...) is woken by a signal while it idles in Node', async () => {
    const loop = testLoop(backend);
    const result = await loop.run(async () => {
      const got = loop.createFuture<string>();
      loop.addSignalHandler('SIGUSR2', (what: string) => got.setResult(what), 'usr2');
      // From a Node timer: the loop is idle in libuv (or its helper thread) by then.
      setTimeout(() => process.kill(process.pid, 'SIGUSR2'), 20);
      return await got;
    });
    expect(result).toBe('usr2');
    expect(loop.removeSignalHandler('SIGUSR2')).toBe(true);
  });

  it('several arrivals before the handler runs: it runs once; later ones run it again', () => {
    const loop = testLoop(backend);
    let calls = 0;
    loop.addSignalHandler('SIGUSR2', () => calls++);
    function* main(): Coroutine<number[]> {
      process.kill(process.pid, 'SIGUSR2');
      process.kill(process.pid, 'SIGUSR2');
      yield* sleep(20);
      const first = calls;
      process.kill(process.pid, 'SIGUSR2');
      yield* sleep(20);
      return [first, calls];
    }
    expect(loop.runUntilComplete(main())).toEqual([1, 2]);
  });

  it('a new handler replaces the old one, whose Handle is cancelled', () => {
    const loop = testLoop(backend);
    const ran: string[] = [];
    const first = loop.addSignalHandler('SIGUSR2', () => ran.push('first'));
    loop.addSignalHandler(12, () => {
      ran.push('second');
      loop.stop();
    });
    expect(first.cancelled()).toBe(true);
    loop.callSoon(() => process.kill(process.pid, 'SIGUSR2'));
    const timedOut = guard(loop);
    loop.runForever();
    expect(timedOut()).toBe(false);
    expect(ran).toEqual(['second']);
  });

  it('removeSignalHandler: true, then false; the disposition comes back and the wake fd goes', () => {
    const loop = testLoop(backend);
    expect(loop.selector.size).toBe(0);
    const handle = loop.addSignalHandler('SIGUSR2', () => {});
    loop.addSignalHandler('SIGHUP', () => {});
    expect(signalDisposition('SIGUSR2').kind).toBe('iomux');
    // One internal reader for all the loop's signals.
    spin(loop);
    expect(loop.selector.size).toBe(1);
    expect(loop.removeSignalHandler('SIGUSR2')).toBe(true);
    expect(handle.cancelled()).toBe(true);
    expect(loop.removeSignalHandler('SIGUSR2')).toBe(false);
    expect(loop.removeSignalHandler('SIGTERM')).toBe(false);
    expect(signalDisposition('SIGUSR2').kind).toBe('default');
    expect(loop.removeSignalHandler(1)).toBe(true);
    expect(signalDisposition('SIGHUP').kind).toBe('default');
    spin(loop);
    spin(loop);
    expect(loop.selector.size).toBe(0);
  });

  it('an exception in the handler goes to the exception handler; the loop goes on', () => {
    const loop = testLoop(backend);
    const reported: unknown[] = [];
    loop.setExceptionHandler((_loop, context) => reported.push(context.exception));
    loop.addSignalHandler('SIGUSR2', () => {
      throw new Error('boom');
    });
    function* main(): Coroutine<string> {
      process.kill(process.pid, 'SIGUSR2');
      yield* sleep(20);
      return 'alive';
    }
    expect(loop.runUntilComplete(main())).toBe('alive');
    expect(reported).toEqual([expect.objectContaining({ message: 'boom' })]);
  });

  it('bad signals and callbacks: each a typed error, and nothing changes', () => {
    const loop = testLoop(backend);
    const before = [signalDisposition('SIGINT'), signalDisposition('SIGKILL'), signalDisposition('SIGSEGV')];
    const cases: [unknown, unknown, string, ErrorConstructor | RangeErrorConstructor][] = [
      ['SIGFOO', () => {}, 'ERR_UNKNOWN_SIGNAL', TypeError],
      ['SIGKILL', () => {}, 'ERR_INVALID_ARG_VALUE', TypeError],
      ['SIGSTOP', () => {}, 'ERR_INVALID_ARG_VALUE', TypeError],
      [9, () => {}, 'ERR_INVALID_ARG_VALUE', TypeError],
      ['SIGSEGV', () => {}, 'ERR_INVALID_ARG_VALUE', TypeError],
      [0, () => {}, 'ERR_OUT_OF_RANGE', RangeError],
      [99, () => {}, 'ERR_OUT_OF_RANGE', RangeError],
      [2.5, () => {}, 'ERR_OUT_OF_RANGE', RangeError],
      [undefined, () => {}, 'ERR_INVALID_ARG_TYPE', TypeError],
      ['SIGINT', 'not a function', 'ERR_INVALID_ARG_TYPE', TypeError],
    ];
    for (const [signal, callback, code, type] of cases) {
      let error: unknown;
      try {
        loop.addSignalHandler(signal as number, callback as () => void);
      } catch (e) {
        error = e;
      }
      expect(error, `${String(signal)}`).toBeInstanceOf(type);
      expect(error).toMatchObject({ code });
    }
    expect(() => loop.removeSignalHandler('SIGFOO' as NodeJS.Signals)).toThrow(
      expect.objectContaining({ code: 'ERR_UNKNOWN_SIGNAL' }),
    );
    expect([signalDisposition('SIGINT'), signalDisposition('SIGKILL'), signalDisposition('SIGSEGV')]).toEqual(before);
    spin(loop);
    expect(loop.selector.size).toBe(0);
  });

  it('close() removes the handlers and restores the dispositions; a closed loop refuses new ones', () => {
    const loop = testLoop(backend);
    const before = signalDisposition('SIGINT');
    const handle = loop.addSignalHandler('SIGINT', () => {});
    loop.addSignalHandler('SIGUSR2', () => {});
    expect(signalDisposition('SIGINT').kind).toBe('iomux');
    loop.close();
    expect(handle.cancelled()).toBe(true);
    expect(signalDisposition('SIGINT')).toEqual(before);
    expect(signalDisposition('SIGUSR2').kind).toBe('default');
    expect(() => loop.addSignalHandler('SIGUSR2', () => {})).toThrow(LoopStateError);
    expect(() => loop.addSignalHandler('SIGUSR2', () => {})).toThrow(
      expect.objectContaining({ code: 'ERR_LOOP_CLOSED' }),
    );
    expect(loop.removeSignalHandler('SIGUSR2')).toBe(false);
    expect(signalDisposition('SIGUSR2').kind).toBe('default');
  });

  it('two loops cannot handle the same signal: the second is refused, the first keeps it', () => {
    const first = testLoop(backend);
    const second = testLoop(backend);
    first.addSignalHandler('SIGUSR2', () => {});
    expect(() => second.addSignalHandler('SIGUSR2', () => {})).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
    );
    spin(second);
    expect(second.selector.size).toBe(0);
    expect(second.removeSignalHandler('SIGUSR2')).toBe(false);
    expect(signalDisposition('SIGUSR2').kind).toBe('iomux');
    second.addSignalHandler('SIGHUP', () => {});
  });

  describe('beside process.on', () => {
    it('process.on first, then the loop: both run; removing the loop handler leaves Node the signal', async () => {
      const node = nodeListener('SIGUSR2');
      const loop = testLoop(backend);
      let loopCalls = 0;
      loop.addSignalHandler('SIGUSR2', () => {
        loopCalls++;
        loop.stop();
      });
      const arrived = node.next();
      loop.callSoon(() => process.kill(process.pid, 'SIGUSR2'));
      const timedOut = guard(loop);
      loop.runForever();
      expect(timedOut()).toBe(false);
      // Node's listener runs once control is back in Node's loop.
      await arrived;
      expect([loopCalls, node.calls()]).toEqual([1, 1]);
      expect(loop.removeSignalHandler('SIGUSR2')).toBe(true);
      const again = node.next();
      process.kill(process.pid, 'SIGUSR2');
      await again;
      expect([loopCalls, node.calls()]).toEqual([1, 2]);
    });

    it('the loop first, then process.on: both run; process.off leaves the loop handler working', async () => {
      const loop = testLoop(backend);
      let loopCalls = 0;
      loop.addSignalHandler('SIGUSR2', () => {
        loopCalls++;
        loop.stop();
      });
      const node = nodeListener('SIGUSR2');
      const arrived = node.next();
      loop.callSoon(() => process.kill(process.pid, 'SIGUSR2'));
      const timedOut = guard(loop);
      loop.runForever();
      await arrived;
      expect([loopCalls, node.calls()]).toEqual([1, 1]);
      // libuv resets SIGUSR2 to SIG_DFL here: without the loop's handler back on top, the next kill ends the process.
      node.off();
      loop.callSoon(() => process.kill(process.pid, 'SIGUSR2'));
      loop.runForever();
      expect(timedOut()).toBe(false);
      expect([loopCalls, node.calls()]).toEqual([2, 1]);
    });

    it('process.on added while the loop runs in cooperative mode: both keep getting signals', async () => {
      const loop = testLoop(backend);
      let node: ReturnType<typeof nodeListener> | null = null;
      const result = await loop.run(async () => {
        let got = loop.createFuture<void>();
        loop.addSignalHandler('SIGUSR2', () => got.setResult());
        node = nodeListener('SIGUSR2');
        for (let i = 0; i < 3; i++) {
          const arrived = node.next();
          setTimeout(() => process.kill(process.pid, 'SIGUSR2'), 5);
          await got;
          await arrived;
          got = loop.createFuture<void>();
        }
        return 'done';
      });
      expect(result).toBe('done');
      expect((node as ReturnType<typeof nodeListener> | null)?.calls()).toBe(3);
    });
  });
});

describe('signal handlers across processes and threads', () => {
  const distLoop = new URL('../../dist/loop/index.js', import.meta.url);

  it('after removeSignalHandler, SIGINT kills the process again (a child)', async () => {
    expect(existsSync(distLoop), 'dist/ is built by the global setup: run through vitest').toBe(true);
    const script = `
      import(${JSON.stringify(distLoop.href)}).then(({ EventLoop }) => {
        const loop = new EventLoop();
        loop.addSignalHandler('SIGINT', () => { console.log('handled'); loop.stop(); });
        loop.callSoon(() => process.kill(process.pid, 'SIGINT'));
        loop.runForever();
        loop.removeSignalHandler('SIGINT');
        process.kill(process.pid, 'SIGINT');
        setTimeout(() => console.log('survived'), 10000);
      });`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    onTestFinished(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    expect(out).toBe('handled\n');
    expect([code, signal]).toEqual([null, 'SIGINT']);
  });

  const MODES = BACKENDS.flatMap((backend) => [
    ['owning', backend],
    ['cooperative', backend],
  ]);

  it.each(MODES)(
    "a handler installed behind the loop's back (libuv's SIGCHLD on the first spawn) is chained to, not lost: %s on %s",
    async (mode, backend) => {
      expect(existsSync(distLoop), 'dist/ is built by the global setup: run through vitest').toBe(true);
      // In a fresh process, so that the spawn below is its first: libuv installs its SIGCHLD handler then,
      // over the loop's, with no process.on to tell iomux. The loop re-asserts its own before it sleeps
      // (owning: before it blocks; cooperative: before it idles in libuv). A 10 s guard, not a time limit:
      // a lost handler shows as 'no SIGCHLD' in the output instead of a hang.
      const script = `
      const { spawn } = require('node:child_process');
      import(${JSON.stringify(distLoop.href)}).then(({ EventLoop }) => {
        const loop = new EventLoop({ selector: '${backend}' });
        if ('${mode}' === 'owning') {
          loop.addSignalHandler('SIGCHLD', () => { console.log('loop handler'); loop.stop(); });
          loop.callLater(10000, () => { console.log('no SIGCHLD'); loop.stop(); });
          spawn('sleep', ['0.2']).on('exit', () => { console.log('exit event'); loop.close(); });
          loop.runForever();
          return;
        }
        loop.run(async () => {
          const got = loop.createFuture();
          loop.addSignalHandler('SIGCHLD', () => { console.log('loop handler'); got.setResult(); });
          const guard = loop.callLater(10000, () => { console.log('no SIGCHLD'); got.setResult(); });
          const exited = new Promise((resolve) => spawn('sleep', ['0.2']).on('exit', resolve));
          await got;
          guard.cancel();
          await exited;
          console.log('exit event');
        }).then(() => loop.close());
      });`;
      const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      onTestFinished(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
      });
      const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
      expect(out).toBe('loop handler\nexit event\n');
      expect([code, signal]).toEqual([0, null]);
    },
  );

  it('a loop in a worker is refused (ERR_WORKER_UNSUPPORTED_OPERATION) and left as it was', async () => {
    expect(existsSync(distLoop), 'dist/ is built by the global setup: run through vitest').toBe(true);
    const code = `
      const { parentPort } = require('node:worker_threads');
      import(${JSON.stringify(distLoop.href)}).then(({ EventLoop }) => {
        const loop = new EventLoop();
        let result = 'no error';
        try { loop.addSignalHandler('SIGINT', () => {}); } catch (e) { result = e.name + ':' + e.code; }
        result += ':' + loop.removeSignalHandler('SIGINT');
        loop.callSoon(() => loop.stop());
        loop.runForever();
        result += ':' + loop.selector.size;
        loop.close();
        parentPort.postMessage(result);
      });`;
    const worker = new Worker(code, { eval: true });
    onTestFinished(() => worker.terminate().then(() => undefined));
    const [message] = (await once(worker, 'message')) as [string];
    expect(message).toBe('TypeError:ERR_WORKER_UNSUPPORTED_OPERATION:false:0');
  });
});
