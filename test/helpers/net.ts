/** Loopback servers and clients for loop tests. */
import { onTestFinished } from 'vitest';

import type { Coroutine } from '../../src/coro/index.js';
import type { EventLoop } from '../../src/loop/index.js';
import { AF_INET, SO_REUSEADDR, SOCK_STREAM, SOL_SOCKET, Socket } from '../../src/sys/index.js';

/** A non-blocking listening socket on 127.0.0.1, closed at the end of the test. */
export function listenLoopback(backlog = 1024): { sock: Socket; port: number } {
  const sock = new Socket(AF_INET, SOCK_STREAM);
  onTestFinished(() => sock.close());
  sock.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
  sock.bind(['127.0.0.1', 0]);
  sock.listen(backlog);
  sock.setBlocking(false);
  const [, port] = sock.getsockname() as [string, number];
  return { sock, port };
}

/** A port nothing listens on: bound, then closed. */
export function closedPort(): number {
  const s = new Socket(AF_INET, SOCK_STREAM);
  s.bind(['127.0.0.1', 0]);
  const [, port] = s.getsockname() as [string, number];
  s.close();
  return port;
}

/** A non-blocking TCP socket, closed at the end of the test. */
export function tcpSocket(): Socket {
  const sock = new Socket(AF_INET, SOCK_STREAM);
  sock.setBlocking(false);
  onTestFinished(() => sock.close());
  return sock;
}

/** The echo server of the notes' style, as a coroutine: accept, then echo each connection until EOF. */
export function* echoServer(loop: EventLoop, server: Socket, connections: number): Coroutine<number> {
  let served = 0;
  const handlers = [];
  for (let i = 0; i < connections; i++) {
    const [conn] = yield* loop.sockAccept(server);
    handlers.push(loop.createTask(echo(loop, conn)));
  }
  for (const h of handlers) served += yield* h;
  return served;
}

function* echo(loop: EventLoop, conn: Socket): Coroutine<number> {
  const buf = Buffer.allocUnsafe(65536);
  let total = 0;
  try {
    for (;;) {
      const n = yield* loop.sockRecvInto(conn, buf);
      if (n === 0) break;
      total += n;
      yield* loop.sockSendAll(conn, buf.subarray(0, n));
    }
  } finally {
    conn.close();
  }
  return total;
}
