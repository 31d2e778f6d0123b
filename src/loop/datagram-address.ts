/**
 * Where a datagram transport's sendto may send: its destination checked
 * before anything is sent or queued, as asyncio's sendto checks it, and the
 * addresses the transport keeps.
 *
 * A datagram queued behind others is parsed by the addon only when it goes
 * out; a bad address then would close the transport (and drop its queue)
 * instead of throwing at the caller. So everything the addon's parser
 * refuses is refused here, at once.
 *
 * @module
 */
import { isIP } from 'node:net';

import { invalidArgType, invalidArgValue, outOfRange } from '../sys/args.js';
import { AF_INET6, AF_UNIX, type Socket, type SocketAddress } from '../sys/index.js';

/** @internal A transport's sendto destinations: its family, its peer if connected. */
export class Destination {
  // The last host checked (a server answers the same few peers, whose host
  // is the same string each time): its port alone needs checking again.
  #checkedHost: string | null = null;

  constructor(
    readonly family: number,
    readonly peer: SocketAddress | null,
  ) {}

  /**
   * The address to send to: null on a connected endpoint (its peer), else
   * `address`, checked.
   *
   * @throws {TypeError} an address on a connected endpoint other than its
   *   peer's; no address on an unconnected one; an address not of the
   *   socket's family (or a host name)
   * @throws {RangeError} a port outside [0, 65535], a flowinfo or scope id out of range, a Unix path too long
   */
  check(address: SocketAddress | null): SocketAddress | null {
    const peer = this.peer;
    if (peer !== null) {
      if (address !== null && !sameAddress(address, peer)) {
        throw invalidArgValue(`Invalid address: must be null or ${describe(peer)}. Received ${describe(address)}`);
      }
      return null;
    }
    if (address === null) throw invalidArgValue('sendto on an unconnected endpoint needs an address');
    if (
      Array.isArray(address) &&
      address.length === 2 &&
      address[0] === this.#checkedHost &&
      typeof address[1] === 'number'
    ) {
      checkPort(address[1]);
      return address;
    }
    checkAddress(this.family, address);
    if (typeof address !== 'string' && address.length === 2) this.#checkedHost = address[0];
    return address;
  }
}

/** @internal The socket's own or its peer's address, or undefined when it has none. */
export function nameOf(sock: Socket, peer: boolean): SocketAddress | undefined {
  try {
    return peer ? sock.getpeername() : sock.getsockname();
  } catch {
    return undefined;
  }
}

/** @internal A copy of an address kept for later: the caller may reuse its array. */
export function addressCopy(to: SocketAddress | null): SocketAddress | null {
  return to === null || typeof to === 'string' ? to : ([...to] as SocketAddress);
}

function describe(address: SocketAddress): string {
  return typeof address === 'string'
    ? JSON.stringify(address)
    : `[${address.map((v) => JSON.stringify(v)).join(', ')}]`;
}

function sameAddress(a: SocketAddress, b: SocketAddress): boolean {
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  return a[0] === b[0] && a[1] === b[1];
}

// sendto's address, checked before anything is sent or queued: the shape of
// the socket's family (the addon checks the rest when it parses it).
function checkAddress(family: number, address: unknown): void {
  if (family === AF_UNIX) {
    if (typeof address !== 'string') throw invalidArgType('address', 'a path string for AF_UNIX', address);
    // What the addon's sockaddr_un parser refuses, refused here too: a datagram
    // queued behind others is parsed only when it goes out, and a bad address
    // then would close the transport (and drop the queue) instead of throwing.
    const abstract = address.startsWith('\0');
    const room = SUN_PATH_SIZE - (abstract ? 0 : 1);
    const size = Buffer.byteLength(address, 'utf8');
    if (size > room) throw outOfRange('address', `a path of at most ${room} bytes`, `${size} bytes`);
    if (!abstract && address.includes('\0')) throw invalidArgValue('The AF_UNIX path must not contain NUL bytes');
    return;
  }
  const ipFamily = family === AF_INET6 ? 6 : 4;
  if (!Array.isArray(address) || typeof address[0] !== 'string' || typeof address[1] !== 'number') {
    throw invalidArgType('address', `a [host, port] array for AF_INET${ipFamily === 6 ? '6' : ''}`, address);
  }
  // isIP takes an IPv6 zone ("fe80::1%eth0"); inet_pton, hence the addon, does not.
  if (isIP(address[0]) !== ipFamily || address[0].includes('%')) {
    throw invalidArgValue(
      `The address host must be a numeric IPv${ipFamily} address (resolve names with getaddrinfo). Received ${JSON.stringify(address[0])}`,
    );
  }
  checkPort(address[1]);
  if (ipFamily === 6) {
    // [host, port, flowinfo?, scopeId?], as the addon reads them.
    const [, , flowinfo, scopeId] = address as unknown[];
    for (const [name, value, max] of [
      ['flowinfo', flowinfo, 0xfffff],
      ['scopeId', scopeId, 0xffffffff],
    ] as const) {
      if (value === undefined) continue;
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
        throw outOfRange(name, `an integer >= 0 and <= ${max}`, value);
      }
    }
  }
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw outOfRange('port', '>= 0 and <= 65535', port);
}

// sizeof(sockaddr_un.sun_path) on Linux.
const SUN_PATH_SIZE = 108;
