/**
 * The loop's getaddrinfo: numeric addresses at once, names on the native
 * resolver's threads, completion watched like any other fd.
 *
 * @module
 */
import { constants as osConstants } from 'node:os';

import type { Future } from '../coro/index.js';
import {
  type AddrInfo,
  AF_UNSPEC,
  EAI_AGAIN,
  EAI_FAIL,
  EAI_FAMILY,
  EAI_NODATA,
  EAI_NONAME,
  EAI_SERVICE,
  EAI_SYSTEM,
  numericAddrInfo,
  Resolver,
} from '../sys/index.js';

/** getaddrinfo options: AF_*, SOCK_*, IPPROTO_* and AI_* numbers (0: any). */
export interface GetAddrInfoOptions {
  family?: number;
  type?: number;
  flags?: number;
}

/**
 * A failed lookup, shaped like Node's dns errors (`code` 'ENOTFOUND'...).
 * An EAI_SYSTEM failure carries the system error behind it, as Node's do:
 * `code` 'EMFILE', `errno` -24.
 */
export class GetAddrInfoError extends Error {
  readonly code: string;
  /** The EAI_* code (negative), or for EAI_SYSTEM the system errno (negative). */
  readonly errno: number;
  readonly syscall = 'getaddrinfo';
  readonly hostname: string;

  /**
   * @param eai - the EAI_* code getaddrinfo returned
   * @param sysErrno - for EAI_SYSTEM, the errno (negative, Node-style)
   */
  constructor(eai: number, hostname: string, detail: string, sysErrno = 0) {
    const errno = eai === EAI_SYSTEM && sysErrno !== 0 ? sysErrno : eai;
    const code = eai === EAI_SYSTEM && sysErrno !== 0 ? errnoName(-sysErrno) : codeOf(eai);
    super(`getaddrinfo ${code} ${hostname}${detail === '' ? '' : ` (${detail})`}`);
    this.code = code;
    this.errno = errno;
    this.hostname = hostname;
  }

  override get name(): string {
    return 'GetAddrInfoError';
  }
}

function codeOf(errno: number): string {
  if (errno === EAI_NONAME || errno === EAI_NODATA) return 'ENOTFOUND';
  if (errno === EAI_AGAIN) return 'EAI_AGAIN';
  if (errno === EAI_FAIL) return 'EAI_FAIL';
  if (errno === EAI_SERVICE) return 'EAI_SERVICE';
  if (errno === EAI_FAMILY) return 'EAI_FAMILY';
  return `EAI_${-errno}`;
}

function errnoName(errno: number): string {
  for (const [name, value] of Object.entries(osConstants.errno)) if (value === errno) return name;
  return 'EAI_SYSTEM';
}

/** What the resolver needs of the loop. */
export interface DnsLoop {
  createFuture<T>(): Future<T>;
  addReader(fd: number, callback: () => void): unknown;
  removeReader(fd: number): boolean;
}

/** Lookups for one loop; the native resolver is made on first use. */
export class LoopResolver {
  readonly #loop: DnsLoop;
  #resolver: Resolver | null = null;
  readonly #pending = new Map<number, { future: Future<AddrInfo[]>; host: string }>();
  #nextId = 1;
  #watching = false;
  readonly #drainBound = (): void => this.#drain();

  constructor(loop: DnsLoop) {
    this.#loop = loop;
  }

  /** Resolves `host` (a name or numeric address) and `port`; numeric hosts need no thread. */
  lookup(host: string, port: number, options: GetAddrInfoOptions = {}): Future<AddrInfo[]> {
    const future = this.#loop.createFuture<AddrInfo[]>();
    const direct = numericAddrInfo(host, port, options.family ?? AF_UNSPEC, options.type ?? 0);
    if (direct !== null) {
      future.setResult(direct);
      return future;
    }
    this.#resolver ??= new Resolver();
    const id = this.#nextId++;
    this.#resolver.submit(id, host, String(port), options.family ?? 0, options.type ?? 0, options.flags ?? 0);
    this.#pending.set(id, { future, host });
    if (!this.#watching) {
      this.#loop.addReader(this.#resolver.fileno(), this.#drainBound);
      this.#watching = true;
    }
    future.addDoneCallback(() => {
      if (this.#pending.delete(id)) this.#unwatchWhenIdle();
    });
    return future;
  }

  /** Drops pending lookups and the resolver's threads. */
  close(): void {
    this.#resolver?.close();
    this.#resolver = null;
    this.#pending.clear();
    this.#watching = false;
  }

  #drain(): void {
    if (this.#resolver === null) return;
    for (const done of this.#resolver.take()) {
      const pending = this.#pending.get(done.id);
      if (pending === undefined || pending.future.done()) continue;
      this.#pending.delete(done.id);
      if (done.error !== 0)
        pending.future.setException(new GetAddrInfoError(done.error, pending.host, done.message, done.errno));
      else pending.future.setResult(done.results);
    }
    this.#unwatchWhenIdle();
  }

  // No reader while nothing is pending: an idle loop watches no resolver fd.
  #unwatchWhenIdle(): void {
    if (this.#pending.size > 0 || !this.#watching || this.#resolver === null) return;
    this.#loop.removeReader(this.#resolver.fileno());
    this.#watching = false;
  }
}
