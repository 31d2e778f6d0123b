/**
 * The echo server of `iomux bench c10k` (and of the project's echo
 * benchmark): the iomux loop with a coroutine per connection, TCP_NODELAY,
 * one shared receive buffer, as the C floor has.
 */
import type { Coroutine, Future } from '../../coro/index.js';
import { type BackendName, EventLoop } from '../../loop/index.js';
import {
  AF_INET,
  IPPROTO_TCP,
  SO_REUSEADDR,
  SOCK_STREAM,
  SOL_SOCKET,
  Socket,
  TCP_NODELAY,
  type TlsSocket,
} from '../../sys/index.js';

/** A non-blocking listening socket on an ephemeral loopback port. */
export function listenSocket(): Socket {
  const server = new Socket(AF_INET, SOCK_STREAM);
  server.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
  server.bind(['127.0.0.1', 0]);
  server.listen(4096);
  server.setBlocking(false);
  return server;
}

/** What a connection becomes before the echo starts: a TLS socket, once its handshake is done. */
export type WrapConnection = (loop: EventLoop, conn: Socket) => Future<TlsSocket>;

/**
 * Serves echo on the iomux loop with one coroutine per connection: owning
 * mode (`runUntilComplete`), or cooperative mode (`await loop.run`) when
 * `cooperative`; each connection made first what `wrap` makes of it (TLS);
 * `prepare` sees the loop before it runs (the traced row attaches a trace).
 * Prints "listening <port>", and with IOMUX_STATS=1 a line
 * "stats <loop iterations> <heap + buffer bytes>" every 200 ms; serves until
 * the process is killed.
 */
export function serveIomux(
  backend: BackendName,
  cooperative = false,
  wrap?: WrapConnection,
  prepare?: (loop: EventLoop) => void,
): void {
  const loop = new EventLoop({ backend });
  prepare?.(loop);
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
      const stream = wrap === undefined ? conn : yield* wrap(loop, conn);
      for (;;) {
        const n = yield* loop.sockRecvInto(stream, buf);
        if (n === 0) break;
        yield* loop.sockSendAll(stream, buf, 0, n);
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
