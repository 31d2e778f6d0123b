/**
 * asyncio's create_connection, create_unix_connection and
 * connect_accepted_socket: a connected socket (resolved and tried address by
 * address), TLS over it when asked, then a transport and its protocol.
 * Each runs as a Task of its own (a generator coroutine), so cancelling
 * the returned Future cancels whichever step is under way and closes the
 * socket.
 *
 * @module
 */
import { type Future, InvalidStateError, type Task, type TaskTarget } from '../coro/index.js';
import { invalidArgType, invalidArgValue } from '../sys/args.js';
import {
  type AddrInfo,
  AF_INET,
  AF_INET6,
  AF_UNIX,
  AF_UNSPEC,
  IPPROTO_TCP,
  SOCK_STREAM,
  Socket,
  type SocketAddress,
  TCP_NODELAY,
  TlsContext,
  type TlsSocket,
} from '../sys/index.js';
import { type ByteStream, PlainStream, TlsStream } from './byte-streams.js';
import type { GetAddrInfoOptions } from './dns.js';
import type { BufferedProtocol, Protocol, ProtocolFactory, Transport } from './protocols.js';
import { SocketTransport, type TransportLoop, type TransportOwner } from './stream-transport.js';
import type { StartTlsOptions } from './tls-ops.js';

/** TLS for a transport: true (a client verifying with Node's roots), a TlsContext, or startTls's options. */
export type SslOption = boolean | TlsContext | StartTlsOptions;

/** Options of {@link EndpointLoop} createConnection (asyncio's create_connection, camelCased). */
export interface CreateConnectionOptions {
  /** TLS over the connection (asyncio's `ssl`). Default none. */
  ssl?: SslOption;
  /** The name the server's certificate must have (and SNI). Default `host` when `ssl` is set. */
  serverHostname?: string;
  /** Bind the socket to this `[host, port]` first. */
  localAddr?: [host: string, port: number];
  /** AF_INET or AF_INET6 to try only that family. Default any. */
  family?: number;
  /** The TLS handshake's limit in milliseconds. Default 60,000. */
  sslHandshakeTimeoutMs?: number;
}

/** Options of createUnixConnection. */
export type CreateUnixConnectionOptions = Omit<CreateConnectionOptions, 'localAddr' | 'family'>;

/** Options of connectAcceptedSocket. */
export type AcceptedSocketOptions = Pick<CreateConnectionOptions, 'ssl' | 'sslHandshakeTimeoutMs'>;

/** @internal What the connection makers need of the loop. */
export interface EndpointLoop extends TransportLoop {
  createTask<T>(target: TaskTarget<T>, name?: string): Task<T>;
  createFuture<T>(): Future<T>;
  getaddrinfo(host: string, port: number, options?: GetAddrInfoOptions): Future<AddrInfo[]>;
  sockConnect(sock: Socket, address: SocketAddress): Future<void>;
  startTls(sock: Socket, options?: StartTlsOptions): Future<TlsSocket>;
  /** Whether the completion backend may still take, or keeps, bytes of `sock` (a receive of its own). */
  holdsBytes(sock: Socket): boolean;
  /** A connection of listening `sock` that a cancelled sockAccept kept (io_uring), if any. */
  takeKeptConnection(sock: Socket): Socket | undefined;
}

/** @internal Checks a protocol factory. @throws {TypeError} ERR_INVALID_ARG_TYPE */
export function checkFactory(factory: unknown): void {
  if (typeof factory !== 'function') throw invalidArgType('protocolFactory', 'a function', factory);
}

/** @internal Checks an options argument. @throws {TypeError} ERR_INVALID_ARG_TYPE */
export function checkOptions(options: unknown): void {
  if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'an object', options);
}

/** @internal Checks a port. @throws {TypeError} / {RangeError} */
export function checkPort(port: unknown): number {
  if (typeof port !== 'number' || !Number.isInteger(port)) throw invalidArgType('port', 'an integer', port);
  if (port < 0 || port > 65535) throw invalidArgValue(`The "port" argument must be in [0, 65535]. Received ${port}`);
  return port;
}

/**
 * @internal Refuses TLS's own options without `ssl` (asyncio's ValueError):
 * they would be ignored, and the connection would go out in the clear.
 *
 * @throws {TypeError} ERR_INVALID_ARG_VALUE
 */
export function checkSslOnly(options: {
  ssl?: unknown;
  serverHostname?: unknown;
  sslHandshakeTimeoutMs?: unknown;
}): void {
  if (options.ssl !== undefined && options.ssl !== false) return;
  for (const name of ['serverHostname', 'sslHandshakeTimeoutMs'] as const) {
    if (options[name] !== undefined) throw invalidArgValue(`The "${name}" option is only valid with the "ssl" option`);
  }
}

/**
 * @internal The startTls options an `ssl` option means, for a client or
 * server side (null: no TLS).
 *
 * @throws {TypeError} for a value of another kind, or TLS options on a server without cert
 */
export function tlsOptions(
  ssl: SslOption | undefined,
  serverSide: boolean,
  extra: { serverName?: string; handshakeTimeoutMs?: number },
): StartTlsOptions | null {
  if (ssl === undefined || ssl === false) return null;
  let base: StartTlsOptions;
  if (ssl === true) {
    if (serverSide)
      throw invalidArgValue('The "ssl" option of a server must be a TlsContext or options with cert and key');
    base = {};
  } else if (ssl instanceof TlsContext) base = { context: ssl };
  else if (typeof ssl === 'object' && ssl !== null) base = { ...ssl };
  else throw invalidArgType('ssl', 'a boolean, a TlsContext or TLS options', ssl);
  if (serverSide && base.context === undefined) {
    // One context for all the server's connections, made (and checked) now.
    const { serverName: _name, sessionKey: _key, handshakeTimeoutMs: _ms, context: _context, ...contextOptions } = base;
    base = { context: new TlsContext({ ...contextOptions, server: true }) };
  }
  return {
    ...base,
    serverSide,
    ...(extra.serverName === undefined || serverSide ? {} : { serverName: base.serverName ?? extra.serverName }),
    ...(extra.handshakeTimeoutMs === undefined ? {} : { handshakeTimeoutMs: extra.handshakeTimeoutMs }),
  };
}

/** @internal TCP_NODELAY on a TCP socket, as asyncio sets it on every TCP transport. */
export function setNoDelay(sock: Socket): void {
  if (sock.family === AF_INET || sock.family === AF_INET6) sock.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
}

/**
 * @internal TLS if asked (resolving to the TlsSocket), then the transport:
 * resolves with `[transport, protocol]` once connectionMade has run.
 */
export function* startTransport<P extends Protocol | BufferedProtocol>(
  loop: EndpointLoop,
  sock: Socket,
  factory: ProtocolFactory<P>,
  tls: StartTlsOptions | null,
  owner: TransportOwner | null,
): Generator<unknown, [Transport, P], unknown> {
  let stream: ByteStream;
  if (tls === null) stream = new PlainStream(sock);
  else {
    const secured = (yield* loop.startTls(sock, tls)) as TlsSocket;
    stream = new TlsStream(secured);
  }
  const protocol = factory();
  if (typeof protocol !== 'object' || protocol === null) {
    throw invalidArgType('the protocol factory result', 'a protocol object', protocol);
  }
  const started = loop.createFuture<void>();
  const transport = new SocketTransport(loop, stream, protocol, owner, (error) => {
    if (started.done()) return false;
    if (error === null) started.setResult(undefined);
    else started.setException(error);
    return true;
  });
  try {
    yield* started;
  } catch (error) {
    transport.abort();
    throw error;
  }
  return [transport, protocol];
}

function* connectTcp<P extends Protocol | BufferedProtocol>(
  loop: EndpointLoop,
  factory: ProtocolFactory<P>,
  host: string,
  port: number,
  options: CreateConnectionOptions,
  tls: StartTlsOptions | null,
): Generator<unknown, [Transport, P], unknown> {
  const family = options.family ?? AF_UNSPEC;
  const infos = (yield* loop.getaddrinfo(host, port, { family, type: SOCK_STREAM })) as AddrInfo[];
  const local =
    options.localAddr === undefined
      ? null
      : ((yield* loop.getaddrinfo(options.localAddr[0], options.localAddr[1], {
          family,
          type: SOCK_STREAM,
        })) as AddrInfo[]);
  const errors: Error[] = [];
  for (const info of infos) {
    const sock = new Socket(info.family, SOCK_STREAM);
    try {
      sock.setBlocking(false);
      if (local !== null) {
        const mine = local.find((l) => l.family === info.family);
        if (mine === undefined) {
          throw Object.assign(new Error(`no local address of the family of ${String(info.address[0])}`), {
            code: 'EADDRNOTAVAIL',
          });
        }
        sock.bind(mine.address);
      }
      yield* loop.sockConnect(sock, info.address);
    } catch (error) {
      sock.close();
      // A cancellation ends the attempts; a refused address tries the next.
      if (!(error instanceof Error) || (error as { name?: string }).name === 'CancelledError') throw error;
      errors.push(error);
      continue;
    }
    try {
      setNoDelay(sock);
      return yield* startTransport(loop, sock, factory, tls, null);
    } catch (error) {
      sock.close();
      throw error;
    }
  }
  if (errors.length === 1) throw errors[0];
  const first = errors[0] as Error & { code?: string };
  throw Object.assign(new Error(`Multiple exceptions: ${errors.map((e) => e.message).join(', ')}`), {
    code: first?.code ?? 'ECONNREFUSED',
    errors,
  });
}

/** @internal asyncio's create_connection. @throws {TypeError} for bad arguments (at once) */
export function createConnection<P extends Protocol | BufferedProtocol>(
  loop: EndpointLoop,
  factory: ProtocolFactory<P>,
  host: string,
  port: number,
  options: CreateConnectionOptions,
): Future<[Transport, P]> {
  checkFactory(factory);
  if (typeof host !== 'string' || host === '') throw invalidArgType('host', 'a non-empty string', host);
  checkPort(port);
  checkOptions(options);
  checkSslOnly(options);
  if (options.family !== undefined && ![AF_UNSPEC, AF_INET, AF_INET6].includes(options.family)) {
    throw invalidArgValue(`The "family" option must be AF_INET, AF_INET6 or AF_UNSPEC. Received ${options.family}`);
  }
  if (options.localAddr !== undefined) {
    const [h, p] = Array.isArray(options.localAddr) ? options.localAddr : [];
    if (typeof h !== 'string') throw invalidArgType('localAddr', 'a [host, port] pair', options.localAddr);
    checkPort(p);
  }
  const tls = tlsOptions(options.ssl, false, {
    serverName: options.serverHostname ?? host,
    ...(options.sslHandshakeTimeoutMs === undefined ? {} : { handshakeTimeoutMs: options.sslHandshakeTimeoutMs }),
  });
  return loop.createTask(connectTcp(loop, factory, host, port, options, tls), `createConnection ${host}:${port}`);
}

function* connectUnix<P extends Protocol | BufferedProtocol>(
  loop: EndpointLoop,
  factory: ProtocolFactory<P>,
  path: string,
  tls: StartTlsOptions | null,
): Generator<unknown, [Transport, P], unknown> {
  const sock = new Socket(AF_UNIX, SOCK_STREAM);
  try {
    sock.setBlocking(false);
    yield* loop.sockConnect(sock, path);
    return yield* startTransport(loop, sock, factory, tls, null);
  } catch (error) {
    sock.close();
    throw error;
  }
}

/** @internal asyncio's create_unix_connection. @throws {TypeError} for bad arguments (at once) */
export function createUnixConnection<P extends Protocol | BufferedProtocol>(
  loop: EndpointLoop,
  factory: ProtocolFactory<P>,
  path: string,
  options: CreateUnixConnectionOptions,
): Future<[Transport, P]> {
  checkFactory(factory);
  if (typeof path !== 'string' || path === '') throw invalidArgType('path', 'a non-empty string', path);
  checkOptions(options);
  checkSslOnly(options);
  if (options.ssl !== undefined && options.ssl !== false && options.serverHostname === undefined) {
    throw invalidArgValue('The "serverHostname" option is required with "ssl" over a Unix socket');
  }
  const tls = tlsOptions(options.ssl, false, {
    ...(options.serverHostname === undefined ? {} : { serverName: options.serverHostname }),
    ...(options.sslHandshakeTimeoutMs === undefined ? {} : { handshakeTimeoutMs: options.sslHandshakeTimeoutMs }),
  });
  return loop.createTask(connectUnix(loop, factory, path, tls), `createUnixConnection ${path}`);
}

/** @internal asyncio's connect_accepted_socket: a transport over a socket accepted elsewhere. */
export function connectAcceptedSocket<P extends Protocol | BufferedProtocol>(
  loop: EndpointLoop,
  factory: ProtocolFactory<P>,
  sock: Socket,
  options: AcceptedSocketOptions,
): Future<[Transport, P]> {
  checkFactory(factory);
  if (!(sock instanceof Socket)) throw invalidArgType('sock', 'a Socket', sock);
  if (sock.type !== SOCK_STREAM) throw invalidArgValue(`A stream socket was expected. Received type ${sock.type}`);
  checkOptions(options);
  checkSslOnly(options);
  const tls = tlsOptions(options.ssl, true, {
    ...(options.sslHandshakeTimeoutMs === undefined ? {} : { handshakeTimeoutMs: options.sslHandshakeTimeoutMs }),
  });
  if (loop.holdsBytes(sock)) {
    // io_uring: a sockRecv's request still in the kernel, or bytes a cancelled
    // one took kept for the next sockRecv: the transport reads the fd itself
    // and would never see them (startTls refuses the same way).
    const busy = loop.createFuture<[Transport, P]>();
    busy.setException(
      new InvalidStateError('connectAcceptedSocket: a receive on this socket is in flight, or its bytes are kept'),
    );
    return busy;
  }
  sock.setBlocking(false);
  return loop.createTask(
    (function* () {
      try {
        return yield* startTransport(loop, sock, factory, tls, null);
      } catch (error) {
        sock.close();
        throw error;
      }
    })(),
    'connectAcceptedSocket',
  );
}
