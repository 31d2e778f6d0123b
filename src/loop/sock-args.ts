/**
 * The socket operations' arguments, checked the same way by both kinds of
 * loop: readiness-based (sock-ops.ts) and completion-based (proactor.ts).
 *
 * @module
 */
import { checkInt, invalidArgType, invalidArgValue } from '../sys/args.js';
import type { SocketAddress } from '../sys/index.js';

/** sockSendAll's string, as UTF-8 bytes (offset and length go with bytes only). */
export function utf8(data: string, offset: number | undefined, length: number | undefined): Buffer {
  if (offset !== undefined || length !== undefined) {
    throw invalidArgValue('sockSendAll takes offset and length with bytes only, not with a string');
  }
  return Buffer.from(data, 'utf8');
}

/** The largest send whose unsent rest sockSendAll copies when it has to wait (64 KiB). */
export const SMALL_SEND = 64 * 1024;

/** The largest `nbytes` sockRecv takes (2^31 - 1; Linux moves at most 0x7ffff000 bytes per call anyway). */
export const MAX_IO = 0x7fffffff;

// A buffer argument's size in bytes, checked before anything starts. For a
// Uint8Array (a Buffer is one) that is its length, which V8 11 inlines;
// reading byteLength is a call to the getter each time (two per echoed
// message, about 4 % of the loop's instructions per round trip).
export function byteSize(buffer: ArrayBufferView): number {
  return buffer instanceof Uint8Array ? buffer.length : viewSize(buffer);
}

export function viewSize(buffer: ArrayBufferView): number {
  if (!ArrayBuffer.isView(buffer))
    throw invalidArgType('buffer', 'an instance of Buffer, TypedArray or DataView', buffer);
  return buffer.byteLength;
}

// An offset or length is usually a valid small integer: the comparisons
// here decide that without a call (checkInt does not fit in a coroutine's
// inlining budget); anything else goes to checkInt, which throws.
export function rangeStart(size: number, offset: number | undefined): number {
  if (offset === undefined) return 0;
  return (offset | 0) === offset && offset >= 0 && offset <= size ? offset : checkInt(offset, 'offset', 0, size);
}

export function rangeLength(size: number, start: number, length: number | undefined): number {
  if (length === undefined) return size - start;
  return (length | 0) === length && length >= 0 && length <= size - start
    ? length
    : checkInt(length, 'length', 0, size - start);
}

/** "127.0.0.1:80", "[::1]:80" or the path: the detail of a connect error. */
export function describeAddress(address: SocketAddress): string {
  if (typeof address === 'string') return address;
  const [host, port] = address;
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
