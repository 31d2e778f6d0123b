/**
 * The echo servers the echo benchmark compares, each run in its own process:
 *
 *   node echo-server.js iomux [select|poll|epoll]   the loop, owning mode, coroutine style
 *   node echo-server.js iomux-coop                  the same coroutines, cooperative mode (await loop.run)
 *   node echo-server.js iomux-callbacks             the loop, owning mode, callbacks (addReader + try*)
 *   node echo-server.js selectors-iomux             the notes' selectors program (echo-selectors.ts)
 *   node echo-server.js net                         node:net
 *
 * Prints "listening <port>" and serves until killed. TCP_NODELAY everywhere,
 * as in the C floor.
 */
import { createServer } from 'node:net';

import type { Coroutine } from '../coro/index.js';
import { EventLoop, type SelectorName } from '../loop/index.js';
import {
  AF_INET,
  IPPROTO_TCP,
  OSError,
  SO_REUSEADDR,
  SOCK_STREAM,
  SOL_SOCKET,
  Socket,
  TCP_NODELAY,
} from '../sys/index.js';
import { serveNotesSelectors } from './echo-selectors.js';

/** A non-blocking listening socket on an ephemeral loopback port. */
function listenSocket(): Socket {
  const server = new Socket(AF_INET, SOCK_STREAM);
  server.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
  server.bind(['127.0.0.1', 0]);
  server.listen(4096);
  server.setBlocking(false);
  return server;
}

function serveIomux(selector: SelectorName, cooperative = false): void {
  const loop = new EventLoop({ selector });
  const server = listenSocket();

  // One receive buffer for every connection, as the C floor has: a
  // connection's coroutine resumes the moment its receive completes (in the
  // same pass of the loop) and hands the bytes to sockSendAll, which lets go
  // of them before it returns (a send of at most 64 KiB copies what it
  // cannot send at once); so no other receive can overwrite them first, and
  // 100 connections touch 64 KiB rather than 6.4 MB, which stays in cache.
  const buf = Buffer.allocUnsafe(65536);

  function* echo(conn: Socket): Coroutine<void> {
    conn.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
    try {
      for (;;) {
        const n = yield* loop.sockRecvInto(conn, buf);
        if (n === 0) break;
        yield* loop.sockSendAll(conn, buf, 0, n);
      }
    } finally {
      conn.close();
    }
  }

  function* main(): Coroutine<void> {
    for (;;) {
      const [conn] = yield* loop.sockAccept(server);
      loop.createTask(echo(conn)).addDoneCallback((task) => {
        // A reset client is normal at the end of a run.
        if (!task.cancelled()) task.exception();
      });
    }
  }

  const [, port] = server.getsockname() as [string, number];
  process.stdout.write(`listening ${port}\n`);
  // For the C10K bench: loop iterations and the memory JavaScript holds (heap
  // plus buffers: RSS would miss buffer pages idle connections never touch).
  if (process.env['IOMUX_STATS'] === '1') {
    const report = (): void => {
      const { heapUsed, external } = process.memoryUsage();
      process.stdout.write(`stats ${loop.iterations} ${heapUsed + external}\n`);
      loop.callLater(200, report);
    };
    loop.callSoon(report);
  }
  if (cooperative) void loop.run(main());
  else loop.runUntilComplete(main());
}

/**
 * The loop without coroutines: a reader callback per connection receives
 * into one buffer shared by all and sends straight from it, with the
 * non-throwing try* calls (no exception, no promise, no Future per message).
 * A send the kernel takes only in part copies the rest out of the shared
 * buffer and waits for writability instead of readability (the peer is not
 * reading: stop reading from it too).
 */
function serveCallbacks(): void {
  const loop = new EventLoop({ selector: 'epoll' });
  const server = listenSocket();
  const buf = Buffer.allocUnsafe(65536);

  function close(conn: Socket): void {
    loop.removeReader(conn);
    loop.removeWriter(conn);
    conn.close();
  }

  // The rest of a short send, by itself: the shared buffer is not its own.
  function sendRest(conn: Socket, data: Buffer, sent: number): void {
    loop.removeReader(conn);
    loop.addWriter(conn, writable, conn, Buffer.from(data.subarray(Math.max(sent, 0))));
  }

  function readable(conn: Socket): void {
    let n: number | null;
    let sent: number;
    try {
      n = conn.tryRecvInto(buf);
      if (n === null) return; // would block: a spurious wake-up
      if (n === 0) {
        close(conn);
        return;
      }
      sent = conn.trySend(buf.subarray(0, n)) ?? 0;
    } catch (e) {
      if (!(e instanceof OSError)) throw e;
      close(conn); // reset by the client at the end of a run
      return;
    }
    if (sent !== n) sendRest(conn, buf.subarray(0, n), sent);
  }

  function writable(conn: Socket, data: Buffer): void {
    let sent: number;
    try {
      sent = conn.trySend(data) ?? 0;
    } catch (e) {
      if (!(e instanceof OSError)) throw e;
      close(conn);
      return;
    }
    if (sent === data.length) {
      loop.removeWriter(conn);
      loop.addReader(conn, readable, conn);
    } else if (sent > 0) {
      loop.addWriter(conn, writable, conn, data.subarray(sent));
    }
  }

  loop.addReader(server, () => {
    for (;;) {
      const conn = server.tryAccept();
      if (conn === null) return;
      conn.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
      loop.addReader(conn, readable, conn);
    }
  });
  process.stdout.write(`listening ${(server.getsockname() as [string, number])[1]}\n`);
  loop.runForever();
}

function serveNet(): void {
  const server = createServer({ noDelay: true }, (socket) => {
    socket.on('data', (data) => socket.write(data));
    socket.on('error', () => socket.destroy());
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no TCP address');
    process.stdout.write(`listening ${address.port}\n`);
  });
}

const [kind, selector] = process.argv.slice(2);
if (kind === 'iomux') serveIomux((selector ?? 'epoll') as SelectorName);
else if (kind === 'iomux-coop') serveIomux('epoll', true);
else if (kind === 'iomux-callbacks') serveCallbacks();
else if (kind === 'selectors-iomux') serveNotesSelectors();
else if (kind === 'net') serveNet();
else {
  process.stderr.write(
    'usage: echo-server.js iomux [select|poll|epoll] | iomux-coop | iomux-callbacks | selectors-iomux | net\n',
  );
  process.exitCode = 2;
}
