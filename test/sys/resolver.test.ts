import { constants } from 'node:os';
import { describe, expect, it } from 'vitest';

import { GetAddrInfoError } from '../../src/loop/index.js';
import { close, EAI_SYSTEM, eventfd, POLLIN, Poll, Resolver } from '../../src/sys/index.js';

/** Waits (bounded) for the resolver's fd, then takes what finished. */
function takeOne(resolver: Resolver): ReturnType<Resolver['take']> {
  const p = new Poll();
  try {
    p.register(resolver.fileno(), POLLIN);
    for (let i = 0; i < 3; i++) {
      p.poll(2000);
      const done = resolver.take();
      if (done.length > 0) return done;
    }
    return [];
  } finally {
    p.close();
  }
}

describe('Resolver', () => {
  it('a lookup that succeeds has error 0 and errno 0', () => {
    const resolver = new Resolver();
    try {
      resolver.submit(1, 'localhost', '80');
      const [done] = takeOne(resolver);
      expect(done).toMatchObject({ id: 1, error: 0, errno: 0, message: '' });
    } finally {
      resolver.close();
    }
  });

  it('an EAI_SYSTEM failure keeps the EAI code and gives the errno behind it apart', () => {
    const resolver = new Resolver();
    // With no fd left, glibc cannot open /etc/hosts: getaddrinfo fails with
    // EAI_SYSTEM and errno EMFILE.
    const held: number[] = [];
    let done: ReturnType<Resolver['take']> = [];
    try {
      try {
        for (;;) held.push(eventfd());
      } catch {
        // EMFILE: the table is full.
      }
      resolver.submit(2, 'localhost', '80');
      // The wait itself needs no new fd (poll(2) on an fd already open).
      done = takeOne(resolver);
    } finally {
      for (const fd of held) close(fd);
      resolver.close();
    }
    expect(done).toHaveLength(1);
    expect(done[0]).toMatchObject({ id: 2, error: EAI_SYSTEM, errno: -constants.errno.EMFILE });
    const err = new GetAddrInfoError(done[0]?.error ?? 0, 'localhost', done[0]?.message ?? '', done[0]?.errno ?? 0);
    expect(err).toMatchObject({ code: 'EMFILE', errno: -constants.errno.EMFILE, syscall: 'getaddrinfo' });
    expect(err.message).toBe('getaddrinfo EMFILE localhost (Too many open files)');
  });
});
