/**
 * sendmsg(2) and recvmsg(2) with ancillary data, like Python's
 * `socket.sendmsg`, `recvmsg`, `recvmsg_into`, `send_fds` and `recv_fds`.
 * Each takes the socket first: a {@link Socket}, an fd number, or anything
 * with `fileno()`; the Socket methods of the same names delegate here.
 *
 * Passing fds (SCM_RIGHTS) is what this is mostly for: the receiver gets its
 * own fds for the same open files, pipes or sockets. Every received fd is
 * CLOEXEC (MSG_CMSG_CLOEXEC) and belongs to the caller, who must close it.
 * Sends use MSG_NOSIGNAL. On a SOCK_STREAM socket send at least one byte
 * with the fds: Linux carries no control data on an empty stream write.
 *
 * The `try*` forms never block (MSG_DONTWAIT) and return `null` where the
 * others throw {@link BlockingIOError}.
 *
 * @example
 * ```ts
 * import { pipe, read, close, recvFds, sendFds, socketpair } from 'iomux/sys';
 * const [a, b] = socketpair();
 * const [r, w] = pipe();
 * sendFds(a, [Buffer.from('x')], [w]); // b's process now has its own copy of w
 * close(w);
 * const [data, [w2]] = recvFds(b, 1, 1);
 * ```
 *
 * @module
 */

import type { SendData, SocketAddress } from './addresses.js';
import { checkInt, type FileLike, invalidArgType, invalidArgValue, toFd } from './args.js';
import type { NativeCmsg, NativeRecvmsg } from './binding.js';
import { SCM_MAX_FD, SCM_RIGHTS, SOL_SOCKET } from './constants.js';
import { OSError } from './errors.js';
import { native } from './native.js';

const EBADF = native.constants['EBADF'] as number;
const MAX_IO = 0x7fffffff;
const INT_SIZE = 4;

/**
 * One control message, Python's `(cmsg_level, cmsg_type, cmsg_data)`: for
 * SCM_RIGHTS at SOL_SOCKET, `data` holds the fds as native-endian int32s
 * (an Int32Array of fds is one).
 */
export interface Ancillary<D extends ArrayBufferView = ArrayBufferView> {
  /** The protocol level, e.g. SOL_SOCKET. */
  readonly level: number;
  /** The message type at that level, e.g. SCM_RIGHTS or SCM_CREDENTIALS. */
  readonly type: number;
  /** The payload bytes. */
  readonly data: D;
}

/** {@link recvmsg}'s result: `[data, ancdata, msgFlags, address]`, as Python's. */
export type RecvmsgResult = [
  data: Buffer,
  ancdata: Ancillary<Buffer>[],
  msgFlags: number,
  address: SocketAddress | null,
];

/** {@link recvmsgInto}'s result: `[nbytes, ancdata, msgFlags, address]`, as Python's. */
export type RecvmsgIntoResult = [
  nbytes: number,
  ancdata: Ancillary<Buffer>[],
  msgFlags: number,
  address: SocketAddress | null,
];

/** {@link recvFds}'s result: `[data, fds, msgFlags, address]`, as Python's `recv_fds`. */
export type RecvFdsResult = [data: Buffer, fds: number[], msgFlags: number, address: SocketAddress | null];

/** The fds to pass: fd numbers or objects with `fileno()` (a Socket), or an Int32Array. */
export type FdList = Int32Array | readonly FileLike[];

interface SendPlan {
  readonly buffers: ArrayBufferView[];
  readonly fds: Int32Array | number[] | undefined;
  readonly others: NativeCmsg[] | undefined;
}

// The socket's fd, read after every other argument (whose getters may have
// run by then). A closed Socket names the call that found it closed.
function fdOf(sock: FileLike, syscall: string): number {
  if (typeof sock === 'object' && sock !== null && (sock as { closed?: unknown }).closed === true) {
    throw new OSError(EBADF, syscall, '(the socket is closed)');
  }
  return toFd(sock, 'sock');
}

// The socket's family when it says (a Socket does), for parsing `address`;
// undefined lets the addon ask the kernel.
function familyOf(sock: FileLike): number | undefined {
  if (typeof sock !== 'object' || sock === null) return undefined;
  const family = (sock as { family?: unknown }).family;
  return typeof family === 'number' ? family : undefined;
}

// Copies the list into a plain array (running any getters now, not in the
// addon) with strings encoded as UTF-8. Anything else is left to the addon,
// which words the errors.
function toBuffers(buffers: readonly (SendData | ArrayBufferView)[]): ArrayBufferView[] {
  if (!Array.isArray(buffers)) return buffers as ArrayBufferView[];
  return Array.from(buffers, (b: unknown) => (typeof b === 'string' ? Buffer.from(b, 'utf8') : (b as ArrayBufferView)));
}

function toFdList(fds: FdList): Int32Array | number[] {
  if (!Array.isArray(fds)) return fds as Int32Array;
  // Objects become their fileno(); the addon checks the numbers.
  return Array.from(fds, (f: unknown, i) =>
    typeof f === 'object' && f !== null ? toFd(f as FileLike, `fds[${i}]`) : (f as number),
  );
}

// The fds in an SCM_RIGHTS message's data (native-endian int32s).
function fdsOfData(data: unknown, i: number): Int32Array {
  if (!ArrayBuffer.isView(data)) {
    throw invalidArgType(`ancdata[${i}].data`, 'an instance of Buffer, TypedArray or DataView', data);
  }
  if (data.byteLength % INT_SIZE !== 0) {
    throw invalidArgValue(
      `The "ancdata[${i}].data" argument of an SCM_RIGHTS message must hold whole int32 fds. ` +
        `Received ${data.byteLength} bytes`,
    );
  }
  // A copy: the view need not be 4-byte aligned.
  return new Int32Array(new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice().buffer);
}

// Splits Python-style ancdata into the SCM_RIGHTS fds (checked by the addon
// like sendFds' fds) and the other messages (copied as plain objects, so
// their getters run once, here).
function planSend(buffers: readonly SendData[], ancdata: readonly Ancillary[]): SendPlan {
  const views = toBuffers(buffers);
  if (!Array.isArray(ancdata)) return { buffers: views, fds: undefined, others: ancdata as NativeCmsg[] };
  let fds: number[] | undefined;
  const others: NativeCmsg[] = [];
  ancdata.forEach((item: unknown, i) => {
    if (typeof item !== 'object' || item === null) {
      others.push(item as NativeCmsg);
      return;
    }
    const { level, type, data } = item as Ancillary;
    if (level === SOL_SOCKET && type === SCM_RIGHTS) {
      fds ??= [];
      for (const fd of fdsOfData(data, i)) fds.push(fd);
    } else {
      others.push({ level, type, data });
    }
  });
  return { buffers: views, fds, others };
}

function send(
  sock: FileLike,
  plan: SendPlan,
  flags: number,
  address: SocketAddress | null | undefined,
  nonBlocking: boolean,
): number | null {
  const fn = nonBlocking ? native.trySendmsg : native.sendmsg;
  const family = address === null || address === undefined ? undefined : familyOf(sock);
  return fn(fdOf(sock, 'sendmsg'), plan.buffers, plan.fds, flags, address ?? undefined, family, plan.others);
}

// Closes fds the caller will never see (the result could not be built).
function closeAll(fds: readonly number[]): void {
  for (const fd of fds) {
    try {
      native.close(fd);
    } catch {
      // Nothing more can be done for an fd that will not close.
    }
  }
}

// The addon's result in Python's shape: the fds become an SCM_RIGHTS
// message, after the others (where Linux puts it too).
function toAncillary(result: NativeRecvmsg): Ancillary<Buffer>[] {
  const [, fds, , , others] = result;
  if (fds.length === 0) return others;
  return settle(result, () => [
    ...others,
    { level: SOL_SOCKET, type: SCM_RIGHTS, data: Buffer.from(Int32Array.from(fds).buffer) },
  ]);
}

function receiveInto(
  sock: FileLike,
  buffers: readonly ArrayBufferView[],
  ancbufsize: number,
  flags: number,
  nonBlocking: boolean,
): NativeRecvmsg | null {
  // A plain copy (getters run now); the addon checks the elements.
  const views = Array.isArray(buffers) ? Array.from(buffers) : buffers;
  const fn = nonBlocking ? native.tryRecvmsg : native.recvmsg;
  return fn(fdOf(sock, 'recvmsg'), views, ancbufsize, flags);
}

// What recvmsg returns in `buf`: with MSG_TRUNC in flags the count is the
// datagram's full length, which may exceed the buffer.
function received(buf: Buffer, n: number): Buffer {
  const count = Math.min(n, buf.length);
  // Copy a short read out of a large allocation rather than pin all of it.
  return count < buf.length >>> 1 ? Buffer.from(buf.subarray(0, count)) : buf.subarray(0, count);
}

function receive(
  sock: FileLike,
  bufsize: number,
  ancbufsize: number,
  flags: number,
  nonBlocking: boolean,
): [Buffer, NativeRecvmsg] | null {
  checkInt(bufsize, 'bufsize', 0, MAX_IO);
  const buf = Buffer.allocUnsafe(bufsize);
  const result = receiveInto(sock, [buf], ancbufsize, flags, nonBlocking);
  return result === null ? null : [settle(result, () => received(buf, result[0])), result];
}

// Runs `build` on a result whose fds the caller has not seen yet: if it
// throws (no memory), the fds are closed rather than lost.
function settle<T>(result: NativeRecvmsg, build: () => T): T {
  try {
    return build();
  } catch (error) {
    closeAll(result[1]);
    throw error;
  }
}

function fdsCmsgLen(maxFds: number): number {
  checkInt(maxFds, 'maxFds', 0, SCM_MAX_FD);
  // CMSG_LEN, not CMSG_SPACE: the padding of CMSG_SPACE(4 * maxFds) can hold
  // one fd more than asked, and the kernel fills whatever room there is.
  return native.cmsgLen(maxFds * INT_SIZE);
}

/**
 * The CMSG_LEN macro: a control message's length for `length` bytes of data.
 *
 * @param length - data bytes, 0 to 1 MiB
 * @returns bytes
 * @throws {RangeError} for a length outside that range
 */
export function CMSG_LEN(length: number): number {
  return native.cmsgLen(length);
}

/**
 * The CMSG_SPACE macro: the buffer room a control message with `length`
 * bytes of data takes, padding included. Sum it over the messages expected
 * to size `ancbufsize`: `CMSG_SPACE(4 * maxFds)` for fds.
 *
 * @param length - data bytes, 0 to 1 MiB
 * @returns bytes
 * @throws {RangeError} for a length outside that range
 */
export function CMSG_SPACE(length: number): number {
  return native.cmsgSpace(length);
}

/**
 * Sends `buffers` as one message, with control messages, like Python's
 * `sock.sendmsg(buffers, ancdata, flags, address)`.
 *
 * @param sock - a Socket, an fd number or an object with `fileno()`
 * @param buffers - up to IOV_MAX (1024) Buffers, TypedArrays, DataViews or strings (UTF-8), sent in order
 * @param ancdata - control messages; SCM_RIGHTS data is checked as fds (at most SCM_MAX_FD in all)
 * @param flags - MSG_* flags; MSG_NOSIGNAL is always added
 * @param address - the destination, for an unconnected datagram socket
 * @returns bytes sent (may be fewer than given on a stream socket)
 * @throws {TypeError} / {RangeError} for bad arguments, before any syscall
 * @throws {BlockingIOError} EAGAIN on a non-blocking socket that is full
 * @throws {OSError} EBADF for a closed socket or a passed fd that is not open, EMSGSIZE for a datagram
 *   too large, EINVAL for a control message the kernel refuses, EPIPE when the peer is gone
 */
export function sendmsg(
  sock: FileLike,
  buffers: readonly SendData[],
  ancdata: readonly Ancillary[] = [],
  flags = 0,
  address?: SocketAddress | null,
): number {
  return send(sock, planSend(buffers, ancdata), flags, address, false) as number;
}

/**
 * As {@link sendmsg}, but never blocks (MSG_DONTWAIT).
 *
 * @returns bytes sent, or `null` when the socket is full
 * @throws what {@link sendmsg} throws, except BlockingIOError
 */
export function trySendmsg(
  sock: FileLike,
  buffers: readonly SendData[],
  ancdata: readonly Ancillary[] = [],
  flags = 0,
  address?: SocketAddress | null,
): number | null {
  return send(sock, planSend(buffers, ancdata), flags, address, true);
}

/**
 * Sends `buffers` with `fds` attached (one SCM_RIGHTS message), like
 * Python's `socket.send_fds`. The receiver gets its own fds; the sender's
 * stay open and are still the sender's to close.
 *
 * @param fds - up to SCM_MAX_FD (253) fds: numbers, objects with `fileno()`, or an Int32Array
 * @returns bytes sent
 * @throws {RangeError} for a negative fd or more than SCM_MAX_FD
 * @throws {OSError} EBADF when one of the fds is not open
 * @throws what {@link sendmsg} throws
 */
export function sendFds(
  sock: FileLike,
  buffers: readonly SendData[],
  fds: FdList,
  flags = 0,
  address?: SocketAddress | null,
): number {
  const plan = { buffers: toBuffers(buffers), fds: toFdList(fds), others: undefined };
  return send(sock, plan, flags, address, false) as number;
}

/**
 * As {@link sendFds}, but never blocks (MSG_DONTWAIT).
 *
 * @returns bytes sent, or `null` when the socket is full
 */
export function trySendFds(
  sock: FileLike,
  buffers: readonly SendData[],
  fds: FdList,
  flags = 0,
  address?: SocketAddress | null,
): number | null {
  return send(sock, { buffers: toBuffers(buffers), fds: toFdList(fds), others: undefined }, flags, address, true);
}

/**
 * Receives one message of up to `bufsize` bytes with its control messages,
 * like Python's `sock.recvmsg(bufsize, ancbufsize, flags)`. Received fds
 * come as an SCM_RIGHTS entry whose data holds them as int32s; they are
 * CLOEXEC and the caller's to close ({@link recvFds} gives them as numbers).
 *
 * @param bufsize - bytes at most
 * @param ancbufsize - bytes of control buffer, 0 to 1 MiB: size it with {@link CMSG_SPACE}
 * @param flags - MSG_* flags (MSG_PEEK, MSG_WAITALL...); MSG_CMSG_CLOEXEC is always added
 * @returns `[data, ancdata, msgFlags, address]`: msgFlags has MSG_TRUNC when the datagram did not fit
 *   and MSG_CTRUNC when control data did not (fds that did not fit were closed by the kernel);
 *   address is the sender's, or null
 * @throws {TypeError} / {RangeError} for bad arguments
 * @throws {BlockingIOError} EAGAIN on a non-blocking socket with nothing to read
 * @throws {OSError} EBADF for a closed socket, ENOTSOCK for an fd that is no socket
 */
export function recvmsg(sock: FileLike, bufsize: number, ancbufsize = 0, flags = 0): RecvmsgResult {
  const [data, result] = receive(sock, bufsize, ancbufsize, flags, false) as [Buffer, NativeRecvmsg];
  return [data, toAncillary(result), result[2], result[3] as SocketAddress | null];
}

/**
 * As {@link recvmsg}, but never blocks (MSG_DONTWAIT).
 *
 * @returns the result, or `null` when there is nothing to read
 */
export function tryRecvmsg(sock: FileLike, bufsize: number, ancbufsize = 0, flags = 0): RecvmsgResult | null {
  const r = receive(sock, bufsize, ancbufsize, flags, true);
  if (r === null) return null;
  const [data, result] = r;
  return [data, toAncillary(result), result[2], result[3] as SocketAddress | null];
}

/**
 * Receives one message into `buffers` (filled in order), like Python's
 * `sock.recvmsg_into(buffers, ancbufsize, flags)`.
 *
 * @param buffers - up to IOV_MAX (1024) Buffers, TypedArrays or DataViews
 * @returns `[nbytes, ancdata, msgFlags, address]`, as {@link recvmsg}
 * @throws what {@link recvmsg} throws
 */
export function recvmsgInto(
  sock: FileLike,
  buffers: readonly ArrayBufferView[],
  ancbufsize = 0,
  flags = 0,
): RecvmsgIntoResult {
  const result = receiveInto(sock, buffers, ancbufsize, flags, false) as NativeRecvmsg;
  return [result[0], toAncillary(result), result[2], result[3] as SocketAddress | null];
}

/**
 * As {@link recvmsgInto}, but never blocks (MSG_DONTWAIT).
 *
 * @returns the result, or `null` when there is nothing to read
 */
export function tryRecvmsgInto(
  sock: FileLike,
  buffers: readonly ArrayBufferView[],
  ancbufsize = 0,
  flags = 0,
): RecvmsgIntoResult | null {
  const result = receiveInto(sock, buffers, ancbufsize, flags, true);
  return result === null ? null : [result[0], toAncillary(result), result[2], result[3] as SocketAddress | null];
}

/**
 * Receives up to `bufsize` bytes and up to `maxFds` fds, like Python's
 * `socket.recv_fds`. The fds are CLOEXEC and the caller's to close. When
 * more were sent, msgFlags has MSG_CTRUNC and the kernel closed the rest.
 *
 * @param maxFds - 0 to SCM_MAX_FD (253)
 * @returns `[data, fds, msgFlags, address]`
 * @throws {RangeError} for maxFds outside that range
 * @throws what {@link recvmsg} throws
 */
export function recvFds(sock: FileLike, bufsize: number, maxFds: number, flags = 0): RecvFdsResult {
  const [data, result] = receive(sock, bufsize, fdsCmsgLen(maxFds), flags, false) as [Buffer, NativeRecvmsg];
  return [data, result[1], result[2], result[3] as SocketAddress | null];
}

/**
 * As {@link recvFds}, but never blocks (MSG_DONTWAIT).
 *
 * @returns the result, or `null` when there is nothing to read
 */
export function tryRecvFds(sock: FileLike, bufsize: number, maxFds: number, flags = 0): RecvFdsResult | null {
  const r = receive(sock, bufsize, fdsCmsgLen(maxFds), flags, true);
  if (r === null) return null;
  const [data, result] = r;
  return [data, result[1], result[2], result[3] as SocketAddress | null];
}
