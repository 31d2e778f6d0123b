/**
 * The embedded test server, written on the iomux loop's transports and
 * protocols (loop.createServer): the notes' shop and a few endpoints for
 * tests and benchmarks.
 *
 *   /goods/<n>/    an HTML page, like the notes' shop (shop.projectsedu.com/goods/<n>/)
 *   /bytes/<n>     n bytes, Content-Length (n <= 1 GiB)
 *   /chunked/<n>   n bytes in chunked transfer coding, with a trailer
 *   /delay/<ms>    a short page after ms milliseconds (ms <= 60,000)
 *
 * With a latency (ServerOptions.latencyMs, `iomux serve --latency MS`)
 * every response is held that long first, as a distant server's would be.
 *
 * HTTP/1.1 keep-alive (HTTP/1.0: close), pipelining, HEAD, and
 * 400/404/405/431 answers. A request body (Content-Length) is read and
 * dropped, never taken for the next request; a chunked request body is
 * refused (400, and the connection closes), as is a Content-Length that is
 * not one plain number. A client that sends no complete head within the
 * header timeout, or stays silent between requests past the idle timeout,
 * is closed. Running out of fds (EMFILE) pauses accepting, never ends it
 * (the loop's Server reports it to the exception handler and rests a second).
 *
 * Each connection is one {@link HttpServerProtocol}: heads are parsed from
 * what dataReceived brings, a response is one writev (head and body in one
 * sendmsg), the timeouts are one loop timer re-armed as the connection
 * changes state, and a large body is written in chunks as the transport
 * drains (pauseWriting / resumeWriting), never held in memory.
 *
 * With a certificate and key (ServerOptions.tls, `iomux serve --tls CERT
 * KEY`) it serves the same over TLS: one server TlsContext made at start,
 * each accepted connection's handshake done by the loop's Server (within
 * the header timeout) before the protocol starts. A handshake that fails
 * closes that connection only.
 */
import type { EventLoop, LoopTrace, Protocol, TimerHandle, Transport } from '../loop/index.js';
import { AF_INET, SO_REUSEADDR, SOCK_STREAM, SOL_SOCKET, Socket, TlsContext } from '../sys/index.js';

const MAX_HEAD = 16 * 1024;
const MAX_BYTES = 1 << 30;
const CHUNK = 16 * 1024;
const FILL = Buffer.alloc(CHUNK, 'iomux ');
const CRLF = Buffer.from('\r\n', 'latin1');
const EMPTY = Buffer.alloc(0);
// What a connection may buffer of pipelined requests while a response is under way, before it stops reading.
const MAX_PENDING = 4 * MAX_HEAD;

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
  /**
   * Record each request in `trace` on `lane`, as a span (category
   * 'request', named by method and path) from its head parsed to its
   * response handed to the transport.
   */
  trace?: { trace: LoopTrace; lane: number };
}

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

interface Limits {
  headerTimeoutMs: number;
  idleTimeoutMs: number;
  latencyMs: number;
  trace: { trace: LoopTrace; lane: number } | null;
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

/**
 * One HTTP/1.1 connection. Requests are served one at a time, in order:
 * while one is answered (held by the latency, a /delay, or a large body
 * waiting for the socket) what arrives is kept for later, and reading
 * pauses once that passes MAX_PENDING.
 */
class HttpServerProtocol implements Protocol {
  readonly #loop: EventLoop;
  readonly #limits: Limits;
  #transport: Transport | null = null;
  // Bytes received and not yet used: the start of the next head, or of a body to drop.
  #pending: Buffer = EMPTY;
  // When the head under way began (its first byte, or the end of the last response).
  #headStart = 0;
  // A request whose head is parsed and whose body is being dropped before it is answered.
  #request: Request | null = null;
  #bodyLeft = 0;
  // A response is under way: nothing else is parsed until it is done.
  #busy = false;
  #pumping = false;
  #readPaused = false;
  #eof = false;
  #lost = false;
  // The one timer: the idle or header timeout, the latency, or a /delay.
  #timer: TimerHandle | null = null;
  // A large body being written as the transport drains.
  #streaming: { request: Request; total: number; left: number; chunked: boolean } | null = null;
  #writePaused = false;
  // Traced: when the request under way was parsed.
  #began = 0;

  constructor(loop: EventLoop, limits: Limits) {
    this.#loop = loop;
    this.#limits = limits;
  }

  connectionMade(transport: Transport): void {
    this.#transport = transport;
    this.#arm(this.#limits.idleTimeoutMs, this.#timedOut);
  }

  dataReceived(data: Buffer): void {
    if (this.#pending.length === 0) {
      this.#pending = data;
      if (!this.#busy && this.#request === null) this.#headStart = this.#loop.time();
    } else {
      this.#pending = Buffer.concat([this.#pending, data]);
    }
    if (this.#busy) {
      if (this.#pending.length > MAX_PENDING && !this.#readPaused) {
        this.#readPaused = true;
        this.#transport?.pauseReading();
      }
      return;
    }
    this.#pump();
  }

  eofReceived(): boolean | undefined {
    this.#eof = true;
    // A response under way still goes out (half-close); else the transport closes.
    return this.#busy || undefined;
  }

  connectionLost(): void {
    this.#lost = true;
    this.#streaming = null;
    this.#cancelTimer();
  }

  pauseWriting(): void {
    this.#writePaused = true;
  }

  resumeWriting(): void {
    this.#writePaused = false;
    if (this.#streaming !== null) this.#produce();
  }

  // Parses and answers what is in hand, until a response must wait or more bytes are needed.
  #pump(): void {
    const transport = this.#transport;
    if (this.#pumping || transport === null) return;
    this.#pumping = true;
    try {
      while (!this.#busy && !this.#lost && !transport.isClosing()) {
        if (this.#request !== null) {
          // The body is this request's, never the next one's: drop it.
          const take = Math.min(this.#bodyLeft, this.#pending.length);
          this.#bodyLeft -= take;
          this.#pending = this.#pending.subarray(take);
          if (this.#bodyLeft > 0) {
            if (this.#eof) transport.close();
            else this.#arm(this.#limits.headerTimeoutMs, this.#timedOut);
            return;
          }
          const request = this.#request;
          this.#request = null;
          this.#start(request);
          continue;
        }
        const pending = this.#pending;
        const end = (pending.length > MAX_HEAD ? pending.subarray(0, MAX_HEAD) : pending).indexOf('\r\n\r\n');
        if (end < 0) {
          if (pending.length >= MAX_HEAD) {
            this.#refuse('431 Request Header Fields Too Large');
          } else if (this.#eof) {
            transport.close();
          } else if (pending.length === 0) {
            this.#arm(this.#limits.idleTimeoutMs, this.#timedOut);
          } else {
            const left = this.#headStart + this.#limits.headerTimeoutMs - this.#loop.time();
            this.#arm(Math.max(1, left), this.#timedOut);
          }
          return;
        }
        const request = parseRequest(pending.toString('latin1', 0, end));
        if (request === null) {
          this.#refuse('400 Bad Request');
          return;
        }
        this.#pending = pending.subarray(end + 4);
        this.#request = request;
        this.#bodyLeft = request.bodyBytes;
      }
    } finally {
      this.#pumping = false;
    }
  }

  #start(request: Request): void {
    this.#busy = true;
    if (this.#limits.trace !== null) this.#began = this.#loop.time();
    this.#cancelTimer();
    if (this.#limits.latencyMs > 0) this.#arm(this.#limits.latencyMs, () => this.#respond(request));
    else this.#respond(request);
  }

  #respond(request: Request): void {
    this.#timer = null;
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      this.#simple(request, '405 Method Not Allowed', Buffer.from('only GET and HEAD\n'));
      return;
    }
    const path = request.path;
    let m = /^\/goods\/(\d{1,9})\/$/.exec(path);
    if (m !== null) {
      this.#simple(request, '200 OK', goodsPage(m[1] as string), 'text/html; charset=utf-8');
      return;
    }
    m = /^\/bytes\/(\d{1,10})$/.exec(path);
    if (m !== null && Number(m[1]) <= MAX_BYTES) {
      const n = Number(m[1]);
      this.#write(
        head('200 OK', { 'Content-Type': 'application/octet-stream', 'Content-Length': n }, request.keepAlive),
      );
      this.#stream(request, n, false);
      return;
    }
    m = /^\/chunked\/(\d{1,10})$/.exec(path);
    if (m !== null && Number(m[1]) <= MAX_BYTES) {
      const fields = { 'Content-Type': 'application/octet-stream', 'Transfer-Encoding': 'chunked', Trailer: 'X-Bytes' };
      this.#write(head('200 OK', fields, request.keepAlive));
      this.#stream(request, Number(m[1]), true);
      return;
    }
    m = /^\/delay\/(\d{1,5})$/.exec(path);
    if (m !== null && Number(m[1]) <= 60_000) {
      const ms = m[1] as string;
      this.#arm(Number(ms), () => this.#simple(request, '200 OK', Buffer.from(`delayed ${ms} ms\n`)));
      return;
    }
    this.#simple(request, '404 Not Found', Buffer.from('not found\n'));
  }

  #simple(request: Request, status: string, body: Buffer, type = 'text/plain'): void {
    this.#timer = null;
    const bytes = head(status, { 'Content-Type': type, 'Content-Length': body.length }, request.keepAlive);
    if (request.method === 'HEAD') this.#write(bytes);
    else if (!this.#lost) this.#transport?.writev([bytes, body]);
    this.#done(request);
  }

  #stream(request: Request, bytes: number, chunked: boolean): void {
    if (request.method === 'HEAD') {
      this.#done(request);
      return;
    }
    this.#streaming = { request, total: bytes, left: bytes, chunked };
    // Pause at the first byte the socket does not take, resume once all is
    // out: what the transport copies is one chunk's rest, not 64 KiB of chunks.
    this.#transport?.setWriteBufferLimits(0, 0);
    this.#produce();
  }

  // Writes the body under way until the transport asks for a pause, or it is all out.
  #produce(): void {
    const transport = this.#transport;
    const streaming = this.#streaming;
    if (transport === null || streaming === null) return;
    while (streaming.left > 0 && !this.#writePaused) {
      if (this.#lost || transport.isClosing()) return;
      const size = Math.min(CHUNK, streaming.left);
      streaming.left -= size;
      if (streaming.chunked)
        transport.writev([Buffer.from(`${size.toString(16)}\r\n`, 'latin1'), FILL.subarray(0, size), CRLF]);
      else transport.write(FILL.subarray(0, size));
    }
    if (streaming.left > 0) return;
    this.#streaming = null;
    transport.setWriteBufferLimits();
    const request = streaming.request;
    if (streaming.chunked) this.#write(Buffer.from(`0\r\nX-Bytes: ${streaming.total}\r\n\r\n`, 'latin1'));
    this.#done(request);
  }

  // The response is out (or buffered in the transport): on to the next request, or the end.
  #done(request: Request): void {
    this.#busy = false;
    const traced = this.#limits.trace;
    if (traced !== null) {
      const options = { lane: traced.lane, category: 'request' };
      traced.trace.span(`${request.method} ${request.path}`, this.#began, this.#loop.time(), options);
    }
    const transport = this.#transport;
    if (transport === null || this.#lost) return;
    if (!request.keepAlive) {
      transport.close();
      return;
    }
    this.#headStart = this.#loop.time();
    if (this.#readPaused) {
      this.#readPaused = false;
      transport.resumeReading();
    }
    this.#pump();
  }

  #refuse(status: string): void {
    this.#busy = true;
    this.#write(head(status, { 'Content-Length': 0 }, false));
    this.#transport?.close();
  }

  #write(bytes: Buffer): void {
    if (!this.#lost) this.#transport?.write(bytes);
  }

  // The client ran out of time: close it (nothing is buffered while a head is awaited).
  readonly #timedOut = (): void => {
    this.#timer = null;
    this.#transport?.close();
  };

  #arm(ms: number, callback: () => void): void {
    this.#timer?.cancel();
    this.#timer = this.#loop.callLater(ms, callback);
  }

  #cancelTimer(): void {
    this.#timer?.cancel();
    this.#timer = null;
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
    trace: options.trace ?? null,
  };
  // One context for every connection: it holds the parsed key and certificate.
  const context =
    options.tls === undefined
      ? null
      : new TlsContext({ server: true, cert: options.tls.cert, key: options.tls.key, alpn: ['http/1.1'] });
  const sock = new Socket(AF_INET, SOCK_STREAM);
  try {
    sock.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
    sock.bind(['127.0.0.1', port]);
    sock.listen(4096);
  } catch (error) {
    sock.close();
    throw error;
  }
  const [, bound] = sock.getsockname() as [string, number];
  // Given a listening socket, createServer is done at once: its Future already holds the Server.
  const server = loop
    .createServer(() => new HttpServerProtocol(loop, limits), null, undefined, {
      sock,
      ...(context === null ? {} : { ssl: context, sslHandshakeTimeoutMs: limits.headerTimeoutMs }),
    })
    .result();
  return { port: bound, close: () => server.close() };
}
