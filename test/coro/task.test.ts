import { executionAsyncId } from 'node:async_hooks';
import { describe, expect, it } from 'vitest';

import { CancelledError, type Coroutine, currentTask, InvalidStateError, sleep, Task } from '../../src/coro/index.js';
import { BACKENDS, testLoop } from '../helpers/loops.js';

/** sleep() needs the running loop, so a test that is not in a coroutine pauses through one. */
function* pause(ms: number): Coroutine<void> {
  yield* sleep(ms);
}

describe.each(BACKENDS)('Task on %s', (backend) => {
  it('runs a generator to its return value; a Task is a Future', () => {
    const loop = testLoop(backend);
    function* add(a: number, b: number): Coroutine<number> {
      yield* sleep(1);
      return a + b;
    }
    const task = loop.createTask(add(2, 3), 'adder');
    expect(task.name).toBe('adder');
    expect(task.done()).toBe(false);
    expect(loop.runUntilComplete(task)).toBe(5);
    expect(task.result()).toBe(5);
    expect(() => task.setResult(1)).toThrow(InvalidStateError);
    expect(() => task.setException(new Error())).toThrow(InvalidStateError);
  });

  it('yield* fut gives the typed result; a failed future throws at that point', () => {
    const loop = testLoop(backend);
    function* main(): Coroutine<string> {
      const ok = loop.createFuture<number>();
      loop.callLater(2, () => ok.setResult(10));
      const n: number = yield* ok;
      const bad = loop.createFuture<number>();
      loop.callSoon(() => bad.setException(new Error('bad')));
      try {
        yield* bad;
      } catch (e) {
        return `${n}:${(e as Error).message}`;
      }
      return 'unreached';
    }
    expect(loop.runUntilComplete(main())).toBe('10:bad');
  });

  it('a bare yield lets other callbacks run, then resumes', () => {
    const loop = testLoop(backend);
    const order: string[] = [];
    function* polite(): Coroutine<void> {
      order.push('a1');
      yield;
      order.push('a2');
    }
    loop.createTask(polite());
    loop.callSoon(() => order.push('b'));
    loop.runUntilComplete(pause(5));
    expect(order).toEqual(['a1', 'b', 'a2']);
  });

  it('a bad yield is thrown back into the coroutine as a TypeError', () => {
    const loop = testLoop(backend);
    function* confused(): Coroutine<string> {
      try {
        yield 42;
      } catch (e) {
        return (e as Error).message;
      }
      return 'no';
    }
    expect(loop.runUntilComplete(confused())).toMatch(/bad yield: 42/);
  });

  it('cancel() throws CancelledError at the current yield, runs finally, and cancels the awaited future', () => {
    const loop = testLoop(backend);
    const log: string[] = [];
    const inner = loop.createFuture<void>();
    function* worker(): Coroutine<void> {
      try {
        log.push('start');
        yield* inner;
        log.push('not reached');
      } finally {
        log.push('finally');
      }
    }
    const task = loop.createTask(worker());
    loop.callLater(5, () => expect(task.cancel('enough')).toBe(true));
    expect(() => loop.runUntilComplete(task)).toThrow(CancelledError);
    expect(() => task.result()).toThrow('enough');
    expect(task.cancelled()).toBe(true);
    expect(inner.cancelled()).toBe(true);
    expect(log).toEqual(['start', 'finally']);
    expect(task.cancel()).toBe(false);
    expect(task.signal.aborted).toBe(true);
  });

  it('a coroutine may catch CancelledError and go on', () => {
    const loop = testLoop(backend);
    function* stubborn(): Coroutine<string> {
      try {
        yield* sleep(1000);
      } catch (e) {
        if (!(e instanceof CancelledError)) throw e;
      }
      yield* sleep(1);
      return 'survived';
    }
    const task = loop.createTask(stubborn());
    loop.callLater(5, () => task.cancel());
    expect(loop.runUntilComplete(task)).toBe('survived');
  });

  it('cancel before the first step: the coroutine never runs its body', () => {
    const loop = testLoop(backend);
    let ran = false;
    function* never(): Coroutine<void> {
      ran = true;
      yield;
    }
    const task = loop.createTask(never());
    task.cancel();
    expect(() => loop.runUntilComplete(task)).toThrow(CancelledError);
    expect(ran).toBe(false);
  });

  it('every kind of target starts in the next iteration, in creation order, never inside createTask', () => {
    const loop = testLoop(backend);
    const log: string[] = [];
    function* gen(name: string): Coroutine<void> {
      log.push(`${name} (task ${currentTask()?.name})`);
      yield;
    }
    function* main(): Coroutine<string[]> {
      loop.createTask(async () => {
        log.push(`async (task ${currentTask()?.name})`);
      }, 'a');
      loop.createTask(gen('generator'), 'g');
      loop.createTask(() => gen('function returning a generator'), 'f');
      log.push('all created');
      yield;
      return log;
    }
    expect(loop.runUntilComplete(main())).toEqual([
      'all created',
      'async (task a)',
      'generator (task g)',
      'function returning a generator (task f)',
    ]);
  });

  it('a function target cancelled before it started is never called', () => {
    const loop = testLoop(backend);
    let called = false;
    const task = loop.createTask(async () => {
      called = true;
    });
    expect(task.cancel('early')).toBe(true);
    expect(task.signal.aborted).toBe(true);
    expect(() => loop.runUntilComplete(task)).toThrow(CancelledError);
    expect(called).toBe(false);
  });

  it('a function that returns neither a generator nor a promise fails its Task with a TypeError', () => {
    const loop = testLoop(backend);
    const task = loop.createTask((() => 42) as unknown as () => Coroutine<void>);
    expect(() => loop.runUntilComplete(task)).toThrow(/a Task needs a generator object, a promise or a function/);
    const throwing = loop.createTask((): Coroutine<void> => {
      throw new RangeError('from the function');
    });
    expect(() => loop.runUntilComplete(throwing)).toThrow(RangeError);
  });

  it('a function that returns a Future: the Task follows it, and cancelling the Task cancels it', async () => {
    const loop = testLoop(backend);
    function* answer(): Coroutine<number> {
      yield* sleep(1);
      return 42;
    }
    // loop.run documents "a function returning" a Future; it used to fail with a TypeError.
    expect(await loop.run(() => loop.createTask(answer()))).toBe(42);
    expect(loop.runUntilComplete(loop.createTask(() => loop.createTask(answer())))).toBe(42);
    const failing = loop.createFuture<number>();
    const follower = loop.createTask(() => failing);
    loop.callSoon(() => failing.setException(new RangeError('inner')));
    expect(() => loop.runUntilComplete(follower)).toThrow(RangeError);
    const pending = loop.createFuture<number>();
    const outer = loop.createTask(() => pending);
    loop.runUntilComplete(pause(1));
    expect(outer.cancel()).toBe(true);
    expect(() => loop.runUntilComplete(outer)).toThrow(CancelledError);
    expect(pending.cancelled()).toBe(true);
  });

  it('currentTask() is the task whose coroutine runs', () => {
    const loop = testLoop(backend);
    let seen: unknown = null;
    function* who(): Coroutine<void> {
      seen = currentTask();
      yield;
    }
    const task = loop.createTask(who());
    loop.runUntilComplete(task);
    expect(seen).toBe(task);
    expect(currentTask()).toBeNull();
  });

  it('an exception in a task nobody awaited is reported at close', () => {
    const loop = testLoop(backend);
    const reports: string[] = [];
    loop.setExceptionHandler((_l, ctx) => reports.push(`${ctx.message}: ${(ctx.exception as Error).message}`));
    function* fails(): Coroutine<void> {
      yield;
      throw new Error('unseen');
    }
    loop.createTask(fails());
    loop.runUntilComplete(pause(5));
    loop.close();
    expect(reports).toEqual(['Task exception was never retrieved: unseen']);
  });

  it('runs 10,000 concurrent tasks', () => {
    const loop = testLoop(backend);
    let finished = 0;
    function* worker(i: number): Coroutine<number> {
      yield* sleep(i % 7);
      yield;
      finished++;
      return i;
    }
    const tasks = Array.from({ length: 10_000 }, (_, i) => loop.createTask(worker(i)));
    function* all(): Coroutine<number> {
      let sum = 0;
      for (const t of tasks) sum += yield* t;
      return sum;
    }
    expect(loop.runUntilComplete(all())).toBe((10_000 * 9_999) / 2);
    expect(finished).toBe(10_000);
  });

  it('refuses what it cannot drive, and a future of another loop', () => {
    const loop = testLoop(backend);
    const other = testLoop(backend);
    expect(() => new Task(42 as unknown as Coroutine<void>, loop)).toThrow(TypeError);
    function* foreign(): Coroutine<string> {
      try {
        yield* other.createFuture();
      } catch (e) {
        return (e as Error).message;
      }
      return 'no';
    }
    expect(loop.runUntilComplete(foreign())).toMatch(/different loop/);
    // Each mistake has its code: a bad target, a Future of another loop, a bad yield.
    expect(() => new Task(42 as unknown as Coroutine<void>, loop)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
    );
    function* codeOf(body: () => Coroutine<unknown>): Coroutine<unknown> {
      try {
        yield* body();
      } catch (e) {
        return [(e as Error).name, (e as { code?: string }).code];
      }
      return 'no error';
    }
    expect(
      loop.runUntilComplete(
        codeOf(function* () {
          yield* other.createFuture();
        }),
      ),
    ).toEqual(['WrongLoopError', 'ERR_OTHER_LOOP']);
    expect(
      loop.runUntilComplete(
        codeOf(function* () {
          yield 5;
        }),
      ),
    ).toEqual(['TypeError', 'ERR_BAD_YIELD']);
  });
});

describe('async Tasks and the host application', () => {
  it('a function returning a thenable of its own: then() is called once, and a throwing then() fails only that Task', async () => {
    const loop = testLoop('epoll');
    let calls = 0;
    const lazy = {
      // biome-ignore lint/suspicious/noThenProperty: a user's own thenable, which is what is tested
      then(resolve: (v: string) => void): void {
        calls++;
        resolve('ran');
      },
    };
    const throwing = {
      // biome-ignore lint/suspicious/noThenProperty: a user's own thenable, which is what is tested
      then(): void {
        throw new Error('then throws');
      },
    };
    const outcome = await loop.run(async () => {
      const ok = await loop.createTask(() => lazy as unknown as PromiseLike<string>);
      const bad = loop.createTask(() => throwing as unknown as PromiseLike<string>);
      const error = await bad.then(
        () => null,
        (e: unknown) => (e as Error).message,
      );
      return [ok, error];
    });
    expect(outcome).toEqual(['ran', 'then throws']);
    expect(calls).toBe(1);
  });

  // Node's promise hooks, which AsyncLocalStorage turns on before Node 24,
  // give every promise its own async id; off, a continuation runs under its
  // caller's. Two awaits that see different ids: the hooks are on.
  async function idAfterAwait(): Promise<number> {
    await null;
    return executionAsyncId();
  }
  async function promiseHooksOn(): Promise<boolean> {
    const first = await idAfterAwait();
    const second = await idAfterAwait();
    return first !== second;
  }

  it('tracks an async Task across its awaits only while one runs: no tax on the promises of the app around it', async () => {
    expect(await promiseHooksOn()).toBe(false);
    const loop = testLoop('epoll');
    const during = await loop.run(async () => {
      await sleep(1);
      return await promiseHooksOn();
    });
    // Node 24's AsyncLocalStorage needs no hooks (AsyncContextFrame).
    expect(during).toBe(Number(process.versions.node.split('.')[0]) < 24);
    expect(await promiseHooksOn()).toBe(false);
    // And on again for the next one.
    const again = await loop.run(async () => await promiseHooksOn());
    expect(again).toBe(during);
    expect(await promiseHooksOn()).toBe(false);
  });
});
