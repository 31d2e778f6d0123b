/**
 * asyncio's Server and create_server / create_unix_server: listening
 * sockets whose readiness accepts connections, each handed to a new
 * protocol through a transport (stream-transport.ts), TLS first if asked.
 *
 * Accepting follows asyncio's _accept_connection: one readiness accepts up
 * to `backlog` connections; running out of fds (EMFILE, ENFILE, ENOBUFS,
 * ENOMEM) is reported and the listening socket rests for a second rather
 * than spin on a connection it cannot take.
 *
 * @module
 */
import { lstatSync, unlinkSync } from 'node:fs';
import type { Future } from '../coro/index.js';
import { RUN, type RunningLoop } from '../coro/types.js';
import { checkInt, invalidArgType, invalidArgValue } from '../sys/args.js';
import {
  type AddrInfo,
  AF_INET,
  AF_INET6,
  AF_UNIX,
  AF_UNSPEC,
  IPPROTO_IPV6,
  IPV6_V6ONLY,
  isErrnoError,
  OSError,
  SO_REUSEADDR,
  SO_REUSEPORT,
  SOCK_STREAM,
  SOL_SOCKET,
  Socket,
  type SocketAddress,
} from '../sys/index.js';
import { PlainStream } from './byte-streams.js';
import {
  checkFactory,
  checkOptions,
  checkPort,
  checkSslOnly,
  type EndpointLoop,
  type SslOption,
  setNoDelay,
  startTransport,
  tlsOptions,
} from './connections.js';
import type { IoSlots, Watcher } from './handle.js';
import type { BufferedProtocol, Protocol, ProtocolFactory } from './protocols.js';
import { SocketTransport, type TransportOwner } from './stream-transport.js';
import type { StartTlsOptions } from './tls-ops.js';

/** Options of createServer (asyncio's create_server, camelCased). */
export interface CreateServerOptions {
  /** listen(2)'s backlog, and how many connections one readiness accepts. Default 100. */
  backlog?: number;
  /** SO_REUSEADDR. Default true (as asyncio on Linux). */
  reuseAddress?: boolean;
  /** SO_REUSEPORT: several servers share the port. Default false. */
  reusePort?: boolean;
  /** AF_INET or AF_INET6 to listen on that family only. Default both. */
  family?: number;
  /** TLS on every connection: a server TlsContext, or options with `cert` and `key`. */
  ssl?: SslOption;
  /** The TLS handshake's limit in milliseconds. Default 60,000. */
  sslHandshakeTimeoutMs?: number;
  /** Accept at once (default true); else call startServing() or serveForever(). */
  startServing?: boolean;
  /** A listening socket to serve instead of host and port. */
  sock?: Socket;
}

/** Options of createUnixServer. */
export type CreateUnixServerOptions = Omit<CreateServerOptions, 'reuseAddress' | 'reusePort' | 'family'>;

const ACCEPT_RETRY_DELAY_MS = 1000;
const OUT_OF_FDS = new Set(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM']);

// A listening socket's reader slot: readiness accepts.
class Listener implements Watcher {
  slots: IoSlots | null = null;
  constructor(
    readonly server: Server,
    readonly sock: Socket,
  ) {}

  [RUN](): void {
    try {
      this.server.acceptReady(this);
    } catch (exception) {
      this.server.reportError({ message: 'Error on accepting', exception, future: this.server });
    }
  }

  disarm(): void {
    this.slots = null;
  }
}

/**
 * A server: its listening sockets and the connections it accepted (asyncio's
 * Server). Made by the loop's createServer and createUnixServer.
 */
// A TransportOwner (structurally: that interface is internal, and stays out of the .d.ts).
export class Server {
  readonly #loop: EndpointLoop;
  readonly #factory: ProtocolFactory<Protocol | BufferedProtocol>;
  readonly #tls: StartTlsOptions | null;
  readonly #backlog: number;
  #listeners: Listener[];
  readonly #unixPath: string | null;
  // The inode of the socket file it bound: close() removes the path only if it is still that file.
  readonly #unixInode: bigint | null;
  #serving = false;
  #closed = false;
  readonly #transports = new Set<SocketTransport>();
  // Connections accepted and still in their TLS handshake.
  readonly #handshakes = new Set<Future<unknown>>();
  #waiters: Future<void>[] = [];
  #forever: Future<void> | null = null;

  /** @internal */
  constructor(
    loop: EndpointLoop,
    factory: ProtocolFactory<Protocol | BufferedProtocol>,
    sockets: Socket[],
    backlog: number,
    tls: StartTlsOptions | null,
    unixPath: string | null,
  ) {
    this.#loop = loop;
    this.#factory = factory;
    this.#listeners = sockets.map((sock) => new Listener(this, sock));
    this.#backlog = backlog;
    this.#tls = tls;
    this.#unixPath = unixPath;
    this.#unixInode = unixPath === null ? null : inodeOf(unixPath);
  }

  /** The listening sockets (empty once closed). */
  get sockets(): readonly Socket[] {
    return this.#listeners.map((l) => l.sock);
  }

  /** Whether it accepts connections now. */
  isServing(): boolean {
    return this.#serving;
  }

  /** Starts accepting (no-op when serving or closed). */
  startServing(): void {
    if (this.#serving || this.#closed) return;
    this.#serving = true;
    for (const listener of this.#listeners) this.#watch(listener);
    // io_uring: connections a cancelled sockAccept took are kept for the next
    // one; the listening fd will not announce them again. Served now.
    for (const listener of this.#listeners) {
      for (let conn = this.#loop.takeKeptConnection(listener.sock); conn !== undefined && this.#serving; ) {
        this.#accepted(conn);
        conn = this.#loop.takeKeptConnection(listener.sock);
      }
    }
  }

  /**
   * Serves until close(): a Future that resolves then (asyncio's
   * serve_forever, which is cancelled instead). Cancelling it closes the server.
   *
   * @throws {InvalidStateError} (through the Future) when closed, or already serving forever
   */
  serveForever(): Future<void> {
    const future = this.#loop.createFuture<void>();
    if (this.#closed) {
      future.setException(Object.assign(new Error('the server is closed'), { code: 'ERR_SERVER_CLOSED' }));
      return future;
    }
    if (this.#forever !== null) {
      future.setException(
        Object.assign(new Error('serveForever() is already running'), { code: 'ERR_SERVER_ALREADY_SERVING' }),
      );
      return future;
    }
    this.#forever = future;
    future.addDoneCallback((f) => {
      if (f.cancelled()) this.close();
    });
    this.startServing();
    return future;
  }

  /**
   * Stops listening and closes the listening sockets (a Unix server's path
   * is removed). Connections already accepted stay open (asyncio 3.12):
   * closeClients() or abortClients() end them.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#serving = false;
    for (const listener of this.#listeners) {
      this.#unwatch(listener);
      listener.sock.close();
    }
    this.#listeners = [];
    // Only the file it bound: another server may have taken the path over since (asyncio 3.13).
    if (this.#unixPath !== null && this.#unixInode !== null && inodeOf(this.#unixPath) === this.#unixInode) {
      removeSocketFile(this.#unixPath);
    }
    const forever = this.#forever;
    this.#forever = null;
    if (forever !== null && !forever.done()) forever.setResult(undefined);
    this.#wakeIfIdle();
  }

  /** Closes every connection after its buffered data is sent (one still in its TLS handshake: at once). */
  closeClients(): void {
    for (const handshake of [...this.#handshakes]) handshake.cancel();
    for (const transport of [...this.#transports]) transport.close();
  }

  /** Closes every connection at once. */
  abortClients(): void {
    for (const handshake of [...this.#handshakes]) handshake.cancel();
    for (const transport of [...this.#transports]) transport.abort();
  }

  /** Resolves once close() was called and every connection it accepted has ended (asyncio 3.12). */
  waitClosed(): Future<void> {
    const future = this.#loop.createFuture<void>();
    if (this.#closed && this.#transports.size === 0 && this.#handshakes.size === 0) future.setResult(undefined);
    else this.#waiters.push(future);
    return future;
  }

  /** The loop it serves on. */
  getLoop(): RunningLoop {
    return this.#loop as unknown as RunningLoop;
  }

  /** @internal Reports what went wrong outside any callback. */
  reportError(context: { message: string; exception: unknown; future: unknown }): void {
    this.#loop.callExceptionHandler(context);
  }

  /** @internal A connection started. */
  attach(transport: SocketTransport): void {
    this.#transports.add(transport);
  }

  /** @internal A connection ended. */
  detach(transport: SocketTransport): void {
    this.#transports.delete(transport);
    this.#wakeIfIdle();
  }

  #wakeIfIdle(): void {
    if (!this.#closed || this.#transports.size !== 0 || this.#handshakes.size !== 0) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) if (!waiter.done()) waiter.setResult(undefined);
  }

  #watch(listener: Listener): void {
    if (listener.slots === null) listener.slots = this.#loop.watchFd(listener.sock, false, listener);
  }

  #unwatch(listener: Listener): void {
    const slots = listener.slots;
    if (slots === null) return;
    listener.slots = null;
    this.#loop.unwatch(slots, false, listener);
  }

  /** @internal A listening socket is readable: accept what is waiting. */
  acceptReady(listener: Listener): void {
    for (let i = 0; i < this.#backlog && this.#serving; i++) {
      let conn: Socket | null;
      try {
        conn = listener.sock.tryAccept(true);
      } catch (error) {
        if (isErrnoError(error) && OUT_OF_FDS.has(error.code)) {
          this.#loop.callExceptionHandler({
            message: 'socket.accept() out of system resource',
            exception: error,
            future: this,
          });
          this.#unwatch(listener);
          this.#loop.callLater(ACCEPT_RETRY_DELAY_MS, () => {
            if (this.#serving && this.#listeners.includes(listener)) this.#watch(listener);
          });
          return;
        }
        // ECONNABORTED and its kind: that connection is gone, not the server.
        if (error instanceof OSError) return;
        throw error;
      }
      if (conn === null) return;
      this.#accepted(conn);
    }
  }

  #accepted(conn: Socket): void {
    try {
      setNoDelay(conn);
    } catch {
      // Reset before we got to it: the transport will see it.
    }
    if (this.#tls === null) {
      // The common case without a Task: the transport starts itself.
      let protocol: Protocol | BufferedProtocol;
      try {
        protocol = this.#factory();
        if (typeof protocol !== 'object' || protocol === null) {
          throw invalidArgType('the protocol factory result', 'a protocol object', protocol);
        }
      } catch (exception) {
        conn.close();
        this.#loop.callExceptionHandler({ message: 'Exception in the protocol factory', exception, future: this });
        return;
      }
      startPlain(this.#loop, conn, protocol, this);
      return;
    }
    const task = this.#loop.createTask(startTransport(this.#loop, conn, this.#factory, this.#tls, this));
    this.#handshakes.add(task);
    task.addDoneCallback((t) => {
      this.#handshakes.delete(task);
      if (t.cancelled() || t.exception() !== null) {
        // A failed handshake ends that connection only (asyncio logs it in debug mode).
        if (!conn.closed) conn.close();
        if (this.#loop.debug && !t.cancelled()) {
          this.#loop.callExceptionHandler({ message: 'TLS handshake failed', exception: t.exception(), future: t });
        }
      }
      this.#wakeIfIdle();
    });
  }
}

function startPlain(
  loop: EndpointLoop,
  conn: Socket,
  protocol: Protocol | BufferedProtocol,
  owner: TransportOwner,
): SocketTransport {
  return new SocketTransport(loop, new PlainStream(conn), protocol, owner);
}

// The inode of the socket file at `path`, or null (none there, or not a socket).
function inodeOf(path: string): bigint | null {
  try {
    const stat = lstatSync(path, { bigint: true });
    return stat.isSocket() ? stat.ino : null;
  } catch {
    return null;
  }
}

// Removes a stale Unix socket file (asyncio does the same before bind, and after close).
function removeSocketFile(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // Gone already.
  }
}

function checkServerOptions(options: CreateServerOptions): number {
  checkOptions(options);
  const backlog = options.backlog === undefined ? 100 : checkInt(options.backlog, 'backlog', 1, 65535);
  if (options.sock !== undefined && !(options.sock instanceof Socket)) {
    throw invalidArgType('sock', 'a Socket', options.sock);
  }
  return backlog;
}

function serverTls(options: CreateServerOptions): StartTlsOptions | null {
  checkSslOnly(options);
  return tlsOptions(options.ssl, true, {
    ...(options.sslHandshakeTimeoutMs === undefined ? {} : { handshakeTimeoutMs: options.sslHandshakeTimeoutMs }),
  });
}

function describeBind(address: SocketAddress): string {
  return typeof address === 'string' ? address : `('${address[0]}', ${address[1]})`;
}

function* listenTcp(
  loop: EndpointLoop,
  factory: ProtocolFactory<Protocol | BufferedProtocol>,
  hosts: readonly string[],
  port: number,
  options: CreateServerOptions,
  backlog: number,
  tls: StartTlsOptions | null,
): Generator<unknown, Server, unknown> {
  const family = options.family ?? AF_UNSPEC;
  const infos: AddrInfo[] = [];
  const seen = new Set<string>();
  for (const host of hosts) {
    const found = (yield* loop.getaddrinfo(host, port, { family, type: SOCK_STREAM })) as AddrInfo[];
    for (const info of found) {
      const key = `${info.family}/${String(info.address[0])}/${String(info.address[1])}`;
      if (seen.has(key)) continue;
      seen.add(key);
      infos.push(info);
    }
  }
  const sockets: Socket[] = [];
  try {
    for (const info of infos) {
      let sock: Socket;
      try {
        sock = new Socket(info.family, SOCK_STREAM);
      } catch (error) {
        // No IPv6 on this machine: listen on the rest (asyncio skips it too).
        if (isErrnoError(error, 'EAFNOSUPPORT') && hosts.length > 1) continue;
        throw error;
      }
      sockets.push(sock);
      if (options.reuseAddress ?? true) sock.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
      if (options.reusePort === true) sock.setsockopt(SOL_SOCKET, SO_REUSEPORT, 1);
      // asyncio: an IPv6 socket listens on IPv6 only, beside its IPv4 one.
      if (info.family === AF_INET6) sock.setsockopt(IPPROTO_IPV6, IPV6_V6ONLY, 1);
      try {
        sock.bind(info.address);
      } catch (error) {
        if (!isErrnoError(error)) throw error;
        // asyncio's message, the code kept.
        error.message = `error while attempting to bind on address ${describeBind(info.address)}: ${error.message}`;
        throw error;
      }
      sock.listen(backlog);
      sock.setBlocking(false);
    }
  } catch (error) {
    for (const sock of sockets) sock.close();
    throw error;
  }
  if (sockets.length === 0) {
    throw Object.assign(new Error(`no address to listen on for ${hosts.join(', ')}`), { code: 'EADDRNOTAVAIL' });
  }
  return started(new Server(loop, factory, sockets, backlog, tls, null), options);
}

function started(server: Server, options: { startServing?: boolean }): Server {
  if (options.startServing ?? true) {
    try {
      server.startServing();
    } catch (error) {
      // The loop cannot watch a listening socket (select and an fd >=
      // FD_SETSIZE): no server, and nothing of it left open.
      server.close();
      throw error;
    }
  }
  return server;
}

/** @internal asyncio's create_server. @throws {TypeError} for bad arguments (at once) */
export function createServer(
  loop: EndpointLoop,
  factory: ProtocolFactory<Protocol | BufferedProtocol>,
  host: string | readonly string[] | null | undefined,
  port: number | undefined,
  options: CreateServerOptions,
): Future<Server> {
  checkFactory(factory);
  const backlog = checkServerOptions(options);
  const tls = serverTls(options);
  if (options.sock !== undefined) {
    if (host != null || port !== undefined)
      throw invalidArgValue('host/port and the "sock" option are mutually exclusive');
    const sock = options.sock;
    if (sock.type !== SOCK_STREAM) throw invalidArgValue(`A stream socket was expected. Received type ${sock.type}`);
    sock.setBlocking(false);
    return settled(loop, () => started(new Server(loop, factory, [sock], backlog, tls, null), options));
  }
  checkPort(port);
  let hosts: readonly string[];
  if (host === null || host === undefined || host === '') {
    hosts = options.family === AF_INET ? ['0.0.0.0'] : options.family === AF_INET6 ? ['::'] : ['0.0.0.0', '::'];
  } else if (typeof host === 'string') hosts = [host];
  else if (Array.isArray(host) && host.every((h) => typeof h === 'string' && h !== '')) hosts = host;
  else throw invalidArgType('host', 'a string, an array of strings, or null', host);
  if (options.family !== undefined && ![AF_UNSPEC, AF_INET, AF_INET6].includes(options.family)) {
    throw invalidArgValue(`The "family" option must be AF_INET, AF_INET6 or AF_UNSPEC. Received ${options.family}`);
  }
  return loop.createTask(listenTcp(loop, factory, hosts, port as number, options, backlog, tls), 'createServer');
}

/**
 * @internal asyncio's create_unix_server: listens at `path`, or serves
 * `options.sock` (a listening AF_UNIX stream socket) when path is null.
 *
 * @throws {TypeError} for bad arguments (at once): path and sock both given, or neither
 */
export function createUnixServer(
  loop: EndpointLoop,
  factory: ProtocolFactory<Protocol | BufferedProtocol>,
  path: string | null,
  options: CreateUnixServerOptions,
): Future<Server> {
  checkFactory(factory);
  const backlog = checkServerOptions(options);
  if (options.sock !== undefined) {
    // asyncio: "path and sock can not be specified at the same time".
    if (path !== null && path !== undefined) throw invalidArgValue('path and the "sock" option are mutually exclusive');
    const sock = options.sock;
    if (sock.family !== AF_UNIX || sock.type !== SOCK_STREAM) {
      throw invalidArgValue(`A Unix stream socket was expected. Received family ${sock.family}, type ${sock.type}`);
    }
    const tls = serverTls(options);
    sock.setBlocking(false);
    return settled(loop, () => started(new Server(loop, factory, [sock], backlog, tls, null), options));
  }
  if (typeof path !== 'string' || path === '') throw invalidArgType('path', 'a non-empty string', path);
  const tls = serverTls(options);
  const future = loop.createFuture<Server>();
  removeSocketFile(path);
  const sock = new Socket(AF_UNIX, SOCK_STREAM);
  try {
    sock.bind(path);
    sock.listen(backlog);
    sock.setBlocking(false);
  } catch (error) {
    sock.close();
    future.setException(error);
    return future;
  }
  return settled(loop, () => started(new Server(loop, factory, [sock], backlog, tls, path), options), future);
}

// A Future of what `make` returns, or of what it throws (a server that could not start serving).
function settled(loop: EndpointLoop, make: () => Server, future = loop.createFuture<Server>()): Future<Server> {
  try {
    future.setResult(make());
  } catch (error) {
    future.setException(error);
  }
  return future;
}
