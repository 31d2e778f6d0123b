/**
 * loop.startTls and the sock_* operations on a TLS socket (src/loop/tls-ops.ts),
 * on every backend: an iomux TLS server and clients in one owning loop,
 * node:tls in cooperative mode, handshake failures and timeouts through the
 * Future, cancellation, sends that queue, and session resumption.
 */
import { createHash, randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';

import { type CertificateSet, makeCertificates } from '../../bench/src/tls-certs.js';
import { CancelledError, type Coroutine, gather, sleep } from '../../src/coro/index.js';
import type { EventLoop } from '../../src/loop/index.js';
import { SHUT_WR, type Socket, TlsContext, TlsError, type TlsSocket } from '../../src/sys/index.js';
import { testSocketpair } from '../helpers/fds.js';
import { BACKENDS, testLoop } from '../helpers/loops.js';
import { listenLoopback, tcpSocket } from '../helpers/net.js';
import { startTlsEchoServer } from '../helpers/tls-servers.js';

let certs: CertificateSet;
let serverContext: TlsContext;

beforeAll(() => {
  certs = makeCertificates();
  serverContext = new TlsContext({ server: true, cert: certs.server.cert, key: certs.server.key, alpn: ['echo'] });
});

// A TLS echo server: accepts `connections`, echoes each until close_notify.
function* tlsEchoServer(loop: EventLoop, server: Socket, connections: number): Coroutine<number> {
  const handlers = [];
  for (let i = 0; i < connections; i++) {
    const [conn] = yield* loop.sockAccept(server);
    handlers.push(loop.createTask(echo(loop, conn)));
  }
  let total = 0;
  for (const handler of handlers) total += yield* handler;
  return total;
}

function* echo(loop: EventLoop, conn: Socket): Coroutine<number> {
  const tls = yield* loop.startTls(conn, { serverSide: true, context: serverContext });
  const buf = Buffer.allocUnsafe(65536);
  let total = 0;
  try {
    for (;;) {
      const n = yield* loop.sockRecvInto(tls, buf);
      if (n === 0) break;
      total += n;
      yield* loop.sockSendAll(tls, buf.subarray(0, n));
    }
  } finally {
    tls.close();
  }
  return total;
}

function* connectTls(loop: EventLoop, port: number, options = {}): Coroutine<TlsSocket> {
  const sock = tcpSocket();
  yield* loop.sockConnect(sock, ['127.0.0.1', port]);
  return yield* loop.startTls(sock, { serverName: 'localhost', ca: certs.ca.cert, alpn: ['echo'], ...options });
}

// gather() needs the running loop: it is called inside the loop's coroutine.
function runAll(loop: EventLoop, ...coroutines: Coroutine<unknown>[]): unknown[] {
  return loop.runUntilComplete(
    (function* (): Coroutine<unknown[]> {
      return (yield* gather(...coroutines)) as unknown[];
    })(),
  );
}

function* alive(): Coroutine<string> {
  return yield* sleep(1, 'alive');
}

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

describe.each(BACKENDS)('TLS on the %s loop', (backend) => {
  it('echoes 64 B x 100 round trips on 10 connections, and 2 MiB each way at once', () => {
    const loop = testLoop(backend);
    const { sock: server, port } = listenLoopback();
    function* pingPong(): Coroutine<number> {
      const tls = yield* connectTls(loop, port);
      expect(tls.alpnProtocol).toBe('echo');
      const message = Buffer.alloc(64, 'p');
      let got = 0;
      for (let i = 0; i < 100; i++) {
        yield* loop.sockSendAll(tls, message);
        let n = 0;
        while (n < 64) n += (yield* loop.sockRecv(tls, 64 - n)).length;
        got += n;
      }
      tls.close();
      return got;
    }
    function* bulk(): Coroutine<boolean> {
      const tls = yield* connectTls(loop, port);
      const data = randomBytes(2 << 20);
      const chunks: Buffer[] = [];
      // Receive while sending: the echo's bytes come back before the send ends.
      const reader = loop.createTask(
        (function* (): Coroutine<void> {
          let got = 0;
          while (got < data.length) {
            const chunk = yield* loop.sockRecv(tls, 65536);
            if (chunk.length === 0) break;
            chunks.push(chunk);
            got += chunk.length;
          }
        })(),
      );
      yield* loop.sockSendAll(tls, data);
      yield* reader;
      tls.close();
      return sha(Buffer.concat(chunks)) === sha(data);
    }
    const results = runAll(
      loop,
      tlsEchoServer(loop, server, 11),
      bulk(),
      ...Array.from({ length: 10 }, () => pingPong()),
    ) as [number, boolean, ...number[]];
    expect(results[0]).toBe((2 << 20) + 10 * 6400);
    expect(results[1]).toBe(true);
    expect(results.slice(2)).toEqual(Array(10).fill(6400));
  });

  it('sends started together go out whole and in order', () => {
    const loop = testLoop(backend);
    const { sock: server, port } = listenLoopback();
    const parts = [randomBytes(1 << 20), Buffer.from('small'), randomBytes(300_000), Buffer.from('end')];
    function* client(): Coroutine<boolean> {
      const tls = yield* connectTls(loop, port);
      // None awaited before the next starts: each queues behind the one before.
      const sends = parts.map((part) => loop.sockSendAll(tls, part));
      const expected = Buffer.concat(parts);
      const chunks: Buffer[] = [];
      let got = 0;
      while (got < expected.length) {
        const chunk = yield* loop.sockRecv(tls, 65536);
        chunks.push(chunk);
        got += chunk.length;
      }
      for (const send of sends) yield* send;
      tls.close();
      return Buffer.concat(chunks).equals(expected);
    }
    const [, ok] = runAll(loop, tlsEchoServer(loop, server, 1), client()) as [number, boolean];
    expect(ok).toBe(true);
  });

  it('a certificate that fails verification fails the Future with its code; the loop goes on', () => {
    const loop = testLoop(backend);
    const { sock: server, port } = listenLoopback();
    const expired = new TlsContext({ server: true, cert: certs.expired.cert, key: certs.expired.key });
    function* serve(): Coroutine<string> {
      const [conn] = yield* loop.sockAccept(server);
      try {
        yield* loop.startTls(conn, { serverSide: true, context: expired });
        return 'handshaken';
      } catch (error) {
        return (error as { code: string }).code;
      } finally {
        conn.close();
      }
    }
    function* client(): Coroutine<string> {
      try {
        yield* connectTls(loop, port);
        return 'connected';
      } catch (error) {
        expect(error).toBeInstanceOf(TlsError);
        return (error as TlsError).code;
      }
    }
    const [, code] = runAll(loop, serve(), client()) as [string, string];
    expect(code).toBe('CERT_HAS_EXPIRED');
    expect(runAll(loop, alive())).toEqual(['alive']);
  });

  it('a peer that never answers times the handshake out (TimeoutError)', () => {
    const loop = testLoop(backend);
    const { sock: server, port } = listenLoopback();
    function* client(): Coroutine<string> {
      const sock = tcpSocket();
      yield* loop.sockConnect(sock, ['127.0.0.1', port]);
      try {
        yield* loop.startTls(sock, { serverName: 'localhost', ca: certs.ca.cert, handshakeTimeoutMs: 100 });
        return 'handshaken';
      } catch (error) {
        return (error as Error).name;
      }
    }
    expect(loop.runUntilComplete(client())).toBe('TimeoutError');
    expect(server.closed).toBe(false);
  });

  it('a cancelled receive stops waiting; the next one gets the bytes', () => {
    const loop = testLoop(backend);
    const { sock: server, port } = listenLoopback();
    function* client(): Coroutine<string> {
      const tls = yield* connectTls(loop, port);
      const first = loop.sockRecv(tls, 100);
      yield* sleep(5);
      first.cancel();
      yield* loop.sockSendAll(tls, 'after the cancel');
      let text = '';
      while (text.length < 16) text += (yield* loop.sockRecv(tls, 100)).toString();
      tls.close();
      expect(first.cancelled()).toBe(true);
      return text;
    }
    const [, text] = runAll(loop, tlsEchoServer(loop, server, 1), client()) as [number, string];
    expect(text).toBe('after the cancel');
  });

  it('the same options reuse a context: the second connection resumes its session', () => {
    const loop = testLoop(backend);
    const { sock: server, port } = listenLoopback();
    const sessionKey = `resume-${backend}-${port}`;
    function* client(): Coroutine<boolean> {
      const tls = yield* connectTls(loop, port, { sessionKey });
      // A round trip brings TLS 1.3's session ticket.
      yield* loop.sockSendAll(tls, 'x');
      yield* loop.sockRecv(tls, 1);
      const reused = tls.sessionReused;
      tls.close();
      return reused;
    }
    function* main(): Coroutine<boolean[]> {
      const served = loop.createTask(tlsEchoServer(loop, server, 2));
      const first = yield* client();
      const second = yield* client();
      yield* served;
      return [first, second];
    }
    expect(loop.runUntilComplete(main())).toEqual([false, true]);
  });

  it('TLS over a Unix socketpair; shutdown(SHUT_WR) sends close_notify, the peer reads 0', () => {
    const loop = testLoop(backend);
    const [a, b] = testSocketpair();
    a.setBlocking(false);
    b.setBlocking(false);
    const clientContext = new TlsContext({ ca: certs.ca.cert });
    function* main(): Coroutine<[string, number]> {
      const [client, srv] = (yield* gather(
        loop.startTls(a, { context: clientContext, serverName: 'localhost', sessionKey: 'unix' }),
        loop.startTls(b, { serverSide: true, context: serverContext }),
      )) as [TlsSocket, TlsSocket];
      yield* loop.sockSendAll(client, 'over unix');
      client.shutdown(SHUT_WR);
      const text = (yield* loop.sockRecv(srv, 100)).toString();
      const eof = (yield* loop.sockRecv(srv, 100)).length;
      client.close();
      srv.close();
      return [text, eof];
    }
    expect(loop.runUntilComplete(main())).toEqual(['over unix', 0]);
  });

  it('a socket closed under a waiting TLS receive leaves the loop working', () => {
    const loop = testLoop(backend);
    const { sock: server, port } = listenLoopback();
    function* client(): Coroutine<string> {
      const tls = yield* connectTls(loop, port);
      const waiting = loop.sockRecv(tls, 10);
      yield* sleep(5);
      waiting.cancel();
      tls.socket.close();
      try {
        yield* loop.sockRecv(tls, 10);
        return 'received';
      } catch (error) {
        return (error as { code: string }).code;
      }
    }
    function* serve(): Coroutine<void> {
      const [conn] = yield* loop.sockAccept(server);
      const tls = yield* loop.startTls(conn, { serverSide: true, context: serverContext });
      yield* sleep(50);
      tls.close();
    }
    const [, code] = runAll(loop, serve(), client()) as [undefined, string];
    expect(code).toBe('EBADF');
    expect(runAll(loop, alive())).toEqual(['alive']);
  });

  it('against node:tls in cooperative mode (an async Task)', async () => {
    const peer = await startTlsEchoServer(certs);
    try {
      const loop = testLoop(backend);
      const text = await loop.run(async () => {
        const sock = tcpSocket();
        await loop.sockConnect(sock, ['127.0.0.1', peer.port]);
        const tls = await loop.startTls(sock, { serverName: 'localhost', ca: certs.ca.cert });
        await loop.sockSendAll(tls, 'hello node');
        let got = '';
        while (got.length < 10) got += (await loop.sockRecv(tls, 100)).toString();
        tls.close();
        return `${tls.protocol} ${got}`;
      });
      expect(text).toBe('TLSv1.3 hello node');
    } finally {
      await peer.close();
    }
  });

  it('bad options throw at once and start nothing', () => {
    const loop = testLoop(backend);
    const sock = tcpSocket();
    expect(() => loop.startTls(sock, { serverSide: 'yes' as never })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
    );
    expect(() => loop.startTls(sock, { handshakeTimeoutMs: 0 })).toThrow(RangeError);
    expect(() => loop.startTls(sock, { context: serverContext })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
    );
    expect(() => loop.startTls(sock, { minVersion: 'SSLv3' as never })).toThrow(
      expect.objectContaining({ code: 'ERR_TLS_INVALID_PROTOCOL_VERSION' }),
    );
    expect(() => loop.startTls(sock, null as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(sock.closed).toBe(false);
  });

  it('a cancelled handshake leaves nothing watched', () => {
    const loop = testLoop(backend);
    const { sock: server, port } = listenLoopback();
    function* client(): Coroutine<string> {
      const sock = tcpSocket();
      yield* loop.sockConnect(sock, ['127.0.0.1', port]);
      const handshake = loop.startTls(sock, { serverName: 'localhost', ca: certs.ca.cert });
      yield* sleep(5);
      handshake.cancel();
      try {
        yield* handshake;
        return 'done';
      } catch (error) {
        return error instanceof CancelledError ? 'cancelled' : String(error);
      }
    }
    expect(loop.runUntilComplete(client())).toBe('cancelled');
    expect(server.closed).toBe(false);
  });
});
