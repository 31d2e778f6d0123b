import { describe, expect, it } from 'vitest';

import {
  close,
  EPOLL_CLOEXEC,
  EPOLL_EVENT_FD_INDEX,
  EPOLL_EVENT_INTS,
  EPOLLERR,
  EPOLLET,
  EPOLLHUP,
  EPOLLIN,
  EPOLLOUT,
  EPOLLPRI,
  Epoll,
  eventfd,
  POLLIN,
  Poll,
} from '../../src/sys/index.js';
import {
  FDINFO_CLOEXEC,
  fdFlags,
  signalEventfd,
  testEventfd,
  testPipe,
  testSocketpair,
  track,
  trackClosable,
} from '../helpers/fds.js';
import { expectResumesAfterSignal, waitThroughSignal } from '../helpers/signals.js';

function newEpoll(): Epoll {
  return trackClosable(new Epoll());
}

describe('Epoll', () => {
  it('has a CLOEXEC fd of its own per instance', () => {
    const a = newEpoll();
    const b = newEpoll();
    expect(a.fileno()).not.toBe(b.fileno());
    expect(fdFlags(a.fileno()) & FDINFO_CLOEXEC).toBe(FDINFO_CLOEXEC);
  });

  it('reports ready fds with their events', () => {
    const ep = newEpoll();
    const ready = testEventfd(1);
    const idle = testEventfd(0);
    ep.register(ready, EPOLLIN);
    ep.register(idle, EPOLLIN);
    expect(ep.poll(0)).toEqual([[ready, EPOLLIN]]);
  });

  it('defaults to EPOLLIN | EPOLLPRI | EPOLLOUT and takes objects with fileno()', () => {
    const ep = newEpoll();
    const [a] = testSocketpair();
    ep.register(a);
    expect(ep.poll(0)).toEqual([[a.fileno(), EPOLLOUT]]);
  });

  it('modify() and unregister()', () => {
    const ep = newEpoll();
    const efd = testEventfd(1);
    ep.register(efd, EPOLLPRI);
    expect(ep.poll(0)).toEqual([]);
    ep.modify(efd, EPOLLIN);
    expect(ep.poll(0)).toEqual([[efd, EPOLLIN]]);
    ep.unregister(efd);
    expect(ep.poll(0)).toEqual([]);
  });

  it('reports EPOLLHUP when the write end of a pipe closes', () => {
    const ep = newEpoll();
    const [r, w] = testPipe();
    ep.register(r, EPOLLIN);
    close(w);
    expect(ep.poll(0)).toEqual([[r, EPOLLHUP]]);
  });

  it('reports EPOLLERR | EPOLLOUT on a write end whose reader closed', () => {
    const ep = newEpoll();
    const [r, w] = testPipe();
    ep.register(w, EPOLLOUT);
    close(r);
    expect(ep.poll(0)).toEqual([[w, EPOLLOUT | EPOLLERR]]);
  });

  it('edge-triggered mode reports once per change; EPOLLET is the sign bit and read as unsigned', () => {
    const ep = newEpoll();
    const efd = testEventfd(1);
    expect(EPOLLET).toBe(2 ** 31);
    ep.register(efd, EPOLLIN | EPOLLET);
    expect(ep.poll(0)).toEqual([[efd, EPOLLIN]]);
    expect(ep.poll(0)).toEqual([]);
    signalEventfd(efd);
    expect(ep.poll(0)).toEqual([[efd, EPOLLIN]]);
  });

  it('pollInto() lets the kernel write epoll_event records straight into an Int32Array', () => {
    const ep = newEpoll();
    const a = testEventfd(1);
    const b = testEventfd(1);
    ep.register(a, EPOLLIN);
    ep.register(b, EPOLLIN);
    const out = new Int32Array(8 * EPOLL_EVENT_INTS);
    const n = ep.pollInto(0, out);
    expect(n).toBe(2);
    const got = [];
    for (let i = 0; i < n; i++) {
      got.push([out[i * EPOLL_EVENT_INTS + EPOLL_EVENT_FD_INDEX], out[i * EPOLL_EVENT_INTS]]);
    }
    expect(got.sort()).toEqual(
      [
        [a, EPOLLIN],
        [b, EPOLLIN],
      ].sort(),
    );
    // maxevents is the array's record count: one record gives one event.
    expect(ep.pollInto(0, new Int32Array(EPOLL_EVENT_INTS))).toBe(1);
    expect(ep.poll(0, 1)).toHaveLength(1);
  });

  it('pollInto() without an array fills the epoll\u2019s own events, up to maxEvents', () => {
    const ep = trackClosable(new Epoll(-1, 0, { maxEvents: 2 }));
    const fds = [testEventfd(1), testEventfd(1), testEventfd(1)];
    for (const fd of fds) ep.register(fd, EPOLLIN);
    const events = ep.events;
    expect(events).toBeInstanceOf(Int32Array);
    expect(events.length).toBe(2 * EPOLL_EVENT_INTS);
    expect(ep.pollInto(0)).toBe(2);
    expect(ep.events).toBe(events);
    const seen = [events[EPOLL_EVENT_FD_INDEX], events[EPOLL_EVENT_INTS + EPOLL_EVENT_FD_INDEX]];
    expect(seen.every((fd) => fds.includes(fd as number))).toBe(true);
    expect(events[0]).toBe(EPOLLIN);
    // Level-triggered and fair: the third fd comes up in a following wait.
    const all = new Set<number>();
    for (let i = 0; i < 3; i++) {
      const n = ep.pollInto(0);
      for (let j = 0; j < n; j++) all.add(events[j * EPOLL_EVENT_INTS + EPOLL_EVENT_FD_INDEX] as number);
    }
    expect([...all].sort()).toEqual([...fds].sort());
    expect(() => new Epoll(-1, 0, { maxEvents: 0 })).toThrow(RangeError);
  });

  it('transferring the events buffer away never leaves the kernel a dangling pointer', () => {
    const ep = newEpoll();
    const efd = testEventfd(1);
    ep.register(efd, EPOLLIN);
    const buffer = ep.events.buffer as ArrayBuffer;
    // Node 20 copies a native-backed buffer instead of detaching it; Node 24
    // refuses to transfer it at all (DataCloneError). Were it detached, its
    // memory would still be shared with the epoll (bound.h). Whichever Node
    // does, the epoll goes on working.
    try {
      const moved = structuredClone(buffer, { transfer: [buffer] });
      expect(moved.byteLength).toBe(buffer.byteLength === 0 ? moved.byteLength : buffer.byteLength);
    } catch (error) {
      expect((error as Error).name).toBe('DataCloneError');
    }
    expect(ep.pollInto(0)).toBe(1);
    expect(ep.events[EPOLL_EVENT_FD_INDEX]).toBe(efd);
    expect(ep.poll(0)).toEqual([[efd, EPOLLIN]]);
  });

  it('finds the one ready fd among 10,000', () => {
    const ep = newEpoll();
    const fds: number[] = [];
    for (let i = 0; i < 10_000; i++) {
      const fd = track(eventfd(0));
      fds.push(fd);
      ep.register(fd, EPOLLIN);
    }
    signalEventfd(fds[9_999] as number);
    expect(ep.poll(0)).toEqual([[fds[9_999], EPOLLIN]]);
  });

  it('its own fd is readable while a registered fd is ready (nestable in poll)', () => {
    const ep = newEpoll();
    const efd = testEventfd(0);
    ep.register(efd, EPOLLIN);
    const outer = trackClosable(new Poll());
    outer.register(ep.fileno(), POLLIN);
    expect(outer.poll(0)).toEqual([]);
    signalEventfd(efd);
    expect(outer.poll(0)).toEqual([[ep.fileno(), POLLIN]]);
  });

  describe('bad input: a clear error and the set unchanged', () => {
    it('duplicate register is EEXIST, unknown modify/unregister ENOENT', () => {
      const ep = newEpoll();
      const efd = testEventfd(1);
      ep.register(efd, EPOLLIN);
      expect(() => ep.register(efd, EPOLLOUT)).toThrow(
        expect.objectContaining({ name: 'OSError', code: 'EEXIST', syscall: 'epoll_ctl', errno: -17 }),
      );
      const other = testEventfd(1);
      expect(() => ep.modify(other, EPOLLIN)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
      expect(() => ep.unregister(other)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
      expect(ep.poll(0)).toEqual([[efd, EPOLLIN]]);
    });

    it('unregistering an fd that was closed is EBADF (closing already removed it)', () => {
      const ep = newEpoll();
      const efd = eventfd(1);
      ep.register(efd, EPOLLIN);
      close(efd);
      expect(() => ep.unregister(efd)).toThrow(expect.objectContaining({ code: 'EBADF' }));
      expect(ep.poll(0)).toEqual([]);
    });

    it('events outside EPOLL* bits, bad fds, bad timeouts and maxevents', () => {
      const ep = newEpoll();
      const efd = testEventfd(1);
      ep.register(efd, EPOLLIN);
      expect(() => ep.modify(efd, 1 << 20)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
      expect(() => ep.modify(efd, 2 ** 32)).toThrow(RangeError);
      expect(() => ep.register(-3, EPOLLIN)).toThrow(RangeError);
      expect(() => ep.register(Number.NaN, EPOLLIN)).toThrow(RangeError);
      expect(() => ep.register(null as unknown as number)).toThrow(TypeError);
      expect(() => ep.poll(Number.NaN)).toThrow(RangeError);
      expect(() => ep.poll(0, 0)).toThrow(RangeError);
      expect(() => ep.poll(0, -2)).toThrow(RangeError);
      expect(() => ep.pollInto(0, new Int32Array(EPOLL_EVENT_INTS - 1))).toThrow(RangeError);
      expect(() => ep.pollInto(0, new Uint32Array(6) as unknown as Int32Array)).toThrow(TypeError);
      expect(() => new Epoll(0)).toThrow(RangeError);
      expect(() => new Epoll(-1, 1)).toThrow(RangeError);
      trackClosable(new Epoll(10, EPOLL_CLOEXEC));
      expect(ep.poll(0)).toEqual([[efd, EPOLLIN]]);
    });

    it('a closed Epoll raises EBADF and never acts on the fd number the kernel reuses', () => {
      const ep = new Epoll();
      const oldFd = ep.fileno();
      ep.close();
      ep.close();
      expect(ep.closed).toBe(true);
      // The kernel hands the lowest free number out again: here, the old one.
      const reused = newEpoll();
      expect(reused.fileno()).toBe(oldFd);
      const efd = testEventfd(1);
      for (const call of [
        () => ep.fileno(),
        () => ep.register(efd, EPOLLIN),
        () => ep.modify(efd, EPOLLIN),
        () => ep.unregister(efd),
        () => ep.poll(0),
      ]) {
        expect(call).toThrow(expect.objectContaining({ code: 'EBADF' }));
      }
      // The instance that owns the number now was not touched.
      reused.register(efd, EPOLLIN);
      expect(reused.poll(0)).toEqual([[efd, EPOLLIN]]);
    });
  });

  it('resumes after a signal (EINTR) and still honours its timeout', async () => {
    const ep = newEpoll();
    ep.register(testEventfd(0), EPOLLIN);
    await expectResumesAfterSignal((marker) => {
      ep.register(marker, EPOLLIN);
      return (ms) => ep.poll(ms);
    }, []);
  });

  it('reports readiness that arrives after a signal interrupted it', async () => {
    const ep = newEpoll();
    const [r, w] = testPipe();
    ep.register(r, EPOLLIN);
    expect(await waitThroughSignal((ms) => ep.poll(ms), w)).toEqual([[r, EPOLLIN]]);
  });
});
