/**
 * The completion-based socket operations (loop/proactor.ts) where they can
 * go wrong: cancellation racing completion, provided buffers running out,
 * closing under load, fd numbers reused. (The loop suites run every socket
 * operation on io_uring too: test/loop/sock-ops.test.ts.)
 */
import { describe, expect, it } from 'vitest';

import { CancelledError, type Coroutine, sleep } from '../../src/coro/index.js';
import { IoUring, SOCK_STREAM, type Socket, socketpair } from '../../src/sys/index.js';
import { testSocketpair, trackClosable } from '../helpers/fds.js';
import { BACKENDS, testLoop } from '../helpers/loops.js';
import { listenLoopback, tcpSocket } from '../helpers/net.js';

describe.runIf(IoUring.available() && BACKENDS.includes('io_uring'))('io_uring loop under hostile use', () => {
  it('a receive cancelled after its data arrived does not let the next receive overtake that data', () => {
    const loop = testLoop('io_uring');
    const [a, b] = testSocketpair();
    b.setBlocking(false);
    function* main(): Coroutine<string> {
      const first = loop.sockRecv(b, 100);
      yield* sleep(1); // submitted, waiting for data
      // The data arrives (the kernel completes the receive as this send returns)...
      a.send('A');
      // ...just as the caller gives up on it (a waitFor timeout), and asks again.
      first.cancel();
      const second = loop.sockRecv(b, 100);
      a.send('B');
      const got = [(yield* second).toString()];
      got.push((yield* loop.sockRecv(b, 100)).toString());
      return got.join('');
    }
    // The stream is "AB": "A" (kept for the next receive) must not come after "B".
    expect(loop.runUntilComplete(main())).toBe('AB');
  });
});

describe.each(BACKENDS)('accept cancelled as a connection arrives, on %s', (backend) => {
  it('the connection is not lost: the next accept gets it', () => {
    const loop = testLoop(backend);
    const { sock: server, port } = listenLoopback();
    function* main(): Coroutine<string> {
      const first = loop.sockAccept(server);
      yield* sleep(1);
      const client = tcpSocket();
      try {
        client.connect(['127.0.0.1', port]);
      } catch (e) {
        if ((e as { code?: string }).code !== 'EINPROGRESS') throw e;
      }
      first.cancel();
      const next = loop.sockAccept(server);
      // Watchdog: a lost connection would leave this accept pending forever.
      const dog = loop.callLater(10_000, () => next.cancel());
      let conn: Socket;
      try {
        [conn] = yield* next;
      } catch (e) {
        if (e instanceof CancelledError) return 'lost: the next accept never came (watchdog)';
        throw e;
      }
      dog.cancel();
      trackClosable(conn);
      yield* loop.sockSendAll(client, 'hello');
      return (yield* loop.sockRecv(conn, 10)).toString();
    }
    expect(loop.runUntilComplete(main())).toBe('hello');
  });
});

describe.runIf(IoUring.available() && BACKENDS.includes('io_uring'))('io_uring: provided buffers run out', () => {
  it('a receive that got ENOBUFS on a socket closed meanwhile is not retried on the reused fd number', () => {
    const loop = testLoop('io_uring');
    const N = 1100; // more than the loop's 1,024 provided buffers
    const pairs: [Socket, Socket][] = [];
    for (let i = 0; i < N; i++) {
      const [a, b] = testSocketpair();
      b.setBlocking(false);
      pairs.push([a, b]);
    }
    function* main(): Coroutine<[number, string[], string[]]> {
      const recvs = pairs.map(([, b]) => loop.sockRecv(b, 100));
      yield* sleep(1); // all submitted, waiting
      // Each send completes its receive as it returns: past 1,024, with -ENOBUFS.
      for (const [a] of pairs) a.send('old');
      // Before the loop sees those completions, the starved sockets are closed
      // and their fd numbers reused by new sockets that get data.
      const starved = pairs.slice(1024);
      for (const [, b] of starved) b.close();
      const fresh: [Socket, Socket][] = [];
      for (let i = 0; i < starved.length; i++) {
        const [c, d] = socketpair(1, SOCK_STREAM);
        trackClosable(c);
        trackClosable(d);
        d.setBlocking(false);
        c.send('new');
        fresh.push([c, d]);
      }
      const outcomes: string[] = [];
      // Watchdog: a receive that never settles is cancelled after 10 s (reported as 'pending').
      const dog = loop.callLater(10_000, () => {
        for (const r of recvs) r.cancel();
      });
      for (const r of recvs.slice(1024)) {
        try {
          outcomes.push(`data:${(yield* r).toString()}`);
        } catch (e) {
          outcomes.push(e instanceof CancelledError ? 'pending' : ((e as { code?: string }).code ?? String(e)));
        }
      }
      dog.cancel();
      yield* sleep(5);
      // The new sockets' data must still be theirs.
      const left = fresh.map(([, d]) => {
        try {
          return d.recv(10).toString();
        } catch (e) {
          return (e as { code?: string }).code ?? String(e);
        }
      });
      return [starved.length, [...new Set(outcomes)], [...new Set(left)]];
    }
    const [count, outcomes, left] = loop.runUntilComplete(main());
    expect(count).toBe(N - 1024);
    // A closed socket's receive fails with EBADF; it never gets another socket's bytes.
    expect(outcomes).toEqual(['EBADF']);
    expect(left).toEqual(['new']);
  });
});

describe.runIf(IoUring.available() && BACKENDS.includes('io_uring'))('io_uring: closing under load', () => {
  it('a socket closed with a send blocked on a peer that does not read: EBADF, the peer sees EOF, the loop goes on', () => {
    const loop = testLoop('io_uring');
    const [a, b] = testSocketpair();
    a.setBlocking(false);
    b.setBlocking(false);
    function* main(): Coroutine<[string, string, number, boolean]> {
      const big = Buffer.alloc(8 << 20, 0x61);
      const send = loop.sockSendAll(b, big);
      const second = loop.sockSendAll(b, 'queued behind');
      yield* sleep(5);
      b.close();
      let code1 = 'resolved';
      let code2 = 'resolved';
      const dog = loop.callLater(10_000, () => {
        send.cancel();
        second.cancel();
      });
      try {
        yield* send;
      } catch (e) {
        code1 = e instanceof CancelledError ? 'pending' : String((e as { code?: string }).code);
      }
      try {
        yield* second;
      } catch (e) {
        code2 = e instanceof CancelledError ? 'pending' : String((e as { code?: string }).code);
      }
      dog.cancel();
      // The peer drains what was sent, then sees EOF (not a file held open by a request).
      let total = 0;
      let eof = false;
      const reader = loop.callLater(10_000, () => undefined);
      for (;;) {
        const r = loop.sockRecv(a, 1 << 16);
        const d2 = loop.callLater(10_000, () => r.cancel());
        let chunk: Buffer;
        try {
          chunk = yield* r;
        } catch {
          break;
        }
        d2.cancel();
        if (chunk.length === 0) {
          eof = true;
          break;
        }
        total += chunk.length;
      }
      reader.cancel();
      return [code1, code2, total < big.length ? 1 : 0, eof];
    }
    const [code1, code2, sane, eof] = loop.runUntilComplete(main());
    // Only part of the 8 MiB reached the peer (sane = 1): the send did not complete, so it
    // must not resolve; it fails with EBADF, as the doc of proactor.ts says.
    expect([code1, code2, sane, eof]).toEqual(['EBADF', 'EBADF', 1, true]);
  });

  it('1,000 io_uring loops created and closed with receives and blocked sends in flight leak no fd', {
    timeout: 120_000,
  }, async () => {
    const { openFdCount } = await import('../helpers/fds.js');
    const { EventLoop } = await import('../../src/loop/index.js');
    const before = openFdCount();
    for (let i = 0; i < 1000; i++) {
      const loop = new EventLoop({ backend: 'io_uring' });
      const [a, b] = socketpair(1, SOCK_STREAM);
      a.setBlocking(false);
      b.setBlocking(false);
      // In flight when the loop closes: a receive, and a send the peer's buffer cannot take.
      loop.sockRecv(b, 10);
      loop.sockSendAll(b, Buffer.alloc(4 << 20));
      loop.runUntilComplete(
        (function* (): Coroutine<void> {
          yield* sleep(0);
        })(),
      );
      loop.close();
      a.close();
      b.close();
    }
    expect(openFdCount()).toBe(before);
  });
});

describe.each(BACKENDS)('fd number reuse on %s', (backend) => {
  it("a reader on a new socket that reuses a closed (still registered) socket's fd number is called", () => {
    const loop = testLoop(backend);
    const [a, b] = socketpair(1, SOCK_STREAM);
    trackClosable(a);
    trackClosable(b);
    let stale = 0;
    loop.addReader(a, () => stale++);
    function* main(): Coroutine<string> {
      yield* sleep(1); // its poll armed
      const fd = a.fileno();
      loop.removeReader(a);
      a.close();
      const [c, d] = socketpair(1, SOCK_STREAM);
      trackClosable(c);
      trackClosable(d);
      if (c.fileno() !== fd) return `fd not reused (${fd} vs ${c.fileno()})`;
      c.setBlocking(false);
      const got = loop.createFuture<string>();
      loop.addReader(c, () => {
        loop.removeReader(c);
        got.setResult(c.recv(10).toString());
      });
      const dog = loop.callLater(10_000, () => got.done() || got.setResult('reader never called'));
      d.send('fresh');
      const text = yield* got;
      dog.cancel();
      return text;
    }
    expect(loop.runUntilComplete(main())).toBe('fresh');
    expect(stale).toBe(0);
  });
});
