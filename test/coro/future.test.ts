import { describe, expect, it } from 'vitest';

import { CancelledError, Future, InvalidStateError, LoopStateError } from '../../src/coro/index.js';
import { testLoop } from '../helpers/loops.js';

describe('Future', () => {
  it('needs a loop: given, or the running one', () => {
    expect(() => new Future()).toThrow(LoopStateError);
    expect(() => new Future()).toThrow(expect.objectContaining({ code: 'ERR_NO_RUNNING_LOOP' }));
    const loop = testLoop('epoll');
    expect(new Future(loop).loop).toBe(loop);
    loop.callSoon(() => {
      expect(new Future().loop).toBe(loop);
      loop.stop();
    });
    loop.runForever();
  });

  it('states: pending, finished with a result or an exception, cancelled', () => {
    const loop = testLoop('epoll');
    const f = loop.createFuture<number>();
    expect(f.done()).toBe(false);
    expect(() => f.result()).toThrow(InvalidStateError);
    expect(() => f.exception()).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }));
    f.setResult(7);
    expect(f.done()).toBe(true);
    expect(f.result()).toBe(7);
    expect(f.exception()).toBeNull();
    expect(() => f.setResult(8)).toThrow(InvalidStateError);
    expect(() => f.setException(new Error())).toThrow(InvalidStateError);
    expect(f.cancel()).toBe(false);

    const e = loop.createFuture();
    const boom = new Error('boom');
    e.setException(boom);
    expect(e.exception()).toBe(boom);
    expect(() => e.result()).toThrow(boom);

    const c = loop.createFuture();
    expect(c.cancel('why')).toBe(true);
    expect(c.cancelled()).toBe(true);
    expect(() => c.result()).toThrow(CancelledError);
    expect(() => c.exception()).toThrow('why');
    expect(() => loop.createFuture().setException(new CancelledError())).toThrow(TypeError);
  });

  it('done callbacks run through the loop, in order, never inside setResult', () => {
    const loop = testLoop('epoll');
    const f = loop.createFuture<string>();
    const calls: string[] = [];
    const removed = (): void => {
      calls.push('removed');
    };
    f.addDoneCallback((fut) => calls.push(`1:${fut.result()}`));
    f.addDoneCallback(removed);
    f.addDoneCallback((fut) => calls.push(`2:${fut.result()}`));
    expect(f.removeDoneCallback(removed)).toBe(1);
    f.setResult('x');
    expect(calls).toEqual([]);
    loop.callSoon(() => {
      f.addDoneCallback(() => {
        calls.push('late');
        loop.stop();
      });
    });
    loop.runForever();
    expect(calls).toEqual(['1:x', '2:x', 'late']);
  });

  it('a throwing done callback is reported and the next ones still run; once done, removeDoneCallback finds none', () => {
    const loop = testLoop('epoll');
    const reports: string[] = [];
    loop.setExceptionHandler((_loop, context) => reports.push(context.message));
    const f = loop.createFuture<number>();
    const calls: string[] = [];
    const second = (): void => {
      calls.push('second');
    };
    f.addDoneCallback(function thrower() {
      calls.push('first');
      throw new Error('boom');
    });
    f.addDoneCallback(second);
    f.addDoneCallback(() => {
      calls.push('third');
      loop.stop();
    });
    f.setResult(1);
    expect(f.removeDoneCallback(second)).toBe(0);
    expect(String(f)).toBe('Future <finished>');
    loop.runForever();
    expect(calls).toEqual(['first', 'second', 'third']);
    expect(reports).toEqual(['Exception in callback thrower']);
  });

  it('is iterable: yield* gives the result, or throws the exception at that point', () => {
    const loop = testLoop('epoll');
    const ok = loop.createFuture<number>();
    ok.setResult(5);
    const it1 = ok[Symbol.iterator]();
    expect(it1.next()).toEqual({ done: true, value: 5 });
    const pending = loop.createFuture<number>();
    const it2 = pending[Symbol.iterator]();
    const first = it2.next();
    expect(first.done).toBe(false);
    expect(first.value).toBe(pending);
    pending.setResult(6);
    expect(it2.next()).toEqual({ done: true, value: 6 });
  });

  it('is thenable: await works once the loop runs the callbacks', async () => {
    const loop = testLoop('epoll');
    const f = loop.createFuture<number>();
    const p = f.then((v) => v * 2);
    loop.callSoon(() => f.setResult(21));
    loop.callSoon(() => loop.stop());
    loop.runForever();
    loop.callSoon(() => loop.stop());
    loop.runForever();
    expect(await p).toBe(42);
    const failed = loop.createFuture();
    failed.setException(new Error('nope'));
    await expect(failed).rejects.toThrow('nope');
    const cancelled = loop.createFuture();
    cancelled.cancel();
    await expect(cancelled).rejects.toBeInstanceOf(CancelledError);
  });

  it('an exception nobody retrieved is reported when the loop closes; a retrieved one is not', () => {
    const loop = testLoop('epoll');
    const reports: [string, unknown][] = [];
    loop.setExceptionHandler((_l, ctx) => reports.push([ctx.message, ctx.exception]));
    const lost = new Error('lost');
    const seen = new Error('seen');
    loop.createFuture().setException(lost);
    const f = loop.createFuture();
    f.setException(seen);
    f.exception();
    loop.close();
    expect(reports).toEqual([['Future exception was never retrieved', lost]]);
  });
});
