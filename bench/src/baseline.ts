/**
 * The two plain C addons of the calls benchmark (`npm run bench -- calls`), compiled on the fly
 * (peers.ts) and loaded with `process.dlopen`: the baseline
 * (bench/floor/baseline-addon.c), one N-API function per syscall, and the
 * callgrind marks (bench/floor/callgrind-marks.c) its instruction counts
 * are taken between.
 */
import { buildAddon } from './peers.js';

/**
 * bench/floor/baseline-addon.c: each function takes fd numbers and returns a
 * count, or -errno (never throws; a bad argument is -EINVAL). Byte buffers
 * are Uint8Arrays (Buffers); fd and event arrays are Int32Arrays. Nothing
 * blocks: sockets get MSG_DONTWAIT, and waits take a timeout in ms (0 polls).
 */
export interface BaselineAddon {
  /** send(2) of the first `n` bytes of `buf` (MSG_DONTWAIT | MSG_NOSIGNAL): bytes sent. */
  send(fd: number, buf: Uint8Array, n: number): number;
  /** recv(2) into the whole of `buf` (MSG_DONTWAIT): bytes received, 0 at EOF. */
  recv(fd: number, buf: Uint8Array): number;
  /** accept4(2), non-blocking and close-on-exec, without the address: the new fd. */
  accept(fd: number): number;
  /** read(2) into the whole of `buf`: bytes read. */
  read(fd: number, buf: Uint8Array): number;
  /** write(2) of the first `n` bytes of `buf`: bytes written. */
  write(fd: number, buf: Uint8Array, n: number): number;
  /** close(2): 0. */
  close(fd: number): number;
  /** epoll_create1(EPOLL_CLOEXEC): the epoll fd. */
  epollCreate(): number;
  /** epoll_ctl(2) with the fd as the event's data: 0. */
  epollCtl(epfd: number, op: number, fd: number, events: number): number;
  /** epoll_wait(2): writes (fd, events) pairs into `out` (at most 64); how many. */
  epollWait(epfd: number, out: Int32Array, timeoutMs: number): number;
  /**
   * poll(2) over `pfds`, (fd, events) pairs laid out as struct pollfd: the
   * kernel writes each revents into the high 16 bits of its events entry
   * (`pfds[2 * i + 1] >>> 16`). Returns the ready count.
   */
  poll(pfds: Int32Array, timeoutMs: number): number;
  /** select(2) for reading over `fds`: writes the ready fds into `out`; how many. */
  select(fds: Int32Array, out: Int32Array, timeoutMs: number): number;
}

/** bench/floor/callgrind-marks.c: callgrind's client requests (no-ops outside valgrind). */
export interface CallgrindMarks {
  /** Turns callgrind's collection on when it is off, off when it is on. */
  toggle(): void;
  /** Writes the counts collected since the last dump, with `label` in its `desc: Trigger` line, and zeroes them. */
  dump(label: string): void;
  /** True when the process runs under valgrind. */
  onValgrind(): boolean;
}

const BASELINE_FUNCTIONS = [
  'send',
  'recv',
  'accept',
  'read',
  'write',
  'close',
  'epollCreate',
  'epollCtl',
  'epollWait',
  'poll',
  'select',
] as const satisfies readonly (keyof BaselineAddon)[];

const MARKS_FUNCTIONS = ['toggle', 'dump', 'onValgrind'] as const satisfies readonly (keyof CallgrindMarks)[];

/**
 * Loads a compiled addon and checks that it has every function `names`
 * lists: `T` describes them, and this is what makes that description true.
 */
export function loadAddon<T>(path: string, names: readonly (keyof T & string)[]): T {
  const module: { exports: Record<string, unknown> } = { exports: {} };
  process.dlopen(module, path);
  for (const name of names) {
    if (typeof module.exports[name] !== 'function') throw new Error(`${path} has no function ${name}`);
  }
  return module.exports as unknown as T;
}

/** Loads the baseline addon at `path` (see {@link buildBaseline}). */
export function loadBaseline(path: string): BaselineAddon {
  return loadAddon<BaselineAddon>(path, BASELINE_FUNCTIONS);
}

/** Loads the callgrind marks at `path` (see {@link buildMarks}). */
export function loadMarks(path: string): CallgrindMarks {
  return loadAddon<CallgrindMarks>(path, MARKS_FUNCTIONS);
}

/** Compiles the baseline addon (once per process): its path, or why there is none. */
export function buildBaseline(): { path: string } | { error: string } {
  return buildAddon('baseline-addon');
}

/**
 * Compiles the callgrind marks (once per process): its path, or why there is
 * none (valgrind's callgrind.h missing: bench/setup installs valgrind).
 */
export function buildMarks(): { path: string } | { error: string } {
  return buildAddon('callgrind-marks');
}
