/** What differs between backends. */
import { describe, expect, it } from 'vitest';

import {
  DefaultSelector,
  EpollSelector,
  EVENT_READ,
  EVENT_WRITE,
  PollSelector,
  SelectSelector,
} from '../../src/selectors/index.js';
import { close, eventfd, FD_SETSIZE, Socket, select } from '../../src/sys/index.js';
import { SelectSet } from '../../src/sys/select.js';
import { signalEventfd, testEventfd, testPipe, testSocketpair, track, trackClosable } from '../helpers/fds.js';

describe('SelectSelector', () => {
  it('refuses an fd >= FD_SETSIZE with a RangeError, and changes nothing', () => {
    const sel = trackClosable(new SelectSelector());
    const fds: number[] = [];
    while ((fds.at(-1) ?? 0) < FD_SETSIZE) fds.push(track(eventfd()));
    const high = fds.at(-1) as number;
    expect(high).toBeGreaterThanOrEqual(FD_SETSIZE);
    expect(() => sel.register(high, EVENT_READ)).toThrow(
      expect.objectContaining({ name: 'RangeError', message: expect.stringContaining('FD_SETSIZE') }),
    );
    expect(sel.size).toBe(0);
    for (const fd of fds.slice(0, 10)) sel.register(fd, EVENT_READ);
    signalEventfd(fds[3] as number);
    expect(sel.select(0).map(([k]) => k.fd)).toEqual([fds[3]]);
  });

  it('refuses a closed fd at register (EBADF), not on every later wait', () => {
    const sel = trackClosable(new SelectSelector());
    const fd = eventfd();
    close(fd);
    expect(() => sel.register(fd, EVENT_READ)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    expect(sel.size).toBe(0);
    expect(sel.select(0)).toEqual([]);
  });

  it('SelectSet keeps its highest fd right as fds come and go', () => {
    const set = trackClosable(new SelectSet());
    const a = testEventfd(1);
    const b = testEventfd(1);
    set.set(a, 1);
    set.set(b, 1);
    expect(set.size).toBe(2);
    set.set(b, 0);
    expect(set.wait(0)).toBe(1);
    expect(set.events[0]).toBe(a);
    set.set(b, 3);
    expect(set.wait(0)).toBe(2);
    expect([set.events[0], set.events[1], set.events[2], set.events[3]]).toEqual([a, 1, b, 3]);
    expect(() => set.set(a, 4)).toThrow(RangeError);
  });
});

describe('PollSelector', () => {
  it('accepts a closed fd as CPython does, and reports it ready both ways (POLLNVAL)', () => {
    const sel = trackClosable(new PollSelector());
    const fd = eventfd();
    close(fd);
    const key = sel.register(fd, EVENT_READ | EVENT_WRITE);
    expect(sel.select(0)).toEqual([[key, EVENT_READ | EVENT_WRITE]]);
  });
});

describe.each([
  ['PollSelector', () => new PollSelector()],
  ['EpollSelector', () => new EpollSelector()],
] as const)('%s', (_name, make) => {
  it('a hang-up wakes both directions that asked', () => {
    const sel = trackClosable(make());
    const [r, w] = testPipe();
    const key = sel.register(r, EVENT_READ | EVENT_WRITE);
    expect(sel.select(0)).toEqual([]);
    close(w);
    expect(sel.select(0)).toEqual([[key, EVENT_READ | EVENT_WRITE]]);
  });

  it('an error on a write end wakes the writer (EPOLLERR/POLLERR)', () => {
    const sel = trackClosable(make());
    const [r, w] = testPipe();
    const key = sel.register(w, EVENT_WRITE);
    close(r);
    expect(sel.select(0)).toEqual([[key, EVENT_WRITE]]);
  });
});

describe('EpollSelector', () => {
  it('is the DefaultSelector and its own fd is readable while a file is ready', () => {
    expect(DefaultSelector).toBe(EpollSelector);
    const inner = trackClosable(new DefaultSelector());
    const efd = testEventfd(0);
    inner.register(efd, EVENT_READ);
    const outer = trackClosable(new PollSelector());
    const key = outer.register(inner.fileno(), EVENT_READ);
    expect(outer.select(0)).toEqual([]);
    signalEventfd(efd);
    expect(outer.select(0)).toEqual([[key, EVENT_READ]]);
  });

  it('refuses a closed fd at register (EBADF) and changes nothing', () => {
    const sel = trackClosable(new EpollSelector());
    const fd = eventfd();
    close(fd);
    expect(() => sel.register(fd, EVENT_READ)).toThrow(expect.objectContaining({ name: 'OSError', code: 'EBADF' }));
    expect(sel.size).toBe(0);
  });
});

describe('EpollSelector maxEvents', () => {
  it('reports at most maxEvents ready fds per select; the others come in the next (level-triggered)', () => {
    const sel = trackClosable(new EpollSelector({ maxEvents: 2 }));
    const fds = Array.from({ length: 5 }, () => testEventfd());
    for (const fd of fds) {
      signalEventfd(fd);
      sel.register(fd, EVENT_READ);
    }
    const first = sel.select(0);
    expect(first).toHaveLength(2);
    const seen = new Set<number>();
    for (let i = 0; i < 5; i++) for (const [key] of sel.select(0)) seen.add(key.fd);
    expect(seen).toEqual(new Set(fds));
  });

  it('without maxEvents, one select reports every ready key, as CPython, however many', () => {
    const sel = trackClosable(new EpollSelector());
    const fds = Array.from({ length: 3000 }, () => testEventfd(1));
    for (const fd of fds) sel.register(fd, EVENT_READ);
    const ready = sel.select(0);
    expect(ready).toHaveLength(3000);
    expect(new Set(ready.map(([key]) => key.fd))).toEqual(new Set(fds));
    // Fewer registrations again: the same answer from the epoll's own array.
    for (const fd of fds.slice(10)) sel.unregister(fd);
    expect(
      sel
        .select(0)
        .map(([key]) => key.fd)
        .sort(),
    ).toEqual(fds.slice(0, 10).sort());
  });

  it('refuses a maxEvents outside 1..2^20 with a RangeError', () => {
    expect(() => new EpollSelector({ maxEvents: 0 })).toThrow(RangeError);
    expect(() => new EpollSelector({ maxEvents: 1.5 })).toThrow(RangeError);
    expect(() => new EpollSelector({ maxEvents: 2 ** 21 })).toThrow(/maxEvents/);
  });
});

describe.each([SelectSelector, PollSelector, EpollSelector])('%o forgetClosed', (Selector) => {
  it('drops the key of an fd its owner closed; the number can be registered again', () => {
    const sel = trackClosable(new Selector());
    const fd = eventfd();
    sel.register(fd, EVENT_READ);
    close(fd);
    sel.forgetClosed(fd);
    sel.forgetClosed(fd); // once gone, a no-op
    expect(sel.getMap().size).toBe(0);
    expect(sel.select(0)).toEqual([]);
    const again = track(eventfd());
    expect(again).toBe(fd);
    signalEventfd(again);
    sel.register(again, EVENT_READ);
    expect(sel.select(0).map(([key]) => key.fd)).toEqual([again]);
  });
});

describe('PollSelector with an fd closed while registered', () => {
  it('reports it once (POLLNVAL) and then stops polling it, instead of on every wait', () => {
    const sel = trackClosable(new PollSelector());
    const live = testEventfd(0);
    const kl = sel.register(live, EVENT_READ);
    const doomed = eventfd(0);
    const kd = sel.register(doomed, EVENT_READ);
    close(doomed);
    expect(sel.select(0)).toEqual([[kd, EVENT_READ]]);
    expect(sel.select(0)).toEqual([]);
    signalEventfd(live);
    expect(sel.select(0)).toEqual([[kl, EVENT_READ]]);
    // The key stays until unregistered, which works, and frees the number.
    expect(sel.unregister(doomed)).toBe(kd);
    expect(sel.size).toBe(1);
    const again = track(eventfd(1));
    expect(again).toBe(doomed);
    const ka = sel.register(again, EVENT_READ);
    expect(new Map(sel.select(0)).get(ka)).toBe(EVENT_READ);
  });

  it('forgetClosed drops a key whose fd was reported POLLNVAL, and the number can be registered again', () => {
    const sel = trackClosable(new PollSelector());
    const doomed = eventfd(0);
    sel.register(doomed, EVENT_READ);
    close(doomed);
    expect(sel.select(0).length).toBe(1);
    sel.forgetClosed(doomed);
    expect(sel.size).toBe(0);
    const again = track(eventfd(1));
    expect(again).toBe(doomed);
    const key = sel.register(again, EVENT_READ);
    expect(sel.select(0)).toEqual([[key, EVENT_READ]]);
  });
});

/**
 * Registers a socket in `sel`, makes it readable, and closes it while a dup
 * keeps its file open (the dup is closed when the test ends): its
 * registration outlives the fd, which the selector forgets. Returns the fd.
 */
function outlive(sel: EpollSelector): number {
  const [a, peer] = testSocketpair();
  trackClosable(Socket.fromFd(a.fileno()));
  const fd = a.fileno();
  sel.register(a, EVENT_READ);
  peer.send('x'); // readable, and nobody reads it: level-triggered, reported on every wait
  a.close();
  sel.forgetClosed(fd);
  return fd;
}

describe('EpollSelector with a registration that outlived its fd', () => {
  // The classic epoll trap: close(2) removes a registration only when the
  // file closes, so a dup elsewhere keeps it in the kernel's set, where no
  // epoll_ctl can name it (its fd number is closed, or another file's).
  function outlived(): { sel: EpollSelector; fd: number } {
    const sel = trackClosable(new EpollSelector());
    return { sel, fd: outlive(sel) };
  }

  it("never reports the old file's events as those of the file that has its number now, and drops them", () => {
    const { sel, fd } = outlived();
    const efd = track(eventfd(0));
    expect(efd).toBe(fd);
    const key = sel.register(efd, EVENT_READ);
    for (let i = 0; i < 4; i++) expect(sel.select(0)).toEqual([]);
    // The kernel's set holds only the eventfd now: the epoll fd is not readable.
    expect(select([sel.ownFileno()], [], [], 0)[0]).toEqual([]);
    signalEventfd(efd);
    expect(sel.select(0)).toEqual([[key, EVENT_READ]]);
    expect(sel.size).toBe(1);
  });

  it('with nothing registered any more, the epoll fd stops being readable (an owner would spin on it)', () => {
    const { sel } = outlived();
    const live = testEventfd(0);
    const kl = sel.register(live, EVENT_READ, 'live');
    expect(select([sel.ownFileno()], [], [], 0)[0]).toEqual([sel.ownFileno()]);
    // Seen by one wait, the stray registration is dropped before the next.
    for (let i = 0; i < 3; i++) expect(sel.select(0)).toEqual([]);
    expect(select([sel.ownFileno()], [], [], 0)[0]).toEqual([]);
    // Keys, events and data survive the renewal; so does the fd number.
    signalEventfd(live);
    expect(sel.select(0)).toEqual([[kl, EVENT_READ]]);
    expect(sel.getKey(live).data).toBe('live');
  });
});

describe('EpollSelector renewing its kernel set', () => {
  const strays = (sel: EpollSelector, count: number): void => {
    for (let i = 0; i < count; i++) outlive(sel);
  };
  const readable = (fd: number): boolean => select([fd], [], [], 0)[0].length > 0;

  it('drops stale registrations even when a capped wait never reports the same one twice in a row', () => {
    const sel = trackClosable(new EpollSelector({ maxEvents: 1 }));
    strays(sel, 3);
    for (let i = 0; i < 3; i++) expect(sel.select(0)).toEqual([]);
    expect(readable(sel.ownFileno())).toBe(false);
  });

  it('does not register again a key whose fd was closed behind it and now names another file', () => {
    const sel = trackClosable(new EpollSelector());
    const e1 = eventfd(0);
    const old = sel.register(e1, EVENT_READ, 'old file');
    close(e1); // behind the selector: no unregister
    const e2 = track(eventfd(1)); // readable, at e1's number
    expect(e2).toBe(e1);
    expect(sel.select(0)).toEqual([]);
    strays(sel, 1);
    for (let i = 0; i < 3; i++) expect(sel.select(0)).toEqual([]);
    expect(readable(sel.ownFileno())).toBe(false);
    // The key stays until unregistered, as before; it never fires for e2.
    expect(sel.getKey(e1)).toBe(old);
  });

  it('never renews once its fd was handed out: a poller watching it keeps working', () => {
    const inner = trackClosable(new EpollSelector());
    const outer = trackClosable(new PollSelector());
    const watched = outer.register(inner.fileno(), EVENT_READ);
    const live = testEventfd(0);
    const kl = inner.register(live, EVENT_READ);
    strays(inner, 1);
    // The stale registration is skipped, never reported as a key...
    for (let i = 0; i < 3; i++) expect(inner.select(0)).toEqual([]);
    signalEventfd(live);
    expect(inner.select(0)).toEqual([[kl, EVENT_READ]]);
    // ...and the epoll instance the outer poller watches is still the same one.
    expect(outer.select(0)).toEqual([[watched, EVENT_READ]]);
  });

  it('without an fd to spare (EMFILE) waits go on, and the set is renewed once fds are free', () => {
    const sel = trackClosable(new EpollSelector());
    strays(sel, 1);
    const hoard: number[] = [];
    try {
      for (;;) hoard.push(eventfd());
    } catch (e) {
      expect(e).toMatchObject({ code: 'EMFILE' });
    }
    try {
      for (let i = 0; i < 3; i++) expect(sel.select(0)).toEqual([]);
    } finally {
      for (const fd of hoard) close(fd);
    }
    for (let i = 0; i < 100 && readable(sel.ownFileno()); i++) sel.select(0);
    expect(readable(sel.ownFileno())).toBe(false);
  });
});

describe('SelectSelector with an fd closed while registered', () => {
  it('drops it and reports it ready both ways instead of failing every wait (EBADF)', () => {
    const sel = trackClosable(new SelectSelector());
    const live = testEventfd(1);
    const kl = sel.register(live, EVENT_READ);
    const doomed = eventfd(0);
    const kd = sel.register(doomed, EVENT_READ);
    close(doomed);
    expect(new Map(sel.select(0)).get(kd)).toBe(EVENT_READ);
    expect(sel.select(0)).toEqual([[kl, EVENT_READ]]);
    // The key stays until unregistered, which works.
    sel.unregister(doomed);
    expect(sel.size).toBe(1);
  });
});
