/**
 * The embedded test server, written on the iomux loop (owning mode,
 * coroutines): the notes' shop and a few endpoints for tests and benchmarks.
 *
 *   /goods/<n>/    an HTML page, like the notes' shop (shop.projectsedu.com/goods/<n>/)
 *   /bytes/<n>     n bytes, Content-Length (n <= 1 GiB)
 *   /chunked/<n>   n bytes in chunked transfer coding, with a trailer
 *   /delay/<ms>    a short page after ms milliseconds (ms <= 60,000)
 *
 * HTTP/1.1 keep-alive (HTTP/1.0: close), HEAD, and 400/404/405/431 answers.
 */
import type { Coroutine } from '../coro/index.js';
import { sleep } from '../coro/index.js';
import type { EventLoop } from '../loop/index.js';
import { AF_INET, IPPROTO_TCP, SO_REUSEADDR, SOCK_STREAM, SOL_SOCKET, Socket, TCP_NODELAY } from '../sys/index.js';

const MAX_HEAD = 16 * 1024;
const MAX_BYTES = 1 << 30;
const CHUNK = 16 * 1024;
const FILL = Buffer.alloc(CHUNK, 'iomux ');

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

function parseRequest(text: string): Request | null {
  const lines = text.split('\r\n');
  const m = /^([A-Z]+) (\/\S*) HTTP\/1\.([01])$/.exec(lines[0] ?? '');
  if (m === null) return null;
  let connection = '';
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) return null;
    if (line.slice(0, colon).toLowerCase() === 'connection')
      connection = line
        .slice(colon + 1)
        .trim()
        .toLowerCase();
  }
  const http11 = m[3] === '1';
  return {
    method: m[1] as string,
    path: m[2] as string,
    keepAlive: http11 ? connection !== 'close' : connection === 'keep-alive',
  };
}

function* respond(loop: EventLoop, conn: Socket, req: Request): Coroutine<void> {
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

function* serveConnection(loop: EventLoop, conn: Socket): Coroutine<void> {
  conn.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
  const buffer = Buffer.allocUnsafe(MAX_HEAD);
  let filled = 0;
  try {
    for (;;) {
      const end = buffer.subarray(0, filled).indexOf('\r\n\r\n');
      if (end < 0) {
        if (filled === buffer.length) {
          yield* loop.sockSendAll(conn, head('431 Request Header Fields Too Large', { 'Content-Length': 0 }, false));
          return;
        }
        const n = yield* loop.sockRecvInto(conn, buffer, filled);
        if (n === 0) return;
        filled += n;
        continue;
      }
      const req = parseRequest(buffer.toString('latin1', 0, end));
      if (req === null) {
        yield* loop.sockSendAll(conn, head('400 Bad Request', { 'Content-Length': 0 }, false));
        return;
      }
      yield* respond(loop, conn, req);
      if (!req.keepAlive) return;
      // Keep what came after this request: the next one, pipelined.
      buffer.copy(buffer, 0, end + 4, filled);
      filled -= end + 4;
    }
  } catch {
    // The client reset or vanished: nothing to answer.
  } finally {
    conn.close();
  }
}

/**
 * Starts the server on 127.0.0.1 (port 0: an ephemeral one) on `loop`. It
 * serves while the loop runs.
 */
export function startServer(loop: EventLoop, port = 0): EmbeddedServer {
  const server = new Socket(AF_INET, SOCK_STREAM);
  server.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
  server.bind(['127.0.0.1', port]);
  server.listen(4096);
  server.setBlocking(false);
  const accepting = loop.createTask(
    (function* (): Coroutine<void> {
      for (;;) {
        const [conn] = yield* loop.sockAccept(server);
        loop.createTask(serveConnection(loop, conn));
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
