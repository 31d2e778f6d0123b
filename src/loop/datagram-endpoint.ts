/**
 * asyncio's create_datagram_endpoint: checks the options, makes the datagram
 * socket (resolved, bound, connected as they say; a Unix path's stale socket
 * file replaced), then the transport (datagram-transport.ts) and protocol.
 *
 * @module
 */
import { lstatSync, unlinkSync } from 'node:fs';

import { type Coroutine, type Future, InvalidStateError } from '../coro/index.js';
import { invalidArgType, invalidArgValue, outOfRange } from '../sys/args.js';
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  OSError,
  SO_BROADCAST,
  SO_REUSEPORT,
  SOCK_DGRAM,
  SOL_SOCKET,
  Socket,
  type SocketAddress,
} from '../sys/index.js';
import { nameOf } from './datagram-address.js';
import { type EndpointLoop, LoopDatagramTransport } from './datagram-transport.js';
import type { DatagramProtocol, DatagramTransport } from './protocols.js';

/** An IP endpoint address as createDatagramEndpoint takes it: a host (name or numeric) and a port. */
export type EndpointHostPort = [host: string, port: number];

/** The options of createDatagramEndpoint (asyncio's create_datagram_endpoint). */
export interface DatagramEndpointOptions {
  /**
   * The local address to bind: `[host, port]` (a host name is resolved with
   * the loop's getaddrinfo; port 0 picks one), or a path for a Unix datagram
   * socket (a stale socket file there is removed first, as asyncio does).
   */
  localAddr?: EndpointHostPort | string;
  /**
   * The peer to connect to (connect(2)): `[host, port]` or a Unix socket path.
   * The endpoint then receives only the peer's datagrams, and sendto takes no
   * address (or the peer's).
   */
  remoteAddr?: EndpointHostPort | string;
  /** AF_INET, AF_INET6 or AF_UNIX (0 or absent: from the addresses). Required when neither address is given. */
  family?: number;
  /** Sets SO_REUSEPORT: several sockets may bind the same address and port. */
  reusePort?: boolean;
  /** Sets SO_BROADCAST: datagrams may be sent to a broadcast address. */
  allowBroadcast?: boolean;
  /**
   * An existing SOCK_DGRAM socket to use instead (made non-blocking; the
   * transport owns it from now on and closes it). No other option may be given with it.
   */
  sock?: Socket;
}

const KNOWN_OPTIONS = new Set(['localAddr', 'remoteAddr', 'family', 'reusePort', 'allowBroadcast', 'sock']);

function checkHostPort(name: string, value: unknown): void {
  if (value === undefined || typeof value === 'string') return;
  if (
    !Array.isArray(value) ||
    value.length !== 2 ||
    typeof value[0] !== 'string' ||
    typeof value[1] !== 'number' ||
    !Number.isInteger(value[1])
  ) {
    throw invalidArgType(name, 'a [host, port] array or a Unix socket path', value);
  }
  if (value[1] < 0 || value[1] > 65535) throw outOfRange(`${name}[1]`, '>= 0 and <= 65535', value[1]);
}

/** Checks the options as asyncio does, before anything starts. @throws TypeError / RangeError */
function checkOptions(protocolFactory: unknown, options: DatagramEndpointOptions): void {
  if (typeof protocolFactory !== 'function') throw invalidArgType('protocolFactory', 'a function', protocolFactory);
  if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'an object', options);
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) throw invalidArgValue(`Unknown createDatagramEndpoint option ${JSON.stringify(key)}`);
  }
  const { localAddr, remoteAddr, family, reusePort, allowBroadcast, sock } = options;
  for (const [name, flag] of [
    ['reusePort', reusePort],
    ['allowBroadcast', allowBroadcast],
  ] as const) {
    if (flag !== undefined && typeof flag !== 'boolean') throw invalidArgType(name, 'of type boolean', flag);
  }
  if (sock !== undefined) {
    if (!(sock instanceof Socket)) throw invalidArgType('sock', 'a Socket', sock);
    if (sock.type !== SOCK_DGRAM)
      throw invalidArgValue(`A datagram socket was expected, got a socket of type ${sock.type}`);
    // asyncio's rule: with sock, no option that would shape a socket (a
    // false flag or family 0 shapes nothing).
    const others: string[] = [];
    if (localAddr !== undefined) others.push('localAddr');
    if (remoteAddr !== undefined) others.push('remoteAddr');
    if (family !== undefined && family !== 0) others.push('family');
    if (reusePort === true) others.push('reusePort');
    if (allowBroadcast === true) others.push('allowBroadcast');
    if (others.length > 0) {
      throw invalidArgValue(`Options that make a socket cannot be given with sock: ${others.join(', ')}`);
    }
    return;
  }
  if (family !== undefined && family !== 0 && family !== AF_INET && family !== AF_INET6 && family !== AF_UNIX) {
    throw outOfRange('family', 'AF_INET, AF_INET6, AF_UNIX or 0', family);
  }
  checkHostPort('localAddr', localAddr);
  checkHostPort('remoteAddr', remoteAddr);
  const unix = family === AF_UNIX || typeof localAddr === 'string' || typeof remoteAddr === 'string';
  if (unix) {
    if (family !== undefined && family !== 0 && family !== AF_UNIX) {
      throw invalidArgValue(`A Unix socket path needs family AF_UNIX, not ${family}`);
    }
    for (const [name, addr] of [
      ['localAddr', localAddr],
      ['remoteAddr', remoteAddr],
    ] as const) {
      if (addr !== undefined && typeof addr !== 'string') throw invalidArgType(name, 'a path string for AF_UNIX', addr);
    }
    return;
  }
  if (localAddr === undefined && remoteAddr === undefined && (family === undefined || family === 0)) {
    throw invalidArgValue('unexpected address family: give localAddr, remoteAddr or family');
  }
}

/**
 * @internal asyncio's create_datagram_endpoint: a datagram socket made (bound,
 * connected) as the options say, with its transport and the protocol
 * `protocolFactory` made. Resolves once connectionMade has run.
 *
 * @throws {TypeError} / {RangeError} for bad options (at once)
 */
export function createDatagramEndpoint<P extends DatagramProtocol>(
  loop: EndpointLoop,
  protocolFactory: () => P,
  options: DatagramEndpointOptions,
): Future<[DatagramTransport, P]> {
  checkOptions(protocolFactory, options);
  return loop.createTask(endpoint(loop, protocolFactory, options));
}

function* endpoint<P extends DatagramProtocol>(
  loop: EndpointLoop,
  protocolFactory: () => P,
  options: DatagramEndpointOptions,
): Coroutine<[DatagramTransport, P]> {
  let sock: Socket;
  let peer: SocketAddress | null = null;
  if (options.sock !== undefined) {
    sock = options.sock;
    if (loop.holdsBytes(sock)) {
      // io_uring: a sockRecv's request still in the kernel, or a datagram a
      // cancelled one took kept for the next sockRecv: the transport receives
      // from the fd itself and would never see it.
      throw new InvalidStateError(
        'createDatagramEndpoint: a receive on this socket is in flight, or its bytes are kept',
      );
    }
    sock.setBlocking(false);
    peer = nameOf(sock, true) ?? null;
  } else {
    [sock, peer] = yield* makeSocket(loop, options);
  }
  let transport: LoopDatagramTransport;
  let protocol: P;
  const waiter = loop.createFuture<void>();
  try {
    protocol = protocolFactory();
    // As createConnection: a factory that made no protocol fails here, not in every callback later.
    if (typeof protocol !== 'object' || protocol === null) {
      throw invalidArgType('the protocol factory result', 'a protocol object', protocol);
    }
    transport = new LoopDatagramTransport(loop, sock, protocol, peer, waiter);
  } catch (error) {
    sock.close();
    throw error;
  }
  try {
    yield* waiter;
  } catch (error) {
    transport.close();
    throw error;
  }
  return [transport, protocol];
}

// The socket the options ask for, bound and connected: [sock, peer].
function* makeSocket(loop: EndpointLoop, options: DatagramEndpointOptions): Coroutine<[Socket, SocketAddress | null]> {
  const { localAddr, remoteAddr, family = 0 } = options;
  if (family === AF_UNIX || typeof localAddr === 'string' || typeof remoteAddr === 'string') {
    const local = localAddr as string | undefined;
    const remote = remoteAddr as string | undefined;
    if (local !== undefined && local !== '' && local[0] !== '\0') removeStaleSocket(local);
    const sock = yield* setUp(loop, AF_UNIX, options, local ?? null, remote ?? null);
    return [sock, remote ?? null];
  }
  // IP: resolve both addresses, then try each (family) whose local and
  // remote both resolved, as asyncio does; the last error if none works.
  const hints = { family, type: SOCK_DGRAM };
  const locals = localAddr === undefined ? null : yield* loop.getaddrinfo(localAddr[0], localAddr[1], hints);
  const remotes = remoteAddr === undefined ? null : yield* loop.getaddrinfo(remoteAddr[0], remoteAddr[1], hints);
  const candidates: [number, SocketAddress | null, SocketAddress | null][] = [];
  if (locals === null && remotes === null) candidates.push([family, null, null]);
  for (const f of [AF_INET, AF_INET6]) {
    const l = locals?.find((info) => info.family === f);
    const r = remotes?.find((info) => info.family === f);
    if ((locals !== null && l === undefined) || (remotes !== null && r === undefined)) continue;
    if (l === undefined && r === undefined) continue;
    candidates.push([f, l?.address ?? null, r?.address ?? null]);
  }
  if (candidates.length === 0) {
    throw Object.assign(new Error('getaddrinfo found no local and remote addresses of one family'), {
      code: 'ENOTFOUND',
    });
  }
  let last: unknown = null;
  for (const [f, local, remote] of candidates) {
    try {
      const sock = yield* setUp(loop, f, options, local, remote);
      return [sock, remote];
    } catch (error) {
      if (!(error instanceof OSError)) throw error;
      last = error;
    }
  }
  throw last;
}

// One socket of `family`: options set, bound to `local`, connected to
// `remote`; closed again if any step fails.
function* setUp(
  loop: EndpointLoop,
  family: number,
  options: DatagramEndpointOptions,
  local: SocketAddress | null,
  remote: SocketAddress | null,
): Coroutine<Socket> {
  const sock = new Socket(family, SOCK_DGRAM);
  try {
    sock.setBlocking(false);
    if (options.reusePort === true) sock.setsockopt(SOL_SOCKET, SO_REUSEPORT, 1);
    if (options.allowBroadcast === true) sock.setsockopt(SOL_SOCKET, SO_BROADCAST, 1);
    if (local !== null) sock.bind(local);
    if (remote !== null) yield* loop.sockConnect(sock, remote);
  } catch (error) {
    sock.close();
    throw error;
  }
  return sock;
}

// asyncio removes a stale Unix socket file before it binds the path (a
// previous run's); anything else there is left for bind to refuse (EADDRINUSE).
function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // Absent, or not ours to remove: bind reports what matters.
  }
}
