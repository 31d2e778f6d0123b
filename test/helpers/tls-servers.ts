/**
 * TLS peers for the TLS tests, in the test process: a well-behaved HTTPS
 * server and TLS echo server on node:https / node:tls, and servers that
 * misbehave the ways a TLS client must survive (a reset in the handshake, a
 * body cut short, a close with and without close_notify). Each listens on
 * 127.0.0.1, port 0, and `close()` ends its open connections too, so a test
 * never waits on a peer it abandoned.
 */
import { once } from 'node:events';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import {
  createSecureContext,
  createServer as createTlsServer,
  type SecureVersion,
  TLSSocket,
  type TlsOptions,
} from 'node:tls';

import type { CertificateSet, KeyPair } from '../../bench/src/tls-certs.js';

/** A server listening on 127.0.0.1. */
export interface TestServer {
  port: number;
  /** Stops listening and destroys every open connection. */
  close(): Promise<void>;
}

/** The TLS options shared by {@link startHttpsServer} and {@link startTlsEchoServer}. */
export interface TlsServerOptions {
  /** The certificate the server presents; `certs.server` when undefined. */
  keyPair?: KeyPair;
  minVersion?: SecureVersion;
  maxVersion?: SecureVersion;
  /** ALPN protocols the server accepts, in its order of preference. */
  alpn?: string[];
  /** Ask for a client certificate, verified against `certs.ca`. */
  requestCert?: boolean;
  /** With `requestCert`: refuse a client without a valid certificate (default true, as node:tls). */
  rejectUnauthorized?: boolean;
}

/** What the server saw of one TLS connection. */
export interface TlsConnectionInfo {
  /** 'TLSv1.2', 'TLSv1.3', ... */
  protocol: string | null;
  /** The protocol ALPN chose, or false when none was. */
  alpnProtocol: string | false | null;
  /** The CN of the client's certificate, when it sent one. */
  clientCN: string | undefined;
  /** Whether the client's certificate verified against `certs.ca`. */
  authorized: boolean;
}

/** {@link startHttpsServer}'s server. */
export interface HttpsTestServer extends TestServer {
  /** TLS connections accepted so far (handshakes completed): keep-alive reuse shows as fewer connections than requests. */
  connections(): number;
}

/** {@link startTlsEchoServer}'s server. */
export interface TlsEchoServer extends TestServer {
  /** TLS connections accepted so far (handshakes completed). */
  connections(): number;
  /** The most recent connection, or undefined before the first. */
  last(): TlsConnectionInfo | undefined;
}

/**
 * `n` bytes of a fixed pattern (byte i is i mod 251): what `/big?bytes=n`
 * serves. 251 is prime, so a body shifted by any power-of-two offset does
 * not match itself.
 */
export function patternBytes(n: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) out[i] = i % 251;
  return out;
}

/** The body of `/` on {@link startHttpsServer}. */
export const HTTPS_HELLO = 'hello over TLS\n';

async function listen(server: NetServer): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as { port: number }).port;
}

/** close() for a server whose sockets are tracked in `sockets`. */
function closer(server: NetServer, sockets: Set<{ destroy(): void }>): () => Promise<void> {
  return async () => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of sockets) s.destroy();
    await closed;
  };
}

function tlsOptions(certs: CertificateSet, options: TlsServerOptions): TlsOptions {
  const pair = options.keyPair ?? certs.server;
  const out: TlsOptions = { cert: pair.cert, key: pair.key };
  if (options.minVersion !== undefined) out.minVersion = options.minVersion;
  if (options.maxVersion !== undefined) out.maxVersion = options.maxVersion;
  if (options.alpn !== undefined) out.ALPNProtocols = options.alpn;
  if (options.requestCert === true) {
    out.requestCert = true;
    out.ca = certs.ca.cert;
    out.rejectUnauthorized = options.rejectUnauthorized ?? true;
  }
  return out;
}

function connectionInfo(socket: TLSSocket): TlsConnectionInfo {
  const peer = socket.getPeerCertificate();
  const cn = peer?.subject?.CN;
  return {
    protocol: socket.getProtocol(),
    alpnProtocol: socket.alpnProtocol,
    clientCN: typeof cn === 'string' && cn !== '' ? cn : undefined,
    authorized: socket.authorized,
  };
}

/**
 * A Duplex over `raw` that the server-side TLSSocket writes through. Handed
 * a net.Socket itself, TLSSocket takes over its kernel handle, and then
 * destroying the net.Socket may still let the TLS layer send its alert;
 * through this stream every byte of TLS passes in JS, so destroying `raw`
 * ends the TCP connection with nothing more from TLS: no close_notify.
 */
export function rawDuplex(raw: Socket): Duplex {
  const duplex = new Duplex({
    read() {
      raw.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      // Completes once `raw` has handed the bytes to the kernel, so a write
      // callback on the TLSSocket means the record is on its way.
      if (raw.destroyed) callback();
      else raw.write(chunk, () => callback());
    },
    final(callback) {
      if (!raw.destroyed) raw.end();
      callback();
    },
    destroy(error, callback) {
      raw.destroy();
      callback(error);
    },
  });
  raw.on('data', (data: Buffer) => {
    if (!duplex.push(data)) raw.pause();
  });
  raw.on('end', () => duplex.push(null));
  raw.on('error', (error) => duplex.destroy(error));
  raw.on('close', () => duplex.destroy());
  return duplex;
}

/**
 * A TCP server where each connection runs `onSecure` over a server-side
 * TLSSocket built on {@link rawDuplex}: the handler holds both the TLS
 * socket and the raw one beneath it.
 */
async function startRawTlsServer(
  certs: CertificateSet,
  onSecure: (tls: TLSSocket, raw: Socket) => void,
): Promise<TestServer> {
  const secureContext = createSecureContext({ cert: certs.server.cert, key: certs.server.key });
  const sockets = new Set<Socket>();
  const server = createNetServer((raw) => {
    sockets.add(raw);
    raw.on('close', () => sockets.delete(raw));
    raw.on('error', () => {}); // the client may reset; the test watches the client side
    const tls = new TLSSocket(rawDuplex(raw), { isServer: true, secureContext });
    tls.on('error', () => {});
    tls.once('secure', () => onSecure(tls, raw));
  });
  const port = await listen(server);
  return { port, close: closer(server, sockets) };
}

/** Calls `onRequest` once the first request head (up to the blank line) has arrived on `tls`. */
function onRequestHead(tls: TLSSocket, onRequest: () => void): void {
  let head = '';
  const onData = (data: Buffer): void => {
    head += data.toString('latin1');
    if (!head.includes('\r\n\r\n')) return;
    tls.off('data', onData);
    onRequest();
  };
  tls.on('data', onData);
}

/** Ends the TCP connection under a TLS socket with a FIN but no close_notify: `raw` flushed, then destroyed. */
function closeWithoutCloseNotify(raw: Socket): void {
  raw.end(() => raw.destroy());
}

/**
 * A server that reads the first bytes of each connection (the ClientHello)
 * and then resets the connection (RST): the client's handshake fails with
 * ECONNRESET.
 */
export async function startResetMidHandshake(): Promise<TestServer> {
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.once('data', () => socket.resetAndDestroy());
  });
  const port = await listen(server);
  return { port, close: closer(server, sockets) };
}

/**
 * A TLS server (`certs.server`) that answers any request with
 * `Content-Length: bodyBytes` but sends only `sendBytes` of the body, then
 * closes the TCP connection with no close_notify: a response cut short,
 * which a client must report as an error, never as a complete body.
 */
export async function startTruncatingHttps(
  certs: CertificateSet,
  options: { bodyBytes: number; sendBytes: number },
): Promise<TestServer> {
  return startRawTlsServer(certs, (tls, raw) => {
    onRequestHead(tls, () => {
      tls.write(
        `HTTP/1.1 200 OK\r\nContent-Length: ${options.bodyBytes}\r\nContent-Type: application/octet-stream\r\n\r\n`,
      );
      tls.write(patternBytes(options.sendBytes), () => closeWithoutCloseNotify(raw));
    });
  });
}

/**
 * A TLS server (`certs.server`) that answers any request with a
 * close-delimited body (no Content-Length, no chunking, `Connection: close`)
 * and then closes: with `closeNotify` true a clean TLS close (close_notify,
 * then FIN); with false a FIN with no close_notify, which leaves the client
 * unable to tell the whole body from a truncated one.
 */
export async function startCloseDelimitedHttps(
  certs: CertificateSet,
  options: { body: Buffer | string; closeNotify: boolean },
): Promise<TestServer> {
  return startRawTlsServer(certs, (tls, raw) => {
    onRequestHead(tls, () => {
      tls.write('HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n');
      if (options.closeNotify) tls.end(options.body);
      else tls.write(options.body, () => closeWithoutCloseNotify(raw));
    });
  });
}

/**
 * A node:https server with keep-alive: `/` answers {@link HTTPS_HELLO},
 * `/big?bytes=N` answers {@link patternBytes}(N), a POST to `/echo` answers
 * its body, anything else 404. A request with `Connection: close` gets the
 * same back and the connection closes, as node:http does. With
 * `requestCert`, every response carries the client certificate's CN in
 * `x-client-cn` (empty without one).
 */
export async function startHttpsServer(
  certs: CertificateSet,
  options: TlsServerOptions = {},
): Promise<HttpsTestServer> {
  let connections = 0;
  const server = createHttpsServer(tlsOptions(certs, options), (req, res) => {
    const url = new URL(req.url ?? '/', 'https://localhost');
    if (options.requestCert === true) {
      res.setHeader('x-client-cn', connectionInfo(req.socket as TLSSocket).clientCN ?? '');
    }
    if (req.method === 'POST' && url.pathname === '/echo') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.end(Buffer.concat(chunks));
      });
      return;
    }
    req.resume();
    if (url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(HTTPS_HELLO);
    } else if (url.pathname === '/big') {
      const bytes = Number(url.searchParams.get('bytes') ?? '0');
      if (!Number.isSafeInteger(bytes) || bytes < 0) {
        res.writeHead(400).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes });
      res.end(patternBytes(bytes));
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  server.on('secureConnection', () => connections++);
  server.on('tlsClientError', () => {}); // the bad-client tests provoke these on purpose
  const port = await listen(server);
  return {
    port,
    connections: () => connections,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

/**
 * A node:tls server that echoes every byte back on each connection, for
 * tests of a raw TLS socket; `last()` reports the negotiated protocol, ALPN
 * and client certificate of the most recent connection.
 */
export async function startTlsEchoServer(
  certs: CertificateSet,
  options: TlsServerOptions = {},
): Promise<TlsEchoServer> {
  let connections = 0;
  let last: TlsConnectionInfo | undefined;
  const sockets = new Set<TLSSocket>();
  const server = createTlsServer(tlsOptions(certs, options), (socket) => {
    connections++;
    last = connectionInfo(socket);
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  server.on('tlsClientError', () => {});
  const port = await listen(server);
  return { port, connections: () => connections, last: () => last, close: closer(server, sockets) };
}
