import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';

import { CancelledError, type Coroutine, gather, sleep } from '../../src/coro/index.js';
import { GetAddrInfoError } from '../../src/loop/index.js';
import { AF_INET, AF_INET6, AI_NUMERICHOST, SHUT_WR, SO_LINGER, SOL_SOCKET, type Socket } from '../../src/sys/index.js';
import { testSocketpair } from '../helpers/fds.js';
import { BACKENDS, testLoop } from '../helpers/loops.js';
import { closedPort, echoServer, listenLoopback, tcpSocket } from '../helpers/net.js';

describe.each(BACKENDS)('socket operations on %s', (backend) => {
  it('accept, connect, send and receive: an echo over loopback', () => {
    const loop = testLoop(backend);
    const { sock: server, port } = listenLoopback();
    function* client(i: number): Coroutine<boolean> {
      const sock = tcpSocket();
      yield* loop.sockConnect(sock, ['127.0.0.1', port]);
      const data = randomBytes(100_000 + i);
      const got: Buffer[] = [];
      const sender = loop.createTask(
        (function* (): Coroutine<void> {
          yield* loop.sockSendAll(sock, data);
          sock.shutdown(SHUT_WR);
        })(),
      );
      for (;;) {
        const chunk = yield* loop.sockRecv(sock, 65536);
        if (chunk.length === 0) break;
        got.push(chunk);
      }
      yield* sender;
      return Buffer.concat(got).equals(data);
    }
    function* main(): Coroutine<unknown> {
      return yield* gather(echoServer(loop, server, 10), ...Array.from({ length: 10 }, (_, i) => client(i)));
    }
    const [served, ...ok] = loop.runUntilComplete(main()) as [number, ...boolean[]];
    expect(ok).toEqual(Array(10).fill(true));
    expect(served).toBe(10 * 100_000 + 45);
  });

  it('a refused connection fails its Future with ECONNREFUSED while the loop goes on', () => {
    const loop = testLoop(backend);
    const port = closedPort();
    function* main(): Coroutine<[string, string]> {
      const other = loop.createTask(
        (function* (): Coroutine<string> {
          yield* sleep(5);
          return 'other finished';
        })(),
      );
      let code = '';
      try {
        yield* loop.sockConnect(tcpSocket(), ['127.0.0.1', port]);
      } catch (e) {
        code = `${(e as { code: string }).code} ${(e as Error).message}`;
      }
      return [code, yield* other];
    }
    expect(loop.runUntilComplete(main())).toEqual([
      `ECONNREFUSED connect ECONNREFUSED 127.0.0.1:${port}`,
      'other finished',
    ]);
  });

  it('connects started together each reach their own address (100 at once, to two ports and a closed one)', () => {
    const loop = testLoop(backend);
    const ports = [listenLoopback().port, listenLoopback().port];
    const refused = closedPort();
    function* main(): Coroutine<string[]> {
      const connects = Array.from({ length: 100 }, (_, i) => {
        const port = i === 50 ? refused : (ports[i % 2] as number);
        return loop.createTask(
          (function* (): Coroutine<string> {
            try {
              yield* loop.sockConnect(tcpSocket(), ['127.0.0.1', port]);
              return String(port);
            } catch (e) {
              return (e as { code: string }).code;
            }
          })(),
        );
      });
      return (yield* gather(...connects)) as string[];
    }
    const got = loop.runUntilComplete(main());
    // Even i to the first port (but i = 50, refused), odd i to the second.
    expect(got.filter((p) => p === String(ports[0]))).toHaveLength(49);
    expect(got.filter((p) => p === String(ports[1]))).toHaveLength(50);
    expect(got[50]).toBe('ECONNREFUSED');
  });

  it('every operation on a closed socket fails its Future with EBADF, never throws', () => {
    const loop = testLoop(backend);
    const [a] = testSocketpair();
    a.close();
    const ops = [
      loop.sockRecv(a, 10),
      loop.sockRecvInto(a, Buffer.alloc(10)),
      loop.sockSendAll(a, 'x'),
      loop.sockAccept(a),
      loop.sockConnect(a, ['127.0.0.1', 1]),
    ];
    function* main(): Coroutine<string[]> {
      const codes: string[] = [];
      for (const op of ops) {
        try {
          yield* op;
          codes.push('resolved');
        } catch (e) {
          codes.push((e as { code?: string }).code ?? String(e));
        }
      }
      return codes;
    }
    expect(loop.runUntilComplete(main())).toEqual(['EBADF', 'EBADF', 'EBADF', 'EBADF', 'EBADF']);
  });

  it('sockConnect resolves only once the handshake is done: a full accept queue leaves it pending', () => {
    const loop = testLoop(backend);
    // Backlog 0: one connection fits in the accept queue; the kernel drops
    // the SYNs of the next ones, whose connects stay in progress.
    const { port } = listenLoopback(0);
    const states = loop.runUntilComplete(
      (function* (): Coroutine<string[]> {
        const out: string[] = [];
        for (let i = 0; i < 3; i++) {
          const connecting = loop.sockConnect(tcpSocket(), ['127.0.0.1', port]);
          yield* sleep(100);
          out.push(connecting.done() ? 'connected' : 'pending');
          connecting.cancel();
        }
        return out;
      })(),
    );
    expect(states).toEqual(['connected', 'pending', 'pending']);
  });

  it('a reset mid-message fails the receive with ECONNRESET', () => {
    const loop = testLoop(backend);
    const { sock: server, port } = listenLoopback();
    function* main(): Coroutine<string> {
      const client = tcpSocket();
      yield* loop.sockConnect(client, ['127.0.0.1', port]);
      const [conn] = yield* loop.sockAccept(server);
      yield* loop.sockSendAll(client, 'partial mess');
      yield* sleep(5);
      client.setsockopt(SOL_SOCKET, SO_LINGER, Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]));
      client.close();
      try {
        for (;;) {
          const chunk = yield* loop.sockRecv(conn, 1 << 20);
          if (chunk.length === 0) return 'eof';
        }
      } catch (e) {
        return (e as { code: string }).code;
      } finally {
        conn.close();
      }
    }
    expect(loop.runUntilComplete(main())).toBe('ECONNRESET');
  });

  it('EOF mid-message: the partial data, then an empty read', () => {
    const loop = testLoop(backend);
    const [a, b] = testSocketpair();
    a.setBlocking(false);
    b.setBlocking(false);
    function* main(): Coroutine<string[]> {
      const reads: string[] = [];
      loop.callLater(5, () => {
        a.send('half a messa');
        a.close();
      });
      for (;;) {
        const chunk = yield* loop.sockRecv(b, 100);
        reads.push(chunk.toString());
        if (chunk.length === 0) return reads;
      }
    }
    expect(loop.runUntilComplete(main())).toEqual(['half a messa', '']);
  });

  it('sendAll survives partial writes and full buffers: 8 MiB to a slow reader', () => {
    const loop = testLoop(backend);
    const [a, b] = testSocketpair();
    a.setBlocking(false);
    b.setBlocking(false);
    const data = randomBytes(8 << 20);
    function* reader(): Coroutine<string> {
      const hash = createHash('sha256');
      const buf = Buffer.alloc(16384);
      let total = 0;
      while (total < data.length) {
        const n = yield* loop.sockRecvInto(b, buf);
        hash.update(buf.subarray(0, n));
        total += n;
        if (total % (1 << 20) < 16384) yield* sleep(1);
      }
      return hash.digest('hex');
    }
    function* main(): Coroutine<unknown> {
      return yield* gather(loop.sockSendAll(a, data), reader());
    }
    const [, digest] = loop.runUntilComplete(main()) as [undefined, string];
    expect(digest).toBe(createHash('sha256').update(data).digest('hex'));
  });

  it('sockSendAll sends a part of a buffer by offset and length; a send done at once is a done Future', () => {
    const loop = testLoop(backend);
    const [a, b] = testSocketpair();
    a.setBlocking(false);
    b.setBlocking(false);
    const data = Buffer.from('0123456789');
    function* main(): Coroutine<string> {
      const first = loop.sockSendAll(a, data, 2, 3);
      // Room in the buffer: sent before sockSendAll returned.
      expect(first.done()).toBe(true);
      expect(yield* first).toBeUndefined();
      yield* loop.sockSendAll(a, data, 8);
      yield* loop.sockSendAll(a, new Uint16Array([0x4241]), 0, 1);
      const buf = Buffer.alloc(16);
      let got = '';
      while (got.length < 6) {
        const n = yield* loop.sockRecvInto(b, buf, 4, 8);
        got += buf.toString('latin1', 4, 4 + n);
      }
      return got;
    }
    expect(loop.runUntilComplete(main())).toBe('23489A');
  });

  it('any view is its bytes: a Uint16Array or a DataView is filled and sent whole, by byte length', () => {
    const loop = testLoop(backend);
    const [a, b] = testSocketpair();
    a.setBlocking(false);
    b.setBlocking(false);
    function* main(): Coroutine<[number, number, string]> {
      yield* loop.sockSendAll(a, Buffer.from('abcdefghij'));
      // 3 elements, 6 bytes; then a 4-byte window of an 8-byte buffer.
      const words = new Uint16Array(3);
      const first = yield* loop.sockRecvInto(b, words);
      const view = new DataView(new ArrayBuffer(8), 2, 4);
      const second = yield* loop.sockRecvInto(b, view);
      yield* loop.sockSendAll(b, words);
      yield* loop.sockSendAll(b, view);
      return [first, second, (yield* loop.sockRecv(a, 100)).toString()];
    }
    expect(loop.runUntilComplete(main())).toEqual([6, 4, 'abcdefghij']);
  });

  it('a send of at most 64 KiB that has to wait copies its rest: the caller may reuse its buffer at once', () => {
    const loop = testLoop(backend);
    const [a, b] = testSocketpair();
    a.setBlocking(false);
    b.setBlocking(false);
    // Fill the pair until the kernel takes no more: the next send has to wait.
    const filler = Buffer.alloc(65536, '.');
    let filled = 0;
    for (let n = a.trySend(filler); n !== null; n = a.trySend(filler)) filled += n;
    const message = Buffer.alloc(1000, 'x');
    const sending = loop.sockSendAll(a, message, 0, 1000);
    expect(sending.done()).toBe(false);
    message.fill('y');
    function* main(): Coroutine<Buffer> {
      const chunks: Buffer[] = [];
      for (let total = 0; total < filled + 1000; ) {
        const chunk = yield* loop.sockRecv(b, 1 << 20);
        chunks.push(chunk);
        total += chunk.length;
      }
      yield* sending;
      return Buffer.concat(chunks);
    }
    const received = loop.runUntilComplete(main());
    expect(received.length).toBe(filled + 1000);
    expect(received.subarray(filled).toString()).toBe('x'.repeat(1000));
  });

  it('bad buffers, offsets and lengths: a clear error at the call, nothing sent or received', () => {
    const loop = testLoop(backend);
    const [a, b] = testSocketpair();
    a.setBlocking(false);
    b.setBlocking(false);
    const buf = Buffer.alloc(4);
    const range = expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' });
    const type = expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' });
    expect(() => loop.sockSendAll(a, buf, 5)).toThrow(range);
    expect(() => loop.sockSendAll(a, buf, 1, 4)).toThrow(range);
    expect(() => loop.sockSendAll(a, buf, -1)).toThrow(range);
    expect(() => loop.sockSendAll(a, buf, 1.5)).toThrow(range);
    expect(() => loop.sockSendAll(a, buf, '1' as unknown as number)).toThrow(type);
    expect(() => loop.sockSendAll(a, 'text', 1)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => loop.sockSendAll(a, [1, 2] as unknown as Buffer)).toThrow(type);
    expect(() => loop.sockRecvInto(b, buf, 5)).toThrow(range);
    expect(() => loop.sockRecvInto(b, buf, 2, 3)).toThrow(range);
    expect(() => loop.sockRecvInto(b, 'abcd' as unknown as Buffer)).toThrow(type);
    expect(() => loop.sockRecv(b, -1)).toThrow(range);
    expect(() => loop.sockRecv(b, Number.NaN)).toThrow(range);
    // Nothing was sent, and nothing watches b: the socket pair still works.
    expect(b.tryRecvInto(buf)).toBeNull();
    function* main(): Coroutine<string> {
      yield* loop.sockSendAll(a, 'ok');
      return (yield* loop.sockRecv(b, 10)).toString();
    }
    expect(loop.runUntilComplete(main())).toBe('ok');
  });

  if (backend === 'io_uring')
    it('io_uring: receives queue up and complete in order (none replaces another)', () => {
      const loop = testLoop(backend);
      const [a, b] = testSocketpair();
      b.setBlocking(false);
      function* main(): Coroutine<string[]> {
        const first = loop.sockRecv(b, 10);
        const second = loop.sockRecv(b, 10);
        a.send('one');
        const one = (yield* first).toString();
        expect(second.done()).toBe(false);
        a.send('two');
        return [one, (yield* second).toString()];
      }
      expect(loop.runUntilComplete(main())).toEqual(['one', 'two']);
    });

  // On io_uring receives queue up instead (above): no reader to replace.
  if (backend !== 'io_uring')
    it('a second receive replaces the first one as the reader, and addReader replaces an operation', () => {
      const loop = testLoop(backend);
      const [a, b] = testSocketpair();
      b.setBlocking(false);
      function* main(): Coroutine<[boolean, string, boolean, number]> {
        const first = loop.sockRecv(b, 10);
        const second = loop.sockRecv(b, 10);
        a.send('one');
        const got = (yield* second).toString();
        // The replaced receive never runs again (as in asyncio): it stays pending.
        const third = loop.sockRecv(b, 10);
        let readerRan = 0;
        loop.addReader(b, () => {
          readerRan++;
          loop.removeReader(b);
        });
        a.send('two');
        yield* sleep(5);
        return [first.done(), got, third.done(), readerRan];
      }
      expect(loop.runUntilComplete(main())).toEqual([false, 'one', false, 1]);
      // The data is still there: no disarmed operation consumed it.
      expect(b.recv(10).toString()).toBe('two');
    });

  it('cancelling a receive stops watching; the socket still works afterwards', () => {
    const loop = testLoop(backend);
    const [a, b] = testSocketpair();
    b.setBlocking(false);
    function* main(): Coroutine<string> {
      const pending = loop.sockRecv(b, 10);
      loop.callLater(5, () => pending.cancel());
      try {
        yield* pending;
      } catch (e) {
        if (!(e instanceof CancelledError)) throw e;
      }
      a.send('after');
      return (yield* loop.sockRecv(b, 10)).toString();
    }
    expect(loop.runUntilComplete(main())).toBe('after');
  });

  it('cancelling a replaced receive leaves the one that replaced it waiting', () => {
    const loop = testLoop(backend);
    const [a, b] = testSocketpair();
    b.setBlocking(false);
    function* main(): Coroutine<[boolean, string]> {
      const first = loop.sockRecv(b, 10);
      const second = loop.sockRecv(b, 10);
      first.cancel();
      yield* sleep(1);
      a.send('two');
      return [first.cancelled(), (yield* second).toString()];
    }
    expect(loop.runUntilComplete(main())).toEqual([true, 'two']);
  });

  it('a cancelled receive gives up its interest: the loop watches nothing after an iteration', () => {
    const loop = testLoop(backend);
    const [, b] = testSocketpair();
    b.setBlocking(false);
    function* main(): Coroutine<number> {
      const pending = loop.sockRecv(b, 10);
      yield* sleep(1);
      pending.cancel();
      // Dropped from the selector after one more idle iteration (see #applyInterest).
      yield* sleep(1);
      yield* sleep(1);
      return loop.selector.size;
    }
    expect(loop.runUntilComplete(main())).toBe(0);
  });

  it('getaddrinfo: numeric hosts at once, names on a thread, errors Node-style', () => {
    const loop = testLoop(backend);
    function* main(): Coroutine<unknown> {
      const v4 = yield* loop.getaddrinfo('127.0.0.1', 80);
      const v6 = yield* loop.getaddrinfo('::1', 443, { type: 1 });
      const named = yield* loop.getaddrinfo('localhost', 8080, { family: AF_INET, type: 1 });
      let failure: unknown;
      try {
        yield* loop.getaddrinfo('not-numeric.example', 80, { flags: AI_NUMERICHOST });
      } catch (e) {
        failure = e;
      }
      return { v4, v6, named, failure };
    }
    const { v4, v6, named, failure } = loop.runUntilComplete(main()) as Record<string, unknown>;
    expect(v4).toContainEqual({ family: AF_INET, type: 1, proto: 6, address: ['127.0.0.1', 80] });
    expect(v6).toEqual([{ family: AF_INET6, type: 1, proto: 6, address: ['::1', 443, 0, 0] }]);
    expect(named).toContainEqual(expect.objectContaining({ family: AF_INET, address: ['127.0.0.1', 8080] }));
    expect(failure).toBeInstanceOf(GetAddrInfoError);
    expect(failure).toMatchObject({ code: 'ENOTFOUND', syscall: 'getaddrinfo', hostname: 'not-numeric.example' });
  });

  it('sockConnect resolves a host name first', () => {
    const loop = testLoop(backend);
    const { sock: server, port } = listenLoopback();
    function* main(): Coroutine<string> {
      const client = tcpSocket();
      const [[conn]] = (yield* gather(loop.sockAccept(server), loop.sockConnect(client, ['localhost', port]))) as [
        [Socket, unknown],
        undefined,
      ];
      conn.close();
      return (client.getpeername() as [string, number]).join(':');
    }
    expect(loop.runUntilComplete(main())).toBe(`127.0.0.1:${port}`);
  });
});
