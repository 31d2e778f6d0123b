/**
 * Name resolution for the fetchers that have no event loop: numeric
 * addresses at once, names on the native resolver's thread.
 *
 * @module
 */
import { isIP } from 'node:net';

import { type AddrInfo, AF_INET, AF_INET6, IPPROTO_TCP, type Resolver, SOCK_STREAM } from '../sys/index.js';

/** The address of a numeric host, or null for a name. */
export function numericAddress(hostname: string, port: number): AddrInfo | null {
  const version = isIP(hostname);
  if (version === 0) return null;
  return version === 4
    ? { family: AF_INET, type: SOCK_STREAM, proto: IPPROTO_TCP, address: [hostname, port] }
    : { family: AF_INET6, type: SOCK_STREAM, proto: IPPROTO_TCP, address: [hostname, port, 0, 0] };
}

/** An error for a failed lookup, shaped as the loop's (code ENOTFOUND...). */
export class LookupError extends Error {
  readonly code: string;

  constructor(hostname: string, error: number, detail: string) {
    const code = error === -2 || error === -5 ? 'ENOTFOUND' : error === -3 ? 'EAI_AGAIN' : `EAI_${-error}`;
    super(`getaddrinfo ${code} ${hostname}${detail === '' ? '' : ` (${detail})`}`);
    this.code = code;
  }

  override get name(): string {
    return 'LookupError';
  }
}

/** Submits a TCP lookup of hostname:port on `resolver` under `id`. */
export function submitLookup(resolver: Resolver, id: number, hostname: string, port: number): void {
  resolver.submit(id, hostname, String(port), 0, SOCK_STREAM, 0);
}
