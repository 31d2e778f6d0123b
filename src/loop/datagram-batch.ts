/**
 * Datagrams received in batches (recvmmsg, native/mmsg.cc) for the datagram
 * transport: one slab and one table of records per thread, and the senders'
 * addresses read back from the records.
 *
 * Only the inet families are batched: a UDP datagram's payload is at most
 * 65,527 bytes, so a 64 KiB slot holds any. (A Unix datagram can be as
 * large as the sender's SO_SNDBUF; those are received one at a time into a
 * larger buffer.)
 *
 * @module
 */
import { AF_INET, type SocketAddress } from '../sys/index.js';
import { native } from '../sys/native.js';

/** Datagrams received per readable event at most: the other fds get their turn. */
export const READS_PER_WAKE = 32;

/** Bytes per datagram's slot: more than any UDP payload. */
export const SLOT_BYTES = 64 * 1024;

// A record of the meta table (native/mmsg.cc): int32s, and bytes.
const META_INTS = 24;
const META_BYTES = META_INTS * 4;
const TEXT_AT = 32;

/** The batch's buffers: shared by every transport of the thread (a datagram is copied out before protocol code runs). */
interface Batch {
  readonly slab: Buffer;
  readonly meta: Int32Array;
  readonly metaBytes: Buffer;
}
let batch: Batch | null = null;

// IPv4 hosts' text by their address (as the record holds it): the same few
// peers send again and again, and their text need not be made each time.
const MAX_HOSTS = 4096;
const hosts = new Map<number, string>();

/**
 * Receives up to {@link READS_PER_WAKE} datagrams from `fd` without
 * blocking. The count received, or false when none was waiting; the
 * datagrams are read with {@link datagramAt} and {@link senderAt} until the
 * next call.
 *
 * @throws {OSError} what recvmmsg(2) reported (ECONNREFUSED...)
 */
export function receiveBatch(fd: number): number | false {
  if (batch === null) {
    const meta = new Int32Array(READS_PER_WAKE * META_INTS);
    batch = {
      slab: Buffer.allocUnsafeSlow(READS_PER_WAKE * SLOT_BYTES),
      meta,
      metaBytes: Buffer.from(meta.buffer, meta.byteOffset, meta.byteLength),
    };
  }
  return native.tryRecvmmsg(fd, batch.slab, SLOT_BYTES, READS_PER_WAKE, batch.meta);
}

/** The `i`th datagram of the last batch, copied into a Buffer of its own. */
export function datagramAt(i: number): Buffer {
  const { slab, meta } = batch as Batch;
  const n = meta[i * META_INTS] as number;
  const data = Buffer.allocUnsafe(n);
  slab.copy(data, 0, i * SLOT_BYTES, i * SLOT_BYTES + n);
  return data;
}

/** The sender of the `i`th datagram of the last batch: [host, port] or [host, port, flowinfo, scopeId]; null if unnamed. */
export function senderAt(i: number): SocketAddress | null {
  const { meta, metaBytes } = batch as Batch;
  const at = i * META_INTS;
  const family = meta[at + 1] as number;
  const textLength = meta[at + 6] as number;
  if (textLength === 0) return null;
  const port = meta[at + 2] as number;
  if (family === AF_INET) {
    const key = meta[at + 5] as number;
    let host = hosts.get(key);
    if (host === undefined) {
      if (hosts.size >= MAX_HOSTS) hosts.clear();
      host = metaBytes.toString('latin1', i * META_BYTES + TEXT_AT, i * META_BYTES + TEXT_AT + textLength);
      hosts.set(key, host);
    }
    return [host, port];
  }
  const host = metaBytes.toString('latin1', i * META_BYTES + TEXT_AT, i * META_BYTES + TEXT_AT + textLength);
  return [host, port, (meta[at + 3] as number) >>> 0, (meta[at + 4] as number) >>> 0];
}
