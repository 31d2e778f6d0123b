/**
 * sockConnect to a host name: getaddrinfo on the loop's resolver, then the
 * numeric connect of sock-ops.ts to the first address of the socket's
 * family. Cancelling the Future cancels whichever step is under way.
 *
 * @module
 */
import type { Future } from '../coro/index.js';
import { type AddrInfo, AF_INET, AF_INET6, SOCK_STREAM, type Socket, type SocketAddress } from '../sys/index.js';
import type { GetAddrInfoOptions } from './dns.js';

/** What a connect by name needs of the loop. */
export interface ConnectLoop {
  createFuture<T>(): Future<T>;
  /** Connects to a numeric address. */
  sockConnect(sock: Socket, address: SocketAddress): Future<void>;
  getaddrinfo(host: string, port: number, options?: GetAddrInfoOptions): Future<AddrInfo[]>;
}

/**
 * Resolves `host`, then connects `sock` to its first address of the
 * socket's family.
 *
 * @throws (through the Future) GetAddrInfoError; an Error with code
 *   ENOTFOUND when the name has no address of that family; the connect error
 */
export function connectByName(loop: ConnectLoop, sock: Socket, host: string, port: number): Future<void> {
  const family = sock.family;
  const future = loop.createFuture<void>();
  const lookup = loop.getaddrinfo(host, port, { family, type: SOCK_STREAM });
  lookup.addDoneCallback((done) => {
    if (future.done()) return;
    if (done.exception() !== null) {
      future.setException(done.exception());
      return;
    }
    const first = done.result().find((info) => info.family === family);
    if (first === undefined) {
      const kind = family === AF_INET ? 'IPv4' : family === AF_INET6 ? 'IPv6' : '';
      future.setException(
        Object.assign(new Error(`getaddrinfo found no ${kind} address for ${host}`), { code: 'ENOTFOUND' }),
      );
      return;
    }
    const connected = loop.sockConnect(sock, first.address);
    connected.addDoneCallback((c) => {
      if (future.done()) return;
      if (c.cancelled()) future.cancel();
      else if (c.exception() !== null) future.setException(c.exception());
      else future.setResult(undefined);
    });
    future.addDoneCallback((f) => {
      if (f.cancelled()) connected.cancel();
    });
  });
  future.addDoneCallback((f) => {
    if (f.cancelled()) lookup.cancel();
  });
  return future;
}
