/**
 * The echo leg: a server on the loop under test (every connection echoed
 * until EOF) and clients that reach it through the fault proxy, send a
 * seeded payload, half-close, and check every byte that comes back against
 * the payload as it arrives and the whole by SHA-256 at EOF. A connection the
 * proxy broke must end with an error code (ECONNRESET, EPIPE, or EOF_EARLY
 * for an echo cut short), never with a wrong byte.
 */
import { createHash } from 'node:crypto';

import { CancelledError, type Coroutine, sleep, type Task } from 'iomux/coro';
import type { EventLoop } from 'iomux/loop';
import { AF_INET, SHUT_WR, SO_REUSEADDR, SOCK_STREAM, SOL_SOCKET, Socket } from 'iomux/sys';

import type { Rng } from './prng.js';
import { bump, errorCode, type Tally } from './tally.js';

/** accept(2) errors after which a server waits and accepts again. */
const ACCEPT_RETRY = new Set(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM', 'ECONNABORTED', 'EPROTO', 'EPERM']);

/** An echo server running on a loop. */
export interface EchoServer {
  port: number;
  /** Stops accepting, then waits (at most `deadlineMs`) for the connections in flight. */
  close(deadlineMs: number): Coroutine<void>;
}

/** A non-blocking TCP socket on 127.0.0.1 listening with `backlog`. */
export function listenLoopback(backlog = 511): Socket {
  const sock = new Socket(AF_INET, SOCK_STREAM);
  try {
    sock.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
    sock.bind(['127.0.0.1', 0]);
    sock.listen(backlog);
    sock.setBlocking(false);
    return sock;
  } catch (error) {
    sock.close();
    throw error;
  }
}

/** Starts an echo server on `loop` (as a Task); accept errors are counted and retried. */
export function startEchoServer(loop: EventLoop, tally: Tally, listener: Socket = listenLoopback()): EchoServer {
  const port = (listener.getsockname() as [string, number])[1];
  const handlers = new Set<Task<void>>();
  function* serve(): Coroutine<void> {
    try {
      for (;;) {
        let conn: Socket;
        try {
          [conn] = yield* loop.sockAccept(listener);
        } catch (error) {
          const code = errorCode(error);
          if (!ACCEPT_RETRY.has(code)) throw error;
          bump(tally.errors, `accept ${code}`);
          yield* sleep(10);
          continue;
        }
        bump(tally.ops, 'accept');
        const handler = loop.createTask(echoConnection(loop, conn, tally));
        handlers.add(handler);
        handler.addDoneCallback(() => handlers.delete(handler));
      }
    } finally {
      listener.close();
    }
  }
  const acceptor = loop.createTask(serve());
  return {
    port,
    *close(deadlineMs: number): Coroutine<void> {
      acceptor.cancel();
      try {
        yield* acceptor;
      } catch (error) {
        if (!(error instanceof CancelledError)) tally.failures.push(`echo server: accept loop failed: ${error}`);
      }
      const started = loop.time();
      while (handlers.size > 0 && loop.time() - started < deadlineMs) yield* sleep(5);
      if (handlers.size > 0) {
        tally.failures.push(
          `echo server: ${handlers.size} connection(s) still open ${deadlineMs} ms after the clients ended`,
        );
        for (const h of handlers) h.cancel();
      }
    },
  };
}

function* echoConnection(loop: EventLoop, conn: Socket, tally: Tally): Coroutine<void> {
  const buf = Buffer.allocUnsafe(32 * 1024);
  try {
    for (;;) {
      const n = yield* loop.sockRecvInto(conn, buf);
      if (n === 0) break;
      yield* loop.sockSendAll(conn, buf.subarray(0, n));
    }
    bump(tally.ops, 'echo served');
  } catch (error) {
    if (error instanceof CancelledError) throw error;
    bump(tally.errors, `echo served ${errorCode(error)}`);
  } finally {
    conn.close();
  }
}

/** One echo client's job. */
export interface EchoJob {
  /** The proxy port to connect to (dynamic or tight). */
  proxyPort: number;
  /** The echo server's port, sent first as the proxy's preamble (0: no preamble, connected straight). */
  serverPort: number;
  payload: Buffer;
  /** Largest single send (the payload goes out in random pieces up to this). */
  maxPiece: number;
}

/** Makes a job with a seeded payload of 1 byte to `maxBytes`. */
export function drawEchoJob(rng: Rng, proxyPort: number, serverPort: number, maxBytes: number): EchoJob {
  const size = rng.chance(0.1) ? rng.int(1, 16) : rng.int(1, maxBytes);
  return { proxyPort, serverPort, payload: rng.bytes(size), maxPiece: rng.pick([1, 7, 512, 4096, 65536]) };
}

function* sendAll(loop: EventLoop, sock: Socket, job: EchoJob, rng: Rng): Coroutine<void> {
  if (job.serverPort !== 0) {
    const preamble = Buffer.alloc(2);
    preamble.writeUInt16BE(job.serverPort);
    yield* loop.sockSendAll(sock, preamble);
  }
  let offset = 0;
  // Small pieces are many sends: cap their count, then send the rest at once.
  for (let pieces = 0; offset < job.payload.length && pieces < 64; pieces++) {
    const n = Math.min(job.payload.length - offset, rng.int(1, job.maxPiece));
    yield* loop.sockSendAll(sock, job.payload, offset, n);
    offset += n;
  }
  if (offset < job.payload.length) yield* loop.sockSendAll(sock, job.payload, offset);
  sock.shutdown(SHUT_WR);
}

/**
 * Runs one echo client (on `premade`, a socket made earlier, when given):
 * resolves to the outcome code ('ok', an errno code, 'EOF_EARLY'); a wrong
 * byte is a failure in `tally`. The socket is closed at the end.
 */
export function* echoClient(
  loop: EventLoop,
  job: EchoJob,
  rng: Rng,
  tally: Tally,
  premade?: Socket,
): Coroutine<string> {
  let sock: Socket;
  try {
    sock = premade ?? new Socket(AF_INET, SOCK_STREAM);
  } catch (error) {
    return errorCode(error);
  }
  let sender: Task<void> | null = null;
  try {
    sock.setBlocking(false);
    yield* loop.sockConnect(sock, ['127.0.0.1', job.proxyPort]);
    sender = loop.createTask(sendAll(loop, sock, job, rng.fork(1)));
    const hash = createHash('sha256');
    const buf = Buffer.allocUnsafe(64 * 1024);
    let received = 0;
    let outcome = 'ok';
    try {
      for (;;) {
        const n = yield* loop.sockRecvInto(sock, buf);
        if (n === 0) break;
        if (received + n > job.payload.length || buf.compare(job.payload, received, received + n, 0, n) !== 0) {
          tally.failures.push(`echo: wrong bytes at offset ${received}..${received + n} of ${job.payload.length}`);
          return 'MISMATCH';
        }
        hash.update(buf.subarray(0, n));
        received += n;
      }
      if (received < job.payload.length) outcome = 'EOF_EARLY';
    } catch (error) {
      if (error instanceof CancelledError) throw error;
      outcome = errorCode(error);
    }
    try {
      yield* sender;
    } catch (error) {
      if (error instanceof CancelledError) throw error;
      if (outcome === 'ok') outcome = errorCode(error);
    }
    if (outcome === 'ok') {
      const want = createHash('sha256').update(job.payload).digest('hex');
      if (hash.digest('hex') !== want) {
        tally.failures.push(`echo: SHA-256 of ${received} bytes differs from what was sent`);
        return 'MISMATCH';
      }
      tally.bytesVerified += received;
    }
    return outcome;
  } catch (error) {
    if (error instanceof CancelledError) throw error;
    return errorCode(error);
  } finally {
    sender?.cancel();
    sock.close();
  }
}
