/**
 * getaddrinfo(3) off the calling thread, completion signalled through an fd.
 *
 * @module
 */
import { isIP } from 'node:net';
import type { SocketAddress } from './addresses.js';
import type { NativeResolver } from './binding.js';
import { AF_INET, AF_INET6, AF_UNSPEC, IPPROTO_TCP, IPPROTO_UDP, SOCK_DGRAM, SOCK_STREAM } from './constants.js';
import { native } from './native.js';

/** One getaddrinfo result. */
export interface AddrInfo {
  family: number;
  type: number;
  proto: number;
  address: SocketAddress;
}

/** A finished lookup. */
export interface CompletedLookup {
  id: number;
  /** 0 or an EAI_* code (negative). */
  error: number;
  /**
   * When `error` is EAI_SYSTEM, the system error behind it as a Node-style
   * negative errno (-24 for EMFILE); else 0.
   */
  errno: number;
  /** gai_strerror's text (strerror's for EAI_SYSTEM) when error is not 0. */
  message: string;
  results: AddrInfo[];
}

/**
 * What getaddrinfo(3) would answer for a numeric host, without asking it:
 * one entry per socket type (`type` 0: stream and datagram), or null when
 * `host` is a name or does not match `family`.
 */
export function numericAddrInfo(host: string, port: number, family = AF_UNSPEC, type = 0): AddrInfo[] | null {
  const version = isIP(host);
  if (version === 0) return null;
  const own = version === 4 ? AF_INET : AF_INET6;
  if (family !== AF_UNSPEC && family !== own) return null;
  const types = type !== 0 ? [type] : [SOCK_STREAM, SOCK_DGRAM];
  return types.map((t) => ({
    family: own,
    type: t,
    proto: t === SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP,
    address: own === AF_INET ? [host, port] : [host, port, 0, 0],
  }));
}

/**
 * Runs getaddrinfo(3) on up to 4 worker threads. Its {@link fileno} (an
 * eventfd) becomes readable when lookups finish; {@link take} collects them.
 * Event loops watch the fd, so a lookup never blocks them.
 */
export class Resolver implements Disposable {
  readonly #native: NativeResolver = native.createResolver();

  /** The eventfd that is readable while finished lookups wait to be taken. */
  fileno(): number {
    return this.#native.fileno();
  }

  /**
   * Starts a lookup.
   *
   * @param id - returned with the result
   * @param host - a name or numeric address ('' for none, with AI_PASSIVE)
   * @param service - a port number or service name ('' for none)
   * @throws {OSError} EBADF when closed
   */
  submit(id: number, host: string, service: string, family = 0, type = 0, flags = 0): void {
    this.#native.submit(id, host, service, family, type, flags);
  }

  /** Finished lookups since the last call (and clears the fd's readiness). */
  take(): CompletedLookup[] {
    return this.#native.take().map(([id, error, rows, message, sysErrno]) => ({
      id,
      error,
      errno: sysErrno === 0 ? 0 : -sysErrno,
      message,
      results: rows.map(([family, type, proto, address]) => ({
        family,
        type,
        proto,
        address: address as SocketAddress,
      })),
    }));
  }

  /** Drops pending lookups; worker threads end after their current one. Idempotent. */
  close(): void {
    this.#native.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
