/**
 * The non-throwing datagram calls the loop uses: tryRecvfrom,
 * tryRecvfromInto, trySendto, over real UDP (127.0.0.1, ::1) and Unix
 * datagram sockets.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';

import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  OSError,
  SO_SNDBUF,
  SOCK_DGRAM,
  SOL_SOCKET,
  Socket,
  type SocketAddress,
} from '../../src/sys/index.js';
import { testSocketpair, trackClosable } from '../helpers/fds.js';
import { closedPort } from '../helpers/net.js';

function sock(family: number, type = SOCK_DGRAM): Socket {
  return trackClosable(new Socket(family, type));
}

function tmpDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'iomux-dgram-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Two bound UDP sockets of `family` on loopback. */
function udpPair(family: number): [Socket, Socket] {
  const host = family === AF_INET ? '127.0.0.1' : '::1';
  const a = sock(family);
  const b = sock(family);
  a.bind([host, 0]);
  b.bind([host, 0]);
  return [a, b];
}

describe.each([
  ['127.0.0.1', AF_INET],
  ['::1', AF_INET6],
])('tryRecvfrom / trySendto over UDP %s', (_host, family) => {
  it('sends and receives with the sender address, and null when nothing is waiting', () => {
    const [a, b] = udpPair(family);
    expect(b.tryRecvfrom(100)).toBeNull();
    expect(a.trySendto('ping', b.getsockname())).toBe(4);
    const got = b.tryRecvfrom(100);
    expect(got).not.toBeNull();
    const [data, from] = got as [Buffer, SocketAddress];
    expect(data.toString()).toBe('ping');
    expect(from).toEqual(a.getsockname());
    expect(b.tryRecvfrom(100)).toBeNull();
  });

  it('tryRecvfromInto fills the buffer, at most nbytes, and returns null when empty', () => {
    const [a, b] = udpPair(family);
    const buf = Buffer.alloc(16);
    expect(b.tryRecvfromInto(buf)).toBeNull();
    a.trySendto('hello world', b.getsockname());
    const got = b.tryRecvfromInto(buf, 5);
    expect(got).toEqual([5, a.getsockname()]);
    expect(buf.subarray(0, 5).toString()).toBe('hello');
    // The rest of a datagram is discarded, as recvfrom(2) does.
    expect(b.tryRecvfromInto(buf)).toBeNull();
  });

  it('never blocks, even on a blocking socket', () => {
    const [, b] = udpPair(family);
    expect(b.getBlocking()).toBe(true);
    expect(b.tryRecvfrom(10)).toBeNull();
    expect(b.tryRecvfromInto(Buffer.alloc(4))).toBeNull();
  });

  it('a flags argument goes through (MSG_PEEK leaves the datagram queued)', () => {
    const MSG_PEEK = 2;
    const [a, b] = udpPair(family);
    a.trySendto('peek', b.getsockname());
    // Loopback delivery is synchronous: the datagram is queued by now.
    expect(b.tryRecvfrom(10, MSG_PEEK)?.[0].toString()).toBe('peek');
    expect(b.tryRecvfrom(10)?.[0].toString()).toBe('peek');
    expect(b.tryRecvfrom(10)).toBeNull();
  });
});

describe('tryRecvfrom / trySendto errors', () => {
  it('ECONNREFUSED from an ICMP port unreachable throws on a connected UDP socket', () => {
    const a = sock(AF_INET);
    a.connect(['127.0.0.1', closedPort()]);
    expect(a.trySendto('x', a.getpeername())).toBe(1);
    // The ICMP error comes back through loopback at once; the next call reports it.
    let error: unknown;
    try {
      a.tryRecvfrom(10);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(OSError);
    expect((error as OSError).code).toBe('ECONNREFUSED');
    expect((error as OSError).syscall).toBe('recvfrom');
    // Reported once: the socket's error is cleared.
    expect(a.tryRecvfrom(10)).toBeNull();
  });

  it('bad arguments throw TypeError/RangeError and send nothing', () => {
    const [a, b] = udpPair(AF_INET);
    const to = b.getsockname();
    expect(() => a.trySendto(42 as unknown as string, to)).toThrow(TypeError);
    expect(() => a.trySendto('x', '/not/an/inet/address')).toThrow(TypeError);
    expect(() => a.trySendto('x', ['127.0.0.1', 70000])).toThrow(RangeError);
    expect(() => a.trySendto('x', ['not-an-ip', 1])).toThrow();
    expect(() => a.trySendto('x', -1, to)).toThrow(RangeError);
    expect(() => b.tryRecvfrom(-1)).toThrow(RangeError);
    expect(() => b.tryRecvfrom(1.5)).toThrow(RangeError);
    expect(() => b.tryRecvfromInto(Buffer.alloc(4), -1)).toThrow(RangeError);
    expect(() => b.tryRecvfromInto(Buffer.alloc(4), 5)).toThrow(RangeError);
    expect(() => b.tryRecvfromInto('nope' as unknown as Buffer)).toThrow(TypeError);
    expect(() => b.tryRecvfrom(4, -1)).toThrow(RangeError);
    // Nothing went out, and nothing was consumed.
    expect(b.tryRecvfrom(10)).toBeNull();
    a.trySendto('ok', to);
    expect(b.tryRecvfrom(10)?.[0].toString()).toBe('ok');
  });

  it('a closed socket throws EBADF', () => {
    const a = sock(AF_INET);
    a.close();
    expect(() => a.tryRecvfrom(10)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    expect(() => a.trySendto('x', ['127.0.0.1', 9])).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });

  it('EMSGSIZE for a datagram larger than UDP allows throws, not null', () => {
    const [a, b] = udpPair(AF_INET);
    expect(() => a.trySendto(Buffer.alloc(70000), b.getsockname())).toThrow(
      expect.objectContaining({ code: 'EMSGSIZE', syscall: 'sendto' }),
    );
  });
});

describe('tryRecvfrom / trySendto over Unix datagram sockets', () => {
  it('between bound paths: the sender path is the address', () => {
    const dir = tmpDir();
    const a = sock(AF_UNIX);
    const b = sock(AF_UNIX);
    a.bind(join(dir, 'a'));
    b.bind(join(dir, 'b'));
    expect(a.trySendto('over unix', join(dir, 'b'))).toBe(9);
    expect(b.tryRecvfrom(64)).toEqual([Buffer.from('over unix'), join(dir, 'a')]);
    expect(b.tryRecvfrom(64)).toBeNull();
  });

  it('from an unbound sender: the address is null (not the would-block null)', () => {
    const dir = tmpDir();
    const b = sock(AF_UNIX);
    b.bind(join(dir, 'b'));
    const a = sock(AF_UNIX);
    expect(a.trySendto('anon', join(dir, 'b'))).toBe(4);
    const buf = Buffer.alloc(8);
    expect(b.tryRecvfromInto(buf)).toEqual([4, null]);
    expect(b.tryRecvfromInto(buf)).toBeNull();
  });

  it('an empty datagram is [empty, address], not null', () => {
    const [a, b] = testSocketpair(AF_UNIX, SOCK_DGRAM);
    a.send(Buffer.alloc(0));
    expect(b.tryRecvfrom(10)).toEqual([Buffer.alloc(0), null]);
    expect(b.tryRecvfrom(10)).toBeNull();
  });

  it('trySendto returns null when the peer does not read and the queue is full', () => {
    const dir = tmpDir();
    const b = sock(AF_UNIX);
    b.bind(join(dir, 'b'));
    const a = sock(AF_UNIX);
    a.setsockopt(SOL_SOCKET, SO_SNDBUF, 4096);
    const payload = Buffer.alloc(1024, 1);
    let sent = 0;
    let last: number | null = 0;
    // A Unix datagram socket blocks (EAGAIN) when the receiver's queue is
    // full (net.unix.max_dgram_qlen) or the sender's buffer is.
    for (; sent < 100_000; sent++) {
      last = a.trySendto(payload, join(dir, 'b'));
      if (last === null) break;
    }
    expect(last).toBeNull();
    expect(sent).toBeGreaterThan(0);
    // Every datagram sent is there, then nothing.
    let got = 0;
    while (b.tryRecvfrom(2048) !== null) got++;
    expect(got).toBe(sent);
  });

  it('a missing path throws ENOENT', () => {
    const dir = tmpDir();
    const a = sock(AF_UNIX);
    expect(() => a.trySendto('x', join(dir, 'nobody'))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });
});
