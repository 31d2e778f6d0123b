/**
 * Datagrams on the loop: sockRecvfrom / sockRecvfromInto / sockSendto
 * (CPython's test_sock_lowlevel) and createDatagramEndpoint with its
 * transport (test_events' test_create_datagram_endpoint*,
 * test_selector_events' datagram transport tests), on every backend and in
 * both run modes, over real UDP (127.0.0.1, ::1) and Unix datagram sockets.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';

import { CancelledError, type Coroutine, type Future, sleep } from '../../src/coro/index.js';
import type { EventLoop } from '../../src/loop/index.js';
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  type OSError,
  SOCK_DGRAM,
  Socket,
  type SocketAddress,
} from '../../src/sys/index.js';
import { trackClosable } from '../helpers/fds.js';
import { BACKENDS, testLoop } from '../helpers/loops.js';
import { closedPort } from '../helpers/net.js';

type Mode = 'owning' | 'cooperative';
const MODES: Mode[] = ['owning', 'cooperative'];
const CASES = BACKENDS.flatMap((backend) => MODES.map((mode) => [backend, mode] as const));

/** Runs `main` to completion on `loop`: runUntilComplete, or `await loop.run`. */
async function runIn<T>(loop: EventLoop, mode: Mode, main: () => Coroutine<T>): Promise<T> {
  if (mode === 'owning') return loop.runUntilComplete(main());
  return loop.run(main());
}

function tmpDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'iomux-dgram-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A non-blocking datagram socket, bound to `address` when given, closed at the end of the test. */
function dgram(family: number, address?: SocketAddress): Socket {
  const sock = trackClosable(new Socket(family, SOCK_DGRAM));
  sock.setBlocking(false);
  if (address !== undefined) sock.bind(address);
  return sock;
}

const LOOPBACK: [string, number, string][] = [
  ['IPv4', AF_INET, '127.0.0.1'],
  ['IPv6', AF_INET6, '::1'],
];

/** Waits (bounded) until `done()` holds, one loop iteration at a time. */
function* until(done: () => boolean, what: string, limitMs = 10_000): Coroutine<void> {
  const start = Date.now();
  while (!done()) {
    if (Date.now() - start > limitMs) throw new Error(`timed out waiting for ${what}`);
    yield* sleep(1);
  }
}

describe.each(CASES)('sockRecvfrom / sockRecvfromInto / sockSendto on %s (%s)', (backend, mode) => {
  it.each(LOOPBACK)('echo over %s: the receive waits, the address is the sender', async (_name, family, host) => {
    const loop = testLoop(backend);
    const server = dgram(family, [host, 0]);
    const client = dgram(family, [host, 0]);
    const got = await runIn(loop, mode, function* () {
      const echo = loop.createTask(
        (function* (): Coroutine<void> {
          for (let i = 0; i < 3; i++) {
            const [data, from] = yield* loop.sockRecvfrom(server, 1024);
            yield* loop.sockSendto(server, Buffer.concat([Buffer.from('echo:'), data]), from as SocketAddress);
          }
        })(),
      );
      const replies: string[] = [];
      const buf = Buffer.alloc(64);
      for (const word of ['a', 'bb', 'ccc']) {
        // Let the server's receive wait first: the datagram arrives on readiness.
        yield* sleep(1);
        expect(yield* loop.sockSendto(client, word, server.getsockname())).toBe(word.length);
        const [n, from] = yield* loop.sockRecvfromInto(client, buf);
        expect(from).toEqual(server.getsockname());
        replies.push(buf.toString('utf8', 0, n));
      }
      yield* echo;
      return replies;
    });
    expect(got).toEqual(['echo:a', 'echo:bb', 'echo:ccc']);
  });

  it('Unix datagram sockets: bound paths, and an unbound sender has address null', async () => {
    const loop = testLoop(backend);
    const dir = tmpDir();
    const server = dgram(AF_UNIX, join(dir, 'server'));
    const bound = dgram(AF_UNIX, join(dir, 'client'));
    const unbound = dgram(AF_UNIX);
    const got = await runIn(loop, mode, function* () {
      const first = loop.sockRecvfrom(server, 100);
      yield* loop.sockSendto(bound, 'from a path', join(dir, 'server'));
      const a = yield* first;
      yield* loop.sockSendto(unbound, Buffer.from('from nowhere'), join(dir, 'server'));
      const b = yield* loop.sockRecvfrom(server, 100);
      return [a[0].toString(), a[1], b[0].toString(), b[1]];
    });
    expect(got).toEqual(['from a path', join(dir, 'client'), 'from nowhere', null]);
  });

  it('sockRecvfromInto takes at most nbytes; the rest of the datagram is discarded', async () => {
    const loop = testLoop(backend);
    const a = dgram(AF_INET, ['127.0.0.1', 0]);
    const b = dgram(AF_INET, ['127.0.0.1', 0]);
    const buf = Buffer.alloc(16, 0);
    const got = await runIn(loop, mode, function* () {
      yield* loop.sockSendto(a, 'hello world', b.getsockname());
      yield* loop.sockSendto(a, 'next', b.getsockname());
      const first = yield* loop.sockRecvfromInto(b, buf, 5);
      const second = yield* loop.sockRecvfrom(b, 100);
      return [first[0], buf.toString('utf8', 0, 6), second[0].toString()];
    });
    expect(got).toEqual([5, 'hello\0', 'next']);
  });

  it('cancelling a pending sockRecvfrom removes its watch and does not keep the loop alive', async () => {
    const loop = testLoop(backend);
    const sock = dgram(AF_INET, ['127.0.0.1', 0]);
    const other = dgram(AF_INET, ['127.0.0.1', 0]);
    const result = await runIn(loop, mode, function* () {
      const pending = loop.sockRecvfrom(sock, 100);
      yield* sleep(2);
      expect(pending.done()).toBe(false);
      expect(loop.stats().fds).toBe(1);
      pending.cancel();
      // Interest changes are batched: the fd leaves the selector within two iterations.
      yield* sleep(1);
      yield* sleep(1);
      const fds = loop.stats().fds;
      const hadReader = loop.removeReader(sock);
      // A datagram sent after the cancel is still there for the next receive.
      other.sendto('later', sock.getsockname());
      const [data] = yield* loop.sockRecvfrom(sock, 100);
      let cancelled = false;
      try {
        pending.result();
      } catch (e) {
        cancelled = e instanceof CancelledError;
      }
      return { fds, hadReader, data: data.toString(), cancelled };
    });
    expect(result).toEqual({ fds: 0, hadReader: false, data: 'later', cancelled: true });
  });

  it('a cancelled receive inside a Task: the Task ends with CancelledError and the loop stops', async () => {
    const loop = testLoop(backend);
    const sock = dgram(AF_UNIX);
    const out = await runIn(loop, mode, function* () {
      const task = loop.createTask(
        (function* (): Coroutine<unknown> {
          return yield* loop.sockRecvfrom(sock, 10);
        })(),
      );
      yield* sleep(1);
      task.cancel();
      try {
        yield* task;
        return 'not cancelled';
      } catch (e) {
        return e instanceof CancelledError ? 'cancelled' : String(e);
      }
    });
    expect(out).toBe('cancelled');
    expect(loop.isRunning()).toBe(false);
  });

  it('ECONNREFUSED from an ICMP port unreachable fails the next receive on a connected socket', async () => {
    const loop = testLoop(backend);
    const sock = dgram(AF_INET);
    sock.connect(['127.0.0.1', closedPort()]);
    const code = await runIn(loop, mode, function* () {
      const pending = loop.sockRecvfrom(sock, 10);
      sock.send('x');
      try {
        yield* pending;
        return 'received';
      } catch (e) {
        return (e as OSError).code;
      }
    });
    expect(code).toBe('ECONNREFUSED');
  });

  it('bad inputs throw at once and change nothing', async () => {
    const loop = testLoop(backend);
    const a = dgram(AF_INET, ['127.0.0.1', 0]);
    const b = dgram(AF_INET, ['127.0.0.1', 0]);
    await runIn(loop, mode, function* () {
      expect(() => loop.sockRecvfrom(a, -1)).toThrow(RangeError);
      expect(() => loop.sockRecvfrom(a, 1.5)).toThrow(RangeError);
      expect(() => loop.sockRecvfrom(a, '10' as unknown as number)).toThrow(TypeError);
      expect(() => loop.sockRecvfromInto(a, Buffer.alloc(4), -1)).toThrow(RangeError);
      expect(() => loop.sockRecvfromInto(a, Buffer.alloc(4), 5)).toThrow(RangeError);
      expect(() => loop.sockRecvfromInto(a, 'x' as unknown as Buffer)).toThrow(TypeError);
      expect(() => loop.sockSendto(a, 42 as unknown as string, b.getsockname())).toThrow(TypeError);
      expect(() => loop.sockSendto(a, 'x', '/a/path')).toThrow(TypeError);
      expect(() => loop.sockSendto(a, 'x', ['127.0.0.1', 65536])).toThrow(RangeError);
      expect(() => loop.sockSendto(a, 'x', ['::1', 1])).toThrow();
      expect(loop.stats().fds).toBe(0);
      yield* sleep(1);
      // Nothing was sent; the sockets still work.
      expect(b.tryRecvfrom(10)).toBeNull();
      yield* loop.sockSendto(a, 'ok', b.getsockname());
      const [data] = yield* loop.sockRecvfrom(b, 10);
      expect(data.toString()).toBe('ok');
    });
  });

  it('a closed socket fails the Future with EBADF', async () => {
    const loop = testLoop(backend);
    const sock = dgram(AF_INET);
    sock.close();
    const codes = await runIn(loop, mode, function* () {
      const out: string[] = [];
      for (const f of [
        loop.sockRecvfrom(sock, 10),
        loop.sockRecvfromInto(sock, Buffer.alloc(4)),
        loop.sockSendto(sock, 'x', ['127.0.0.1', 9]),
      ] as Future<unknown>[]) {
        try {
          yield* f;
        } catch (e) {
          out.push((e as OSError).code);
        }
      }
      return out;
    });
    expect(codes).toEqual(['EBADF', 'EBADF', 'EBADF']);
  });

  it('sockSendto waits for room when the peer does not read, and sends once it does', async () => {
    const loop = testLoop(backend);
    const dir = tmpDir();
    const receiver = dgram(AF_UNIX, join(dir, 'r'));
    const sender = dgram(AF_UNIX);
    const payload = Buffer.alloc(512, 7);
    const got = await runIn(loop, mode, function* () {
      // Fill the receiver's queue without reading.
      let sent = 0;
      while (sender.trySendto(payload, join(dir, 'r')) !== null) sent++;
      const blocked = loop.sockSendto(sender, 'last', join(dir, 'r'));
      yield* sleep(5);
      const waited = !blocked.done();
      let received = 0;
      let last = '';
      while (last !== 'last') {
        const [data] = yield* loop.sockRecvfrom(receiver, 1024);
        last = data.toString();
        received++;
      }
      return { waited, n: yield* blocked, received, sent };
    });
    expect(got.waited).toBe(true);
    expect(got.n).toBe(4);
    expect(got.received).toBe(got.sent + 1);
  });

  it('many datagrams in both directions over UDP arrive intact (loopback does not drop these)', async () => {
    const loop = testLoop(backend);
    const a = dgram(AF_INET, ['127.0.0.1', 0]);
    const b = dgram(AF_INET, ['127.0.0.1', 0]);
    const count = await runIn(loop, mode, function* () {
      let seen = 0;
      const reader = loop.createTask(
        (function* (): Coroutine<void> {
          for (let i = 0; i < 200; i++) {
            const [data, from] = yield* loop.sockRecvfrom(b, 100);
            expect(data.toString()).toBe(`m${i}`);
            expect(from).toEqual(a.getsockname());
            seen++;
          }
        })(),
      );
      for (let i = 0; i < 200; i++) {
        yield* loop.sockSendto(a, `m${i}`, b.getsockname());
        if (i % 20 === 0) yield* sleep(0);
      }
      yield* until(() => reader.done(), 'the reader');
      yield* reader;
      return seen;
    });
    expect(count).toBe(200);
  });
});
