/**
 * The addon's batched datagram calls (native/mmsg.cc): tryRecvmmsg and
 * trySendmmsg over real UDP (127.0.0.1, ::1) and Unix datagram sockets.
 */
import { describe, expect, it } from 'vitest';

import { AF_INET, AF_INET6, AF_UNIX, OSError, SOCK_DGRAM, Socket, type SocketAddress } from '../../src/sys/index.js';
import { native } from '../../src/sys/native.js';
import { testSocketpair, trackClosable } from '../helpers/fds.js';
import { closedPort } from '../helpers/net.js';

const META_INTS = 24;
const SLOT = 2048;

function udpPair(family: number): [Socket, Socket] {
  const host = family === AF_INET ? '127.0.0.1' : '::1';
  const a = trackClosable(new Socket(family, SOCK_DGRAM));
  const b = trackClosable(new Socket(family, SOCK_DGRAM));
  a.bind([host, 0]);
  b.bind([host, 0]);
  return [a, b];
}

/** The host text of record `i`, as the addon wrote it. */
function textOf(meta: Int32Array, i: number): string {
  const bytes = Buffer.from(meta.buffer, meta.byteOffset, meta.byteLength);
  const at = i * META_INTS * 4 + 32;
  return bytes.toString('latin1', at, at + (meta[i * META_INTS + 6] as number));
}

describe.each([
  ['127.0.0.1', AF_INET],
  ['::1', AF_INET6],
])('tryRecvmmsg / trySendmmsg over UDP %s', (host, family) => {
  it('receives several datagrams in one call, each in its slot with its sender, and false when none waits', () => {
    const [a, b] = udpPair(family);
    const slab = Buffer.alloc(8 * SLOT);
    const meta = new Int32Array(8 * META_INTS);
    expect(native.tryRecvmmsg(b.fileno(), slab, SLOT, 8, meta)).toBe(false);
    for (const text of ['one', '', 'three!']) a.trySendto(text, b.getsockname());
    expect(native.tryRecvmmsg(b.fileno(), slab, SLOT, 8, meta)).toBe(3);
    const from = a.getsockname() as [string, number];
    for (const [i, text] of ['one', '', 'three!'].entries()) {
      expect(meta[i * META_INTS]).toBe(text.length);
      expect(slab.toString('utf8', i * SLOT, i * SLOT + text.length)).toBe(text);
      expect(meta[i * META_INTS + 1]).toBe(family);
      expect(meta[i * META_INTS + 2]).toBe(from[1]);
      expect(textOf(meta, i)).toBe(host);
      expect(meta[i * META_INTS + 7]).toBe(0);
    }
    if (family === AF_INET)
      expect(Buffer.from(Int32Array.of(meta[5] as number).buffer)).toEqual(Buffer.from([127, 0, 0, 1]));
    expect(native.tryRecvmmsg(b.fileno(), slab, SLOT, 8, meta)).toBe(false);
  });

  it('takes at most count datagrams; the rest wait for the next call', () => {
    const [a, b] = udpPair(family);
    for (let i = 0; i < 5; i++) a.trySendto(`d${i}`, b.getsockname());
    const slab = Buffer.alloc(2 * SLOT);
    const meta = new Int32Array(2 * META_INTS);
    const got: string[] = [];
    for (let round = 0; round < 3; round++) {
      const n = native.tryRecvmmsg(b.fileno(), slab, SLOT, 2, meta);
      expect(n).toBe(round < 2 ? 2 : 1);
      for (let i = 0; i < (n as number); i++) got.push(slab.toString('utf8', i * SLOT, i * SLOT + 2));
    }
    expect(got).toEqual(['d0', 'd1', 'd2', 'd3', 'd4']);
  });

  it('says when a datagram was longer than its slot', () => {
    const [a, b] = udpPair(family);
    a.trySendto(Buffer.alloc(100, 7), b.getsockname());
    const slab = Buffer.alloc(16);
    const meta = new Int32Array(META_INTS);
    expect(native.tryRecvmmsg(b.fileno(), slab, 16, 1, meta)).toBe(1);
    expect(meta[0]).toBe(16);
    expect(meta[7]).toBe(1);
  });

  it('sends a batch to several peers in one call, in order', () => {
    const [a, b] = udpPair(family);
    const [, c] = udpPair(family);
    const datagrams = [Buffer.from('to b 1'), Buffer.from('to c'), Buffer.from('to b 2')];
    const addresses = [b.getsockname(), c.getsockname(), b.getsockname()];
    expect(native.trySendmmsg(a.fileno(), family, datagrams, addresses, 0, 3)).toBe(3);
    expect(b.tryRecvfrom(64)?.[0].toString()).toBe('to b 1');
    expect(b.tryRecvfrom(64)?.[0].toString()).toBe('to b 2');
    expect(c.tryRecvfrom(64)).toEqual([Buffer.from('to c'), a.getsockname()]);
    // A window of the arrays: start and count.
    expect(native.trySendmmsg(a.fileno(), family, datagrams, addresses, 1, 1)).toBe(1);
    expect(c.tryRecvfrom(64)?.[0].toString()).toBe('to c');
    expect(b.tryRecvfrom(64)).toBeNull();
  });

  it('an error on the first datagram throws; an error later ends the batch there', () => {
    const [a, b] = udpPair(family);
    const to = b.getsockname();
    const big = Buffer.alloc(70_000);
    expect(() => native.trySendmmsg(a.fileno(), family, [big, Buffer.from('x')], [to, to], 0, 2)).toThrow(
      expect.objectContaining({ code: 'EMSGSIZE', syscall: 'sendmmsg' }),
    );
    expect(b.tryRecvfrom(64)).toBeNull();
    expect(native.trySendmmsg(a.fileno(), family, [Buffer.from('y'), big, Buffer.from('z')], [to, to, to], 0, 3)).toBe(
      1,
    );
    expect(b.tryRecvfrom(64)?.[0].toString()).toBe('y');
    expect(b.tryRecvfrom(64)).toBeNull();
  });
});

describe('tryRecvmmsg / trySendmmsg: connected sockets and errors', () => {
  it('a connected socket sends with null addresses', () => {
    const [a, b] = testSocketpair(AF_UNIX, SOCK_DGRAM);
    expect(native.trySendmmsg(a.fileno(), AF_UNIX, [Buffer.from('p'), Buffer.from('q')], [null, null], 0, 2)).toBe(2);
    const slab = Buffer.alloc(2 * SLOT);
    const meta = new Int32Array(2 * META_INTS);
    expect(native.tryRecvmmsg(b.fileno(), slab, SLOT, 2, meta)).toBe(2);
    expect([slab.toString('utf8', 0, 1), slab.toString('utf8', SLOT, SLOT + 1)]).toEqual(['p', 'q']);
    // A socketpair's peer has no name: no text.
    expect(meta[6]).toBe(0);
  });

  it('null when the socket takes none (a Unix peer that does not read)', () => {
    const [a] = testSocketpair(AF_UNIX, SOCK_DGRAM);
    const payload = Buffer.alloc(1024);
    let sent = 0;
    let last: number | null = 0;
    for (let i = 0; i < 10_000 && last !== null; i++) {
      last = native.trySendmmsg(a.fileno(), AF_UNIX, [payload], [null], 0, 1);
      if (last !== null) sent += last;
    }
    expect(last).toBeNull();
    expect(sent).toBeGreaterThan(0);
  });

  it('ECONNREFUSED from an ICMP port unreachable throws from recvmmsg', () => {
    const a = trackClosable(new Socket(AF_INET, SOCK_DGRAM));
    a.connect(['127.0.0.1', closedPort()]);
    expect(native.trySendmmsg(a.fileno(), AF_INET, [Buffer.from('x')], [null], 0, 1)).toBe(1);
    const meta = new Int32Array(META_INTS);
    let error: unknown;
    try {
      native.tryRecvmmsg(a.fileno(), Buffer.alloc(SLOT), SLOT, 1, meta);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(OSError);
    expect((error as OSError).code).toBe('ECONNREFUSED');
    expect((error as OSError).syscall).toBe('recvmmsg');
    expect(native.tryRecvmmsg(a.fileno(), Buffer.alloc(SLOT), SLOT, 1, meta)).toBe(false);
  });

  it('bad arguments throw TypeError/RangeError, and nothing is sent or received', () => {
    const [a, b] = udpPair(AF_INET);
    const to = b.getsockname();
    const fd = a.fileno();
    const one = [Buffer.from('x')];
    const bad: [() => unknown, ErrorConstructor | RangeErrorConstructor | TypeErrorConstructor][] = [
      [() => native.trySendmmsg(-1, AF_INET, one, [to], 0, 1), RangeError],
      [() => native.trySendmmsg(fd, AF_INET, 'x' as unknown as Buffer[], [to], 0, 1), TypeError],
      [() => native.trySendmmsg(fd, AF_INET, one, {} as unknown as SocketAddress[], 0, 1), TypeError],
      [() => native.trySendmmsg(fd, AF_INET, one, [to], 0, 0), RangeError],
      [() => native.trySendmmsg(fd, AF_INET, one, [to], 0, 2), RangeError],
      [() => native.trySendmmsg(fd, AF_INET, one, [to], 1, 1), RangeError],
      [() => native.trySendmmsg(fd, AF_INET, one, [to], 0, 1025), RangeError],
      [() => native.trySendmmsg(fd, AF_INET, ['x' as unknown as Buffer], [to], 0, 1), TypeError],
      [() => native.trySendmmsg(fd, AF_INET, one, [['127.0.0.1', 70_000]], 0, 1), RangeError],
      [() => native.trySendmmsg(fd, AF_INET, one, ['/a/path'], 0, 1), TypeError],
    ];
    for (const [call, type] of bad) expect(call).toThrow(type);
    // A bad address later in the batch: nothing at all went out.
    expect(() =>
      native.trySendmmsg(fd, AF_INET, [Buffer.from('a'), Buffer.from('b')], [to, ['nope', 1]], 0, 2),
    ).toThrow(/numeric IPv4/);
    expect(b.tryRecvfrom(64)).toBeNull();

    const bfd = b.fileno();
    a.trySendto('kept', to);
    const meta = new Int32Array(4 * META_INTS);
    const slab = Buffer.alloc(4 * SLOT);
    const badRecv: [() => unknown, RangeErrorConstructor | TypeErrorConstructor][] = [
      [() => native.tryRecvmmsg(bfd, slab, 0, 1, meta), RangeError],
      [() => native.tryRecvmmsg(bfd, slab, SLOT, 0, meta), RangeError],
      [() => native.tryRecvmmsg(bfd, slab, SLOT, 1025, meta), RangeError],
      [() => native.tryRecvmmsg(bfd, slab, SLOT, 5, meta), RangeError],
      [() => native.tryRecvmmsg(bfd, slab, SLOT, 4, new Int32Array(3 * META_INTS)), RangeError],
      [() => native.tryRecvmmsg(bfd, 'slab' as unknown as Buffer, SLOT, 1, meta), TypeError],
      [() => native.tryRecvmmsg(bfd, slab, SLOT, 1, new Float64Array(24) as unknown as Int32Array), TypeError],
    ];
    for (const [call, type] of badRecv) expect(call).toThrow(type);
    // The datagram is still there.
    expect(native.tryRecvmmsg(bfd, slab, SLOT, 4, meta)).toBe(1);
    expect(slab.toString('utf8', 0, 4)).toBe('kept');
  });

  it("an address whose getter detaches a datagram's buffer cannot make the kernel read freed memory", () => {
    const [a, b] = udpPair(AF_INET);
    const to = b.getsockname() as [string, number];
    const ab = new ArrayBuffer(8);
    const data = new Uint8Array(ab);
    const sneaky = [to[0], 0] as unknown as SocketAddress;
    Object.defineProperty(sneaky, 1, {
      get() {
        structuredClone(ab, { transfer: [ab] });
        return to[1];
      },
    });
    // The buffer is read after the address: it is empty by then, and an empty datagram goes out.
    expect(native.trySendmmsg(a.fileno(), AF_INET, [data], [sneaky], 0, 1)).toBe(1);
    expect(b.tryRecvfrom(64)?.[0].length).toBe(0);
  });

  it('a closed socket throws EBADF', () => {
    const a = trackClosable(new Socket(AF_INET, SOCK_DGRAM));
    const fd = a.fileno();
    a.close();
    expect(() => native.tryRecvmmsg(fd, Buffer.alloc(SLOT), SLOT, 1, new Int32Array(META_INTS))).toThrow(
      expect.objectContaining({ code: 'EBADF' }),
    );
    expect(() => native.trySendmmsg(fd, AF_INET, [Buffer.from('x')], [['127.0.0.1', 9]], 0, 1)).toThrow(
      expect.objectContaining({ code: 'EBADF' }),
    );
  });
});
