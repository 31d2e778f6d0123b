/**
 * The generator lessons of the notes (sections 11.6 - 11.9), in TypeScript:
 * Python's gen.send(v) / gen.throw(e) / gen.close() are gen.next(v) /
 * gen.throw(e) / gen.return(), and `yield from` is `yield*`.
 */
import { describe, expect, it } from 'vitest';

import { type Coroutine, Future, sleep } from '../src/coro/index.js';
import { testLoop } from './helpers/loops.js';

describe('11.6 send, close and throw', () => {
  // def gen_func(): html = yield "http://projectsedu.com"; print(html); return "bobby"
  function* genFunc(log: string[]): Generator<string, string, string> {
    const html = yield 'http://projectsedu.com';
    log.push(html);
    return 'bobby';
  }

  it('send: start with next() (send(None)), then send a value in; the return value ends it', () => {
    const log: string[] = [];
    const gen = genFunc(log);
    const url = gen.next().value; // gen.send(None)
    expect(url).toBe('http://projectsedu.com');
    // gen.send(html): the value becomes the yield expression's value;
    // Python raises StopIteration("bobby"), JavaScript reports done.
    expect(gen.next('bobby')).toEqual({ done: true, value: 'bobby' });
    expect(log).toEqual(['bobby']);
    expect(gen.next('again')).toEqual({ done: true, value: undefined });
  });

  it('throw: the exception appears at the paused yield; a caught one lets it go on', () => {
    // try: yield "http://projectsedu.com" except Exception: pass; yield 2; yield 3; return "bobby"
    function* gen(): Generator<string | number, string, unknown> {
      try {
        yield 'http://projectsedu.com';
      } catch {
        // the notes' `except Exception: pass`
      }
      yield 2;
      yield 3;
      return 'bobby';
    }
    const g = gen();
    expect(g.next().value).toBe('http://projectsedu.com');
    expect(g.throw(new Error('download error'))).toEqual({ done: false, value: 2 });
    expect(() => g.throw(new Error('download error'))).toThrow('download error');
    expect(g.next()).toEqual({ done: true, value: undefined });
  });

  it('close is return(): it runs finally blocks only; catch cannot stop it (Python: GeneratorExit)', () => {
    const log: string[] = [];
    function* gen(): Generator<string | number, string, unknown> {
      try {
        yield 'http://projectsedu.com';
      } catch {
        log.push('caught'); // GeneratorExit would land here in Python; return() never does
      } finally {
        log.push('finally');
      }
      yield 2;
      return 'bobby';
    }
    const g = gen();
    g.next();
    expect(g.return('closed')).toEqual({ done: true, value: 'closed' });
    expect(log).toEqual(['finally']);
    expect(g.next()).toEqual({ done: true, value: undefined });
  });

  it('a finally that yields keeps the generator alive after return() (Python: "generator ignored GeneratorExit")', () => {
    function* stubborn(): Generator<number, void, unknown> {
      try {
        yield 1;
      } finally {
        yield 2;
      }
    }
    const g = stubborn();
    g.next();
    expect(g.return()).toEqual({ done: false, value: 2 });
    expect(g.next()).toEqual({ done: true, value: undefined });
  });
});

describe('11.7 yield from (yield*)', () => {
  it('g1 yields the iterable itself; g2 delegates to it', () => {
    function* g1<T>(iterable: Iterable<T>): Generator<Iterable<T>> {
      yield iterable;
    }
    function* g2<T>(iterable: Iterable<T>): Generator<T> {
      yield* iterable;
    }
    const range = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
    expect([...g1(range)]).toEqual([range]);
    expect([...g2(range)]).toEqual(range);
  });

  it('my_chain chains a list, a dict (its keys, as in Python) and a range', () => {
    function* myChain(...iterables: Iterable<unknown>[]): Generator<unknown> {
      for (const iterable of iterables) yield* iterable;
    }
    const myList = [1, 2, 3];
    const myDict = new Map([
      ['bobby1', 'http://projectsedu.com'],
      ['bobby2', 'http://www.imooc.com'],
    ]);
    const range = (a: number, b: number): number[] => Array.from({ length: b - a }, (_, i) => a + i);
    expect([...myChain(myList, myDict.keys(), range(5, 10))]).toEqual([1, 2, 3, 'bobby1', 'bobby2', 5, 6, 7, 8, 9]);
  });

  it('the sales_sum / middle example: a two-way channel, and the return value of yield*', () => {
    const finalResult: Record<string, [number, number[]]> = {};
    const log: string[] = [];

    // def sales_sum(pro_name): ... x = yield ... return total, nums
    function* salesSum(proName: string): Generator<undefined, [number, number[]], number | undefined> {
      let total = 0;
      const nums: number[] = [];
      for (;;) {
        const x = yield;
        log.push(`${proName}销量: ${x}`);
        if (!x) break;
        total += x;
        nums.push(x);
      }
      return [total, nums];
    }

    // def middle(key): while True: final_result[key] = yield from sales_sum(key)
    function* middle(key: string): Generator<undefined, never, number | undefined> {
      for (;;) {
        finalResult[key] = yield* salesSum(key);
        log.push(`${key}销量统计完成!!.`);
      }
    }

    const dataSets: Record<string, number[]> = {
      bobby牌面膜: [1200, 1500, 3000],
      bobby牌手机: [28, 55, 98, 108],
      bobby牌大衣: [280, 560, 778, 70],
    };
    for (const [key, dataSet] of Object.entries(dataSets)) {
      const m = middle(key);
      m.next(); // 预激 middle 协程 (m.send(None))
      for (const value of dataSet) m.next(value); // 发送到子生成器里
      m.next(undefined); // m.send(None): ends sales_sum, middle stores its result
    }
    expect(finalResult).toEqual({
      bobby牌面膜: [5700, [1200, 1500, 3000]],
      bobby牌手机: [289, [28, 55, 98, 108]],
      bobby牌大衣: [1688, [280, 560, 778, 70]],
    });
    expect(log).toContain('bobby牌手机销量统计完成!!.');
  });

  it('sales_sum driven by hand: the return value rides on the final result (Python: StopIteration.value)', () => {
    function* salesSum(): Generator<undefined, [number, number[]], number | undefined> {
      let total = 0;
      const nums: number[] = [];
      for (;;) {
        const x = yield;
        if (!x) break;
        total += x;
        nums.push(x);
      }
      return [total, nums];
    }
    const g = salesSum();
    g.next();
    g.next(1200);
    g.next(1500);
    g.next(3000);
    expect(g.next(undefined)).toEqual({ done: true, value: [5700, [1200, 1500, 3000]] });
  });
});

describe('11.8 PEP 380: how yield from works', () => {
  it('values the delegate yields go straight to the caller; values sent go straight to the delegate', () => {
    const got: unknown[] = [];
    function* delegate(): Generator<string, string, string> {
      got.push(yield 'a');
      got.push(yield 'b');
      return 'r';
    }
    function* delegating(): Generator<string, string, string> {
      const r = yield* delegate();
      return `${r}!`;
    }
    const g = delegating();
    expect(g.next().value).toBe('a');
    expect(g.next('x').value).toBe('b');
    expect(g.next('y')).toEqual({ done: true, value: 'r!' });
    expect(got).toEqual(['x', 'y']);
  });

  it('throw into the delegating generator is forwarded to the delegate, which may handle it', () => {
    function* delegate(): Generator<string, string, unknown> {
      try {
        yield 'waiting';
      } catch (e) {
        return `handled ${(e as Error).message}`; // StopIteration from throw: resumes the delegating one
      }
      return 'no';
    }
    function* delegating(): Generator<string, string, unknown> {
      const r = yield* delegate();
      yield `after: ${r}`;
      return 'end';
    }
    const g = delegating();
    g.next();
    expect(g.throw(new Error('boom'))).toEqual({ done: false, value: 'after: handled boom' });
  });

  it('an exception the delegate does not handle bubbles up through the delegating generator', () => {
    function* delegate(): Generator<number, void, unknown> {
      yield 1;
    }
    function* delegating(): Generator<number, string, unknown> {
      try {
        yield* delegate();
      } catch (e) {
        return `delegating saw ${(e as Error).message}`;
      }
      return 'no';
    }
    const g = delegating();
    g.next();
    expect(g.throw(new Error('up'))).toEqual({ done: true, value: 'delegating saw up' });
  });

  it('close (return) of the delegating generator closes the delegate first', () => {
    const log: string[] = [];
    function* delegate(): Generator<number, void, unknown> {
      try {
        yield 1;
      } finally {
        log.push('delegate closed');
      }
    }
    function* delegating(): Generator<number, void, unknown> {
      try {
        yield* delegate();
      } finally {
        log.push('delegating closed');
      }
    }
    const g = delegating();
    g.next();
    g.return();
    expect(log).toEqual(['delegate closed', 'delegating closed']);
  });

  it('a delegate that is a plain iterator without throw(): it is closed, and a TypeError is raised', () => {
    let closed = false;
    const plain: Iterator<number> & Iterable<number> = {
      next: () => ({ done: false, value: 1 }),
      return: () => {
        closed = true;
        return { done: true, value: undefined };
      },
      [Symbol.iterator]() {
        return this;
      },
    };
    function* delegating(): Generator<number, void, unknown> {
      yield* plain;
    }
    const g = delegating();
    g.next();
    expect(() => g.throw(new Error('x'))).toThrow(TypeError);
    expect(closed).toBe(true);
  });
});

describe('11.9 - 11.10 async/await and generator coroutines on the loop', () => {
  it('async def downloader / await downloader(url)', async () => {
    async function downloader(_url: string): Promise<string> {
      return 'bobby';
    }
    async function downloadUrl(url: string): Promise<string> {
      const html = await downloader(url);
      return html;
    }
    await expect(downloadUrl('http://www.imooc.com')).resolves.toBe('bobby');
  });

  it('@types.coroutine downloader: a generator coroutine the loop drives; a Future is both yield*-able and awaitable', async () => {
    const loop = testLoop('epoll');
    function* downloader(_url: string): Coroutine<string> {
      yield* sleep(1); // the loop pauses it here and resumes it later
      return 'bobby';
    }
    function* downloadUrl(url: string): Coroutine<string> {
      const html = yield* downloader(url);
      return html;
    }
    const task = loop.createTask(downloadUrl('http://www.imooc.com'));
    expect(loop.runUntilComplete(task)).toBe('bobby');
    expect(task).toBeInstanceOf(Future);
    await expect(task).resolves.toBe('bobby');
  });
});
