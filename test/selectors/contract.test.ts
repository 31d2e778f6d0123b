/**
 * The selector contract (CPython's BaseSelectorTestCase), run over every
 * backend on real kernel objects.
 */
import { describe, expect, it } from 'vitest';

import {
  type BaseSelector,
  EpollSelector,
  EVENT_READ,
  EVENT_WRITE,
  PollSelector,
  SelectorClosedError,
  SelectorKeyError,
  SelectSelector,
  UringSelector,
} from '../../src/selectors/index.js';
import { close, eventfd, IoUring } from '../../src/sys/index.js';
import { testEventfd, testPipe, testSocketpair, trackClosable } from '../helpers/fds.js';
import { watchdog } from '../helpers/watchdog.js';

const BACKENDS = [
  ['SelectSelector', () => new SelectSelector<unknown>()],
  ['PollSelector', () => new PollSelector<unknown>()],
  ['EpollSelector', () => new EpollSelector<unknown>()],
  ...(IoUring.available() ? ([['UringSelector', () => new UringSelector<unknown>()]] as const) : []),
] as const;

describe.each(BACKENDS)('%s', (_name, make) => {
  function selector(): BaseSelector<unknown> {
    return trackClosable(make());
  }

  describe('register / getKey / getMap', () => {
    it('returns a key with the fileobj, fd, events and data', () => {
      const sel = selector();
      const [a] = testSocketpair();
      const key = sel.register(a, EVENT_READ, 'data');
      expect(key).toMatchObject({ fileobj: a, fd: a.fileno(), events: EVENT_READ, data: 'data' });
      expect(sel.getKey(a)).toBe(key);
      expect(sel.getKey(a.fileno())).toBe(key);
      const efd = testEventfd();
      const k2 = sel.register(efd, EVENT_READ | EVENT_WRITE);
      expect(k2).toMatchObject({ fileobj: efd, fd: efd, events: 3, data: undefined });
    });

    it('getMap is a live read-only view: fileobj -> key', () => {
      const sel = selector();
      const [a, b] = testSocketpair();
      const map = sel.getMap();
      expect(map.size).toBe(0);
      const ka = sel.register(a, EVENT_READ);
      const kb = sel.register(b, EVENT_WRITE);
      expect(map.size).toBe(2);
      expect(map.get(a)).toBe(ka);
      expect(map.has(b)).toBe(true);
      expect(map.has(12345)).toBe(false);
      expect(new Set(map.values())).toEqual(new Set([ka, kb]));
      expect(new Set(map.keys())).toEqual(new Set([a, b]));
      expect([...map].length).toBe(2);
      sel.unregister(a);
      expect(map.size).toBe(1);
      expect(map.get(a)).toBeUndefined();
      expect('set' in map).toBe(false);
    });

    it('refuses a duplicate register, by object or by fd, and changes nothing', () => {
      const sel = selector();
      const [a] = testSocketpair();
      const key = sel.register(a, EVENT_READ, 1);
      for (const again of [a, a.fileno()]) {
        expect(() => sel.register(again, EVENT_WRITE, 2)).toThrow(
          expect.objectContaining({
            name: 'SelectorKeyError',
            code: 'ERR_ALREADY_REGISTERED',
            message: expect.stringContaining(`fd ${a.fileno()}`),
          }),
        );
      }
      expect(sel.getKey(a)).toBe(key);
      expect(sel.size).toBe(1);
    });

    it('refuses bad events, negative fds and non-files, and changes nothing', () => {
      const sel = selector();
      const efd = testEventfd(1);
      for (const events of [0, 4, -1, 1.5, Number.NaN, '1' as unknown as number]) {
        expect(() => sel.register(efd, events), String(events)).toThrow(
          expect.objectContaining({ name: 'RangeError', code: 'ERR_INVALID_EVENTS' }),
        );
      }
      expect(() => sel.register(-1, EVENT_READ)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
      expect(() => sel.register({ fileno: () => -1 }, EVENT_READ)).toThrow(RangeError);
      expect(() => sel.register({} as unknown as number, EVENT_READ)).toThrow(
        expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }),
      );
      expect(() => sel.register({ fileno: () => 'x' } as unknown as number, EVENT_READ)).toThrow(TypeError);
      expect(sel.size).toBe(0);
      expect(sel.select(0)).toEqual([]);
    });
  });

  describe('unregister / modify', () => {
    it('unregister returns the key and stops reporting the file', () => {
      const sel = selector();
      const efd = testEventfd(1);
      const key = sel.register(efd, EVENT_READ);
      expect(sel.select(0)).toEqual([[key, EVENT_READ]]);
      expect(sel.unregister(efd)).toBe(key);
      expect(sel.select(0)).toEqual([]);
      expect(() => sel.getKey(efd)).toThrow(expect.objectContaining({ code: 'ERR_NOT_REGISTERED' }));
    });

    it('unregister of an unknown file is ERR_NOT_REGISTERED', () => {
      const sel = selector();
      expect(() => sel.unregister(testEventfd())).toThrow(SelectorKeyError);
      expect(() => sel.unregister(testEventfd())).toThrow(expect.objectContaining({ code: 'ERR_NOT_REGISTERED' }));
    });

    it('unregister works after the file was closed, given the same object', () => {
      const sel = selector();
      const [a, b] = testSocketpair();
      const other = testEventfd(1);
      sel.register(a, EVENT_READ);
      sel.register(b, EVENT_READ);
      const ko = sel.register(other, EVENT_READ);
      a.close();
      sel.unregister(a);
      // By number too: the kernel forgot the fd when it was closed.
      const fd = eventfd();
      sel.register(fd, EVENT_READ);
      close(fd);
      sel.unregister(fd);
      expect(sel.size).toBe(2);
      expect(sel.select(0)).toContainEqual([ko, EVENT_READ]);
    });

    it('modify changes events and data; same events change only the data', () => {
      const sel = selector();
      const [a] = testSocketpair();
      sel.register(a, EVENT_READ, 'r');
      expect(sel.select(0)).toEqual([]);
      const k2 = sel.modify(a, EVENT_WRITE, 'w');
      expect(k2).toMatchObject({ events: EVENT_WRITE, data: 'w' });
      expect(sel.select(0)).toEqual([[k2, EVENT_WRITE]]);
      const k3 = sel.modify(a, EVENT_WRITE, 'w2');
      expect(k3).not.toBe(k2);
      expect(sel.getKey(a)).toBe(k3);
      expect(sel.select(0)).toEqual([[k3, EVENT_WRITE]]);
    });

    it('a data-only modify makes no syscall (it works even on a closed fd)', () => {
      const sel = selector();
      const [a] = testSocketpair();
      sel.register(a, EVENT_WRITE, 1);
      const fd = a.fileno();
      a.close();
      // A syscall on the closed fd would fail (EBADF): none is made.
      expect(sel.modify(a, EVENT_WRITE, 2)).toMatchObject({ fd, data: 2 });
      sel.unregister(a);
    });

    it('modify of an unknown file or with bad events throws and changes nothing', () => {
      const sel = selector();
      const efd = testEventfd(1);
      const key = sel.register(efd, EVENT_READ, 'x');
      expect(() => sel.modify(testEventfd(), EVENT_READ)).toThrow(
        expect.objectContaining({ code: 'ERR_NOT_REGISTERED' }),
      );
      expect(() => sel.modify(efd, 0)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_EVENTS' }));
      expect(() => sel.modify(efd, 8)).toThrow(RangeError);
      expect(sel.getKey(efd)).toBe(key);
      expect(sel.select(0)).toEqual([[key, EVENT_READ]]);
    });
  });

  describe('select', () => {
    it('reports readable and writable files, masked to what each asked for', () => {
      const sel = selector();
      const [a, b] = testSocketpair();
      const ka = sel.register(a, EVENT_READ | EVENT_WRITE);
      const kb = sel.register(b, EVENT_READ);
      expect(sel.select(0)).toEqual([[ka, EVENT_WRITE]]);
      a.send('x');
      const ready = new Map(sel.select(0));
      expect(ready.get(ka)).toBe(EVENT_WRITE);
      expect(ready.get(kb)).toBe(EVENT_READ);
      b.send('y');
      expect(new Map(sel.select(0)).get(ka)).toBe(EVENT_READ | EVENT_WRITE);
    });

    it('a peer that hung up makes the file readable (EOF)', () => {
      const sel = selector();
      const [r, w] = testPipe();
      const key = sel.register(r, EVENT_READ);
      close(w);
      expect(sel.select(0)).toEqual([[key, EVENT_READ]]);
    });

    it('forEachReady visits each ready key without building a list', () => {
      const sel = selector();
      const fds = [testEventfd(1), testEventfd(0), testEventfd(1)];
      for (const fd of fds) sel.register(fd, EVENT_READ, fd);
      const seen: unknown[] = [];
      expect(sel.forEachReady(0, (key, events) => seen.push([key.data, events]))).toBe(2);
      expect(seen.sort()).toEqual(
        [
          [fds[0], EVENT_READ],
          [fds[2], EVENT_READ],
        ].sort(),
      );
    });

    it('timeouts: <= 0 polls, fractions round up, null waits for readiness', () => {
      const sel = selector();
      const idle = testEventfd(0);
      sel.register(idle, EVENT_READ);
      // A select that waited past its timeout (for readiness, with no limit)
      // would return the watchdog after 10 s instead of nothing: that a poll
      // did not wait needs no clock to prove.
      sel.register(watchdog(), EVENT_READ);
      expect(sel.select(0)).toEqual([]);
      expect(sel.select(-5)).toEqual([]);
      // Lower bounds are behaviour: a fraction is not truncated to a poll.
      let t0 = performance.now();
      expect(sel.select(0.2)).toEqual([]);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(0.9);
      t0 = performance.now();
      expect(sel.select(30)).toEqual([]);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(29);
      const efd = testEventfd(1);
      const key = sel.register(efd, EVENT_READ);
      expect(sel.select(null)).toEqual([[key, EVENT_READ]]);
      expect(sel.select()).toEqual([[key, EVENT_READ]]);
      expect(() => sel.select(Number.NaN)).toThrow(RangeError);
      expect(() => sel.select('1' as unknown as number)).toThrow(TypeError);
    });

    it('watches 500 files and reports the one that is ready', () => {
      const sel = selector();
      const fds = Array.from({ length: 500 }, () => testEventfd(0));
      for (const fd of fds) sel.register(fd, EVENT_READ);
      const ready = testEventfd(1);
      const key = sel.register(ready, EVENT_READ);
      expect(sel.select(0)).toEqual([[key, EVENT_READ]]);
    });
  });

  describe('close', () => {
    it('close() is idempotent and every later use throws SelectorClosedError', () => {
      const sel = make();
      const efd = testEventfd(1);
      sel.register(efd, EVENT_READ);
      sel.close();
      sel.close();
      expect(sel.closed).toBe(true);
      for (const call of [
        () => sel.register(efd, EVENT_READ),
        () => sel.unregister(efd),
        () => sel.modify(efd, EVENT_READ),
        () => sel.select(0),
        () => sel.getKey(efd),
        () => sel.getMap(),
      ]) {
        expect(call).toThrow(SelectorClosedError);
        expect(call).toThrow(expect.objectContaining({ code: 'ERR_SELECTOR_CLOSED' }));
      }
    });

    it('using disposes it', () => {
      let outer: BaseSelector<unknown> | undefined;
      {
        using sel = make();
        outer = sel;
        sel.register(testEventfd(), EVENT_READ);
      }
      expect(outer.closed).toBe(true);
    });
  });
});
