/**
 * Kernel-object factories for tests: each registers its cleanup when it is
 * made, so a failing assertion never leaks an fd into the next test.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { onTestFinished } from 'vitest';

import { close, eventfd, pipe, type Socket, socketpair, write } from '../../src/sys/index.js';

/** Number of fds this process has open. */
export function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/**
 * Each open fd and what it is, as /proc/self/fd's links say ("socket:[1234]",
 * "anon_inode:[eventfd]", a path): two files at one number tell apart.
 */
export function openFdTable(): Map<number, string> {
  const table = new Map<number, string>();
  for (const name of readdirSync('/proc/self/fd')) {
    try {
      table.set(Number(name), readlinkSync(`/proc/self/fd/${name}`));
    } catch {
      // Closed between the listing and the look (the listing's own fd, or another thread's).
    }
  }
  return table;
}

/**
 * The fds open now that were not open, as the same file, in `before`: what a
 * test leaked. An fd the runtime closed meanwhile is no leak (Node 24's
 * libuv closes some of its own on other threads), and a leaked fd that took
 * the number of one it closed is still told apart by what it is.
 */
export function newFds(before: Map<number, string>): string[] {
  const added: string[] = [];
  for (const [fd, what] of openFdTable()) {
    if (before.get(fd) !== what) added.push(`${fd} -> ${what}`);
  }
  return added;
}

/** The fd's open flags from /proc/self/fdinfo (octal in the kernel's text). */
export function fdFlags(fd: number): number {
  const info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
  const match = /^flags:\s+([0-7]+)$/m.exec(info);
  if (match?.[1] === undefined) throw new Error(`no flags for fd ${fd}`);
  return Number.parseInt(match[1], 8);
}

/** O_CLOEXEC as /proc/self/fdinfo shows it (02000000 octal). */
export const FDINFO_CLOEXEC = 0o2000000;

/** True when fd is open. */
export function isOpen(fd: number): boolean {
  try {
    readFileSync(`/proc/self/fdinfo/${fd}`);
    return true;
  } catch {
    return false;
  }
}

function closeQuietly(fd: number): void {
  try {
    close(fd);
  } catch {
    // Already closed by the test itself.
  }
}

/** An fd closed when the test ends (unless the test closed it). */
export function track(fd: number): number {
  onTestFinished(() => closeQuietly(fd));
  return fd;
}

/** Anything with close(), closed when the test ends. */
export function trackClosable<T extends { close(): void }>(obj: T): T {
  onTestFinished(() => obj.close());
  return obj;
}

export function testEventfd(initval = 0, flags = 0): number {
  return track(eventfd(initval, flags));
}

export function testPipe(flags = 0): [number, number] {
  const [r, w] = pipe(flags);
  track(r);
  track(w);
  return [r, w];
}

export function testSocketpair(...args: Parameters<typeof socketpair>): [Socket, Socket] {
  const [a, b] = socketpair(...args);
  trackClosable(a);
  trackClosable(b);
  return [a, b];
}

/** Makes an eventfd readable (adds 1 to its counter). */
export function signalEventfd(fd: number): void {
  const one = Buffer.alloc(8);
  one.writeBigUInt64LE(1n);
  if (write(fd, one) !== 8) throw new Error('short eventfd write');
}
