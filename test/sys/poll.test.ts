import { describe, expect, it } from 'vitest';

import { close, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLPRI, Poll } from '../../src/sys/index.js';
import { native } from '../../src/sys/native.js';
import { signalEventfd, testEventfd, testPipe, testSocketpair, trackClosable } from '../helpers/fds.js';
import { expectResumesAfterSignal, waitThroughSignal } from '../helpers/signals.js';
import { watchdog } from '../helpers/watchdog.js';

function newPoll(): Poll {
  return trackClosable(new Poll());
}

describe('Poll', () => {
  it('reports registered fds that are ready, with their revents', () => {
    const p = newPoll();
    const ready = testEventfd(1);
    const idle = testEventfd(0);
    p.register(ready, POLLIN);
    p.register(idle, POLLIN);
    expect(p.size).toBe(2);
    expect(p.poll(0)).toEqual([[ready, POLLIN]]);
  });

  it('defaults to POLLIN | POLLPRI | POLLOUT and takes objects with fileno()', () => {
    const p = newPoll();
    const [a] = testSocketpair();
    p.register(a);
    expect(p.poll(0)).toEqual([[a.fileno(), POLLOUT]]);
  });

  it('register() on a registered fd changes its events, as Python does', () => {
    const p = newPoll();
    const efd = testEventfd(1);
    p.register(efd, POLLOUT);
    p.register(efd, POLLIN);
    expect(p.size).toBe(1);
    expect(p.poll(0)).toEqual([[efd, POLLIN]]);
  });

  it('modify() changes events; unregister() stops watching', () => {
    const p = newPoll();
    const efd = testEventfd(1);
    p.register(efd, POLLPRI);
    expect(p.poll(0)).toEqual([]);
    p.modify(efd, POLLIN);
    expect(p.poll(0)).toEqual([[efd, POLLIN]]);
    p.unregister(efd);
    expect(p.size).toBe(0);
    expect(p.poll(0)).toEqual([]);
  });

  it('keeps every other registration when one in the middle is removed', () => {
    const p = newPoll();
    const fds = Array.from({ length: 5 }, () => testEventfd(1));
    for (const fd of fds) p.register(fd, POLLIN);
    p.unregister(fds[1] as number);
    p.unregister(fds[3] as number);
    const got = p.poll(0).map(([fd]) => fd);
    expect(got.sort()).toEqual([fds[0], fds[2], fds[4]].sort());
  });

  it('reports POLLHUP when the peer closes and POLLNVAL for a closed fd', () => {
    const p = newPoll();
    const [r, w] = testPipe();
    p.register(r, POLLIN);
    close(w);
    expect(p.poll(0)).toEqual([[r, POLLHUP]]);
    const efd = testEventfd(0);
    p.register(efd, POLLIN);
    close(efd);
    expect(p.poll(0)).toContainEqual([efd, POLLNVAL]);
  });

  it('waits until an fd becomes ready', () => {
    const p = newPoll();
    const [a, b] = testSocketpair();
    p.register(b, POLLIN);
    a.send('hi');
    expect(p.poll(1000)).toEqual([[b.fileno(), POLLIN]]);
  });

  it('watches 1,000 fds and reports just the ready one', () => {
    const p = newPoll();
    const fds = Array.from({ length: 1000 }, () => testEventfd(0));
    for (const fd of fds) p.register(fd, POLLIN);
    signalEventfd(fds[777] as number);
    expect(p.poll(0)).toEqual([[fds[777], POLLIN]]);
  });

  it('wait() fills the poll\u2019s own events array, which grows with the set', () => {
    const p = newPoll();
    const fds = Array.from({ length: 100 }, () => testEventfd(1));
    for (const fd of fds) p.register(fd, POLLIN);
    expect(p.pollInto(0)).toBe(100);
    const events = p.events;
    expect(events.length).toBeGreaterThanOrEqual(200);
    const seen: number[] = [];
    for (let i = 0; i < 100; i++) {
      seen.push(events[2 * i] as number);
      expect(events[2 * i + 1]).toBe(POLLIN);
    }
    expect(seen.sort()).toEqual([...fds].sort());
  });

  it('the grown events array reaches the poll whatever receiver the native ctl was called with', () => {
    // The native functions are bound to their core, so an unbound call must
    // still hand the caller the array that wait() fills from then on.
    const core = native.createPoll();
    trackClosable(core);
    const ctl = core.ctl;
    const fds = Array.from({ length: 40 }, () => testEventfd(1));
    let events = core.events;
    for (const fd of fds) events = ctl.call(undefined, 1, fd, POLLIN) ?? events;
    expect(events.length).toBeGreaterThanOrEqual(80);
    expect(core.wait(0)).toBe(40);
    const seen = Array.from({ length: 40 }, (_, i) => events[2 * i] as number);
    expect(seen.sort()).toEqual([...fds].sort());
    expect('events' in globalThis).toBe(false);
  });

  it('pollInto() writes (fd, revents) pairs into a caller array without allocating results', () => {
    const p = newPoll();
    const efd = testEventfd(1);
    p.register(efd, POLLIN);
    const out = new Int32Array(2);
    expect(p.pollInto(0, out)).toBe(1);
    expect([...out]).toEqual([efd, POLLIN]);
    p.register(testEventfd(1), POLLIN);
    expect(() => p.pollInto(0, out)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => p.pollInto(0, new Float64Array(4) as unknown as Int32Array)).toThrow(TypeError);
  });

  it('times out after about the timeout; negative and null block', () => {
    const p = newPoll();
    p.register(testEventfd(0), POLLIN);
    // A poll that ignored its timeout would report the watchdog (10 s).
    p.register(watchdog(), POLLIN);
    const t0 = performance.now();
    expect(p.poll(30)).toEqual([]);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(29);
    const efd = testEventfd(1);
    p.register(efd, POLLIN);
    expect(p.poll(-1)).toEqual([[efd, POLLIN]]);
    expect(p.poll(null)).toEqual([[efd, POLLIN]]);
  });

  describe('bad input: a clear error and the set unchanged', () => {
    it('unknown fd in modify/unregister is ENOENT', () => {
      const p = newPoll();
      const efd = testEventfd(1);
      p.register(efd, POLLIN);
      expect(() => p.modify(efd + 100, POLLIN)).toThrow(
        expect.objectContaining({ name: 'OSError', code: 'ENOENT', syscall: 'poll.modify' }),
      );
      expect(() => p.unregister(efd + 100)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
      expect(p.poll(0)).toEqual([[efd, POLLIN]]);
    });

    it('events outside POLL* bits, negative or fractional fds, non-fds', () => {
      const p = newPoll();
      const efd = testEventfd(1);
      p.register(efd, POLLIN);
      expect(() => p.register(efd, 0x10000)).toThrow(RangeError);
      expect(() => p.register(efd, 0x8000)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
      expect(() => p.modify(efd, -1)).toThrow(RangeError);
      expect(() => p.register(-1, POLLIN)).toThrow(RangeError);
      expect(() => p.register(2.5, POLLIN)).toThrow(RangeError);
      expect(() => p.register({} as unknown as number, POLLIN)).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
      );
      expect(() => p.poll(Number.NaN)).toThrow(RangeError);
      expect(() => p.poll('1' as unknown as number)).toThrow(TypeError);
      expect(p.size).toBe(1);
      expect(p.poll(0)).toEqual([[efd, POLLIN]]);
    });

    it('a closed Poll raises EBADF on every method; close() is idempotent', () => {
      const p = new Poll();
      p.register(testEventfd(1), POLLIN);
      p.close();
      p.close();
      expect(p.closed).toBe(true);
      expect(p.size).toBe(0);
      for (const call of [
        () => p.poll(0),
        () => p.register(0, POLLIN),
        () => p.modify(0, POLLIN),
        () => p.unregister(0),
      ]) {
        expect(call).toThrow(expect.objectContaining({ code: 'EBADF' }));
      }
    });
  });

  it('resumes after a signal (EINTR) and still honours its timeout', async () => {
    const p = newPoll();
    p.register(testEventfd(0), POLLIN);
    await expectResumesAfterSignal((marker) => {
      p.register(marker, POLLIN);
      return (ms) => p.poll(ms);
    }, []);
  });

  it('reports readiness that arrives after a signal interrupted it', async () => {
    const p = newPoll();
    const [r, w] = testPipe();
    p.register(r, POLLIN);
    expect(await waitThroughSignal((ms) => p.poll(ms), w)).toEqual([[r, POLLIN]]);
  });
});
