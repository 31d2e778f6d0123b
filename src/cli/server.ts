/**
 * The embedded test server, written on the iomux loop (owning mode,
 * coroutines): the notes' shop and a few endpoints for tests and benchmarks.
 *
 *   /goods/<n>/    an HTML page, like the notes' shop (shop.projectsedu.com/goods/<n>/)
 *   /bytes/<n>     n bytes, Content-Length (n <= 1 GiB)
 *   /chunked/<n>   n bytes in chunked transfer coding, with a trailer
 *   /delay/<ms>    a short page after ms milliseconds (ms <= 60,000)
 *
 * With a latency (ServerOptions.latencyMs, `iomux serve --latency MS`)
 * every response is held that long first, as a distant server's would be.
 *
 * HTTP/1.1 keep-alive (HTTP/1.0: close), HEAD, and 400/404/405/431 answers.
 * A request body (Content-Length) is read and dropped, never taken for the
 * next request; a chunked request body is refused (400, and the connection
 * closes), as is a Content-Length that is not one plain number. A client
 * that sends no complete head within the header timeout, or stays silent
 * between requests past the idle timeout, is closed. Running out of fds
 * (EMFILE) pauses accepting, never ends it.
 *
 * With a certificate and key (ServerOptions.tls, `iomux serve --tls CERT
 * KEY`) it serves the same over TLS: one server TlsContext made at start,
 * and each accepted connection's handshake (`loop.startTls`, within the
 * header timeout) before the same HTTP handling on the TLS socket. A
 * handshake that fails closes that connection only.
 */
import type { Coroutine } from '../coro/index.js';
import { sleep, withTimeout } from '../coro/index.js';
import type { EventLoop } from '../loop/index.js';
import {
  AF_INET,
  IPPROTO_TCP,
  isErrnoError,
  SO_REUSEADDR,
  SOCK_STREAM,
  SOL_SOCKET,
  Socket,
  TCP_NODELAY,
  TlsContext,
  type TlsSocket,
} from '../sys/index.js';

const MAX_HEAD = 16 * 1024;
const MAX_BYTES = 1 << 30;
const CHUNK = 16 * 1024;
const FILL = Buffer.alloc(CHUNK, 'iomux ');

/** Limits of the embedded server, in milliseconds. */
export interface ServerOptions {
  /** A request head must be complete this long after its first byte (default 60,000, as Node's headersTimeout). */
  headerTimeoutMs?: number;
  /** A kept-alive connection with no request for this long is closed (default 5,000, as Node's keepAliveTimeout). */
  idleTimeoutMs?: number;
  /**
   * Each response is held this long before it goes out (default 0): the
   * round trip of a page from a real shop, so that loopback shows what the
   * notes' network shows. A timer on the loop, no thread, per request.
   */
  latencyMs?: number;
  /** Serve over TLS with this certificate (chain) and its key, PEM. */
  tls?: { cert: string | Buffer; key: string | Buffer };
}

/** What a connection is served over: the socket, or its TLS socket. */
type Stream = Socket | TlsSocket;

// accept(2) failing for want of resources (fds, memory) or for a connection
// that died in the queue: try again later, never stop accepting.
const ACCEPT_RETRY_CODES = new Set(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM', 'ECONNABORTED', 'EPROTO', 'EPERM']);
const ACCEPT_BACKOFF_MS = 100;

/** A listening server on the loop. */
export interface EmbeddedServer {
  port: number;
  /** Stops accepting and closes the listening socket (connections in flight finish). */
  close(): void;
}

interface Request {
  method: string;
  path: string;
  keepAlive: boolean;
  /** Bytes of body that follow the head (Content-Length; 0 when none). */
  bodyBytes: number;
}

function goodsPage(n: string): Buffer {
  const items = '<li>in stock</li>'.repeat(32);
  return Buffer.from(
    `<!doctype html>\n<html><head><title>goods ${n}</title></head><body><h1>goods ${n}</h1><ul>${items}</ul></body></html>\n`,
  );
}

function head(status: string, fields: Record<string, string | number>, keepAlive: boolean): Buffer {
  let text = `HTTP/1.1 ${status}\r\nServer: iomux\r\nConnection: ${keepAlive ? 'keep-alive' : 'close'}\r\n`;
  for (const [name, value] of Object.entries(fields)) text += `${name}: ${value}\r\n`;
  return Buffer.from(`${text}\r\n`, 'latin1');
}

// Parses a request head; null for one this server refuses with 400 (a
// malformed line, a chunked body, a Content-Length that is not one number).
function parseRequest(text: string): Request | null {
  const lines = text.split('\r\n');
  const m = /^([A-Z]+) (\/\S*) HTTP\/1\.([01])$/.exec(lines[0] ?? '');
  if (m === null) return null;
  // Connection is a list of tokens, possibly over several fields ("keep-alive, close").
  const connection = new Set<string>();
  let contentLength: string | null = null;
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) return null;
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'connection') {
      for (const token of value.split(',')) connection.add(token.trim().toLowerCase());
    } else if (name === 'transfer-encoding') {
      return null;
    } else if (name === 'content-length') {
      // Several must agree (RFC 9112 6.3): anything else is a smuggling attempt.
      if (!/^\d{1,15}$/.test(value) || (contentLength !== null && contentLength !== value)) return null;
      contentLength = value;
    }
  }
  const http11 = m[3] === '1';
  return {
    method: m[1] as string,
    path: m[2] as string,
    keepAlive: connection.has('close') ? false : http11 || connection.has('keep-alive'),
    bodyBytes: contentLength === null ? 0 : Number(contentLength),
  };
}

function* respond(loop: EventLoop, conn: Stream, req: Request): Coroutine<void> {
  const send = (data: Buffer): ReturnType<EventLoop['sockSendAll']> => loop.sockSendAll(conn, data);
  const withBody = req.method !== 'HEAD';
  const simple = function* (status: string, body: Buffer, type = 'text/plain'): Coroutine<void> {
    yield* send(head(status, { 'Content-Type': type, 'Content-Length': body.length }, req.keepAlive));
    if (withBody) yield* send(body);
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    yield* simple('405 Method Not Allowed', Buffer.from('only GET and HEAD\n'));
    return;
  }
  let m = /^\/goods\/(\d{1,9})\/$/.exec(req.path);
  if (m !== null) {
    yield* simple('200 OK', goodsPage(m[1] as string), 'text/html; charset=utf-8');
    return;
  }
  m = /^\/bytes\/(\d{1,10})$/.exec(req.path);
  if (m !== null && Number(m[1]) <= MAX_BYTES) {
    const n = Number(m[1]);
    yield* send(head('200 OK', { 'Content-Type': 'application/octet-stream', 'Content-Length': n }, req.keepAlive));
    for (let left = n; withBody && left > 0; left -= CHUNK) yield* send(FILL.subarray(0, Math.min(CHUNK, left)));
    return;
  }
  m = /^\/chunked\/(\d{1,10})$/.exec(req.path);
  if (m !== null && Number(m[1]) <= MAX_BYTES) {
    const n = Number(m[1]);
    yield* send(
      head(
        '200 OK',
        { 'Content-Type': 'application/octet-stream', 'Transfer-Encoding': 'chunked', Trailer: 'X-Bytes' },
        req.keepAlive,
      ),
    );
    if (!withBody) return;
    for (let left = n; left > 0; left -= CHUNK) {
      const size = Math.min(CHUNK, left);
      yield* send(Buffer.from(`${size.toString(16)}\r\n`, 'latin1'));
      yield* send(FILL.subarray(0, size));
      yield* send(Buffer.from('\r\n', 'latin1'));
    }
    yield* send(Buffer.from(`0\r\nX-Bytes: ${n}\r\n\r\n`, 'latin1'));
    return;
  }
  m = /^\/delay\/(\d{1,5})$/.exec(req.path);
  if (m !== null && Number(m[1]) <= 60_000) {
    yield* sleep(Number(m[1]));
    yield* simple('200 OK', Buffer.from(`delayed ${m[1]} ms\n`));
    return;
  }
  yield* simple('404 Not Found', Buffer.from('not found\n'));
}

interface Limits {
  headerTimeoutMs: number;
  idleTimeoutMs: number;
  latencyMs: number;
}

function* serveConnection(loop: EventLoop, sock: Socket, limits: Limits, context: TlsContext | null): Coroutine<void> {
  sock.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
  // The TLS socket once the handshake is done: it is what is closed then (close_notify first).
  let conn: Stream = sock;
  const buffer = Buffer.allocUnsafe(MAX_HEAD);
  let filled = 0;
  // When the head under way began (its first byte), for the header timeout.
  let headStart = 0;
  // Receives more of the head, within the time the client has left: the idle
  // timeout between requests, the header timeout once a head has begun.
  const receive = (): Coroutine<number> => {
    const timeoutMs =
      filled === 0 ? limits.idleTimeoutMs : Math.max(1, headStart + limits.headerTimeoutMs - loop.time());
    return withTimeout(loop.sockRecvInto(conn, buffer, filled), timeoutMs);
  };
  try {
    if (context !== null) {
      // A client that never finishes its handshake is held no longer than one that never finishes its head.
      conn = yield* withTimeout(loop.startTls(sock, { serverSide: true, context }), limits.headerTimeoutMs);
    }
    for (;;) {
      const end = buffer.subarray(0, filled).indexOf('\r\n\r\n');
      if (end < 0) {
        if (filled === buffer.length) {
          yield* loop.sockSendAll(conn, head('431 Request Header Fields Too Large', { 'Content-Length': 0 }, false));
          return;
        }
        const n = yield* receive();
        if (n === 0) return;
        if (filled === 0) headStart = loop.time();
        filled += n;
        continue;
      }
      const req = parseRequest(buffer.toString('latin1', 0, end));
      if (req === null) {
        yield* loop.sockSendAll(conn, head('400 Bad Request', { 'Content-Length': 0 }, false));
        return;
      }
      // The body is this request's, never the next one's: drop it, from
      // what came with the head and then from the socket.
      let rest = end + 4;
      let body = req.bodyBytes;
      const inHand = Math.min(body, filled - rest);
      rest += inHand;
      body -= inHand;
      while (body > 0) {
        const n = yield* withTimeout(
          loop.sockRecvInto(conn, buffer, 0, Math.min(body, buffer.length)),
          limits.headerTimeoutMs,
        );
        if (n === 0) return;
        body -= n;
        rest = filled = 0;
      }
      if (limits.latencyMs > 0) yield* sleep(limits.latencyMs);
      yield* respond(loop, conn, req);
      if (!req.keepAlive) return;
      // Keep what came after this request: the next one, pipelined.
      buffer.copy(buffer, 0, rest, filled);
      filled -= rest;
      headStart = loop.time();
    }
  } catch {
    // The client reset, vanished, ran out of time or failed its TLS
    // handshake: nothing to answer, and nothing for the other connections.
  } finally {
    conn.close();
  }
}

/**
 * Starts the server on 127.0.0.1 (port 0: an ephemeral one) on `loop`. It
 * serves while the loop runs; over TLS with `options.tls`.
 *
 * @throws {Error} ERR_OSSL_* for a certificate or key that does not parse, or a key that is not the certificate's
 * @throws {OSError} EADDRINUSE and the like from bind(2) / listen(2)
 */
export function startServer(loop: EventLoop, port = 0, options: ServerOptions = {}): EmbeddedServer {
  const limits: Limits = {
    headerTimeoutMs: options.headerTimeoutMs ?? 60_000,
    idleTimeoutMs: options.idleTimeoutMs ?? 5_000,
    latencyMs: options.latencyMs ?? 0,
  };
  // One context for every connection: it holds the parsed key and certificate.
  const context =
    options.tls === undefined
      ? null
      : new TlsContext({ server: true, cert: options.tls.cert, key: options.tls.key, alpn: ['http/1.1'] });
  const server = new Socket(AF_INET, SOCK_STREAM);
  server.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
  server.bind(['127.0.0.1', port]);
  server.listen(4096);
  server.setBlocking(false);
  const accepting = loop.createTask(
    (function* (): Coroutine<void> {
      for (;;) {
        let conn: Socket;
        try {
          [conn] = yield* loop.sockAccept(server);
        } catch (error) {
          if (!ACCEPT_RETRY_CODES.has((error as { code?: string }).code ?? '') || !isErrnoError(error)) throw error;
          // Out of fds (EMFILE) or memory: the connection waits in the queue; try again shortly.
          yield* sleep(ACCEPT_BACKOFF_MS);
          continue;
        }
        loop.createTask(serveConnection(loop, conn, limits, context));
      }
    })(),
  );
  accepting.addDoneCallback((t) => {
    if (!t.cancelled()) t.exception();
  });
  const [, bound] = server.getsockname() as [string, number];
  return {
    port: bound,
    close: () => {
      accepting.cancel();
      server.close();
    },
  };
}
