/**
 * Operations on plain fd numbers, like Python's `os` module. Every fd made
 * here is CLOEXEC. Reads and writes are retried on EINTR.
 *
 * @module
 */
import { native } from './native.js';

/**
 * Creates an eventfd: an 8-byte counter that is readable while non-zero.
 *
 * @param initval - the initial counter value
 * @param flags - EFD_NONBLOCK | EFD_SEMAPHORE
 * @returns the fd
 * @throws {RangeError} for other flags
 */
export function eventfd(initval = 0, flags = 0): number {
  return native.eventfd(initval, flags);
}

/**
 * Creates a pipe.
 *
 * @param flags - O_NONBLOCK | O_DIRECT, applied to both ends
 * @returns `[readFd, writeFd]`
 */
export function pipe(flags = 0): [number, number] {
  return native.pipe(flags);
}

/**
 * Reads into `buf` from `fd`.
 *
 * @param offset - byte offset into buf (default 0)
 * @param length - bytes at most (default: to the end of buf)
 * @returns bytes read; 0 at end of file
 * @throws {RangeError} when offset/length fall outside buf
 * @throws {BlockingIOError} EAGAIN on a non-blocking fd with nothing to read
 * @throws {OSError} EBADF when fd is not open
 */
export function read(fd: number, buf: ArrayBufferView, offset?: number, length?: number): number {
  // Arguments left out cost the addon nothing; passed as undefined they cost a check each.
  return offset === undefined && length === undefined ? native.read(fd, buf) : native.read(fd, buf, offset, length);
}

/**
 * Writes from `buf` to `fd`.
 *
 * @returns bytes written (may be fewer than asked)
 * @throws {BlockingIOError} EAGAIN on a non-blocking fd that is full
 */
export function write(fd: number, buf: ArrayBufferView, offset?: number, length?: number): number {
  // Arguments left out cost the addon nothing; passed as undefined they cost a check each.
  return offset === undefined && length === undefined ? native.write(fd, buf) : native.write(fd, buf, offset, length);
}

/** As {@link read}, but returns `null` instead of throwing EAGAIN. */
export function tryRead(fd: number, buf: ArrayBufferView, offset?: number, length?: number): number | null {
  return offset === undefined && length === undefined
    ? native.tryRead(fd, buf)
    : native.tryRead(fd, buf, offset, length);
}

/** As {@link write}, but returns `null` instead of throwing EAGAIN. */
export function tryWrite(fd: number, buf: ArrayBufferView, offset?: number, length?: number): number | null {
  return offset === undefined && length === undefined
    ? native.tryWrite(fd, buf)
    : native.tryWrite(fd, buf, offset, length);
}

/**
 * Closes an fd. Close only fds you own: closing one that Node or another
 * library uses breaks them, exactly as `os.close` would in Python.
 *
 * @throws {OSError} EBADF when fd is not open
 */
export function close(fd: number): void {
  native.close(fd);
}

/**
 * How many syscalls the addon has made on this thread so far (each Node
 * environment -- the main thread, a worker -- has its own count). Every native
 * entry point that calls the kernel counts each call it makes, retries on
 * EINTR included: socket operations, select/poll/epoll_wait/epoll_ctl,
 * fcntl, eventfd/pipe/read/write/close, sendmsg/recvmsg, sigaction and the
 * io_uring syscalls (io_uring_enter once per enter). Not counted: the
 * addon's helper threads (name resolution, the select/poll watcher of
 * cooperative mode), the signal handler's wake-up write, and whatever Node
 * and libuv do themselves. Take the difference of two readings.
 *
 * @returns a non-negative integer (exact below 2^53)
 */
export function syscallCount(): number {
  return native.syscallCount();
}
