import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  BlockingIOError,
  EPOLLIN,
  Epoll,
  IPPROTO_TCP,
  OSError,
  SHUT_WR,
  SO_ERROR,
  SO_KEEPALIVE,
  SO_LINGER,
  SO_RCVBUF,
  SO_REUSEADDR,
  SO_REUSEPORT,
  SO_SNDBUF,
  SO_TYPE,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  SOL_SOCKET,
  Socket,
  type SocketAddress,
  select,
  TCP_NODELAY,
} from '../../src/sys/index.js';
import { FDINFO_CLOEXEC, fdFlags, isOpen, testSocketpair, track, trackClosable } from '../helpers/fds.js';
import { closedPort } from '../helpers/net.js';

function sock(family: number, type: number): Socket {
  return trackClosable(new Socket(family, type));
}

/** A listening TCP socket on an ephemeral loopback port. */
function listener(family = AF_INET): Socket {
  const server = sock(family, SOCK_STREAM);
  server.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
  server.bind([family === AF_INET ? '127.0.0.1' : '::1', 0]);
  server.listen();
  return server;
}

/** A connected TCP pair over loopback: [client, serverSide]. */
function tcpPair(family = AF_INET): [Socket, Socket] {
  const server = listener(family);
  const client = sock(family, SOCK_STREAM);
  client.connect(server.getsockname());
  const [conn] = server.accept();
  return [client, trackClosable(conn)];
}

describe('Socket over TCP', () => {
  it('connects, accepts, sends and receives over 127.0.0.1', () => {
    const [client, conn] = tcpPair();
    expect(client.sendAll('hello')).toBeUndefined();
    expect(conn.recv(100).toString()).toBe('hello');
    conn.send(Buffer.from('world'));
    expect(client.recv(100).toString()).toBe('world');
    const [host, port] = client.getpeername() as [string, number];
    expect(host).toBe('127.0.0.1');
    expect(conn.getsockname()).toEqual(['127.0.0.1', port]);
  });

  it('works over ::1 with 4-element IPv6 addresses', () => {
    const [client, conn] = tcpPair(AF_INET6);
    expect(client.family).toBe(AF_INET6);
    const peer = client.getpeername() as [string, number, number, number];
    expect(peer[0]).toBe('::1');
    expect(peer).toHaveLength(4);
    client.sendAll(new Uint8Array([1, 2, 3]));
    expect([...conn.recv(10)]).toEqual([1, 2, 3]);
  });

  it('accept() returns the peer address and a blocking, CLOEXEC socket', () => {
    const server = listener();
    server.setBlocking(false);
    const client = sock(AF_INET, SOCK_STREAM);
    client.connect(server.getsockname());
    const [conn, address] = server.accept();
    trackClosable(conn);
    expect(address).toEqual(client.getsockname());
    expect(conn.getBlocking()).toBe(true);
    expect(fdFlags(conn.fileno()) & FDINFO_CLOEXEC).toBe(FDINFO_CLOEXEC);
  });

  it('a refused connection raises ECONNREFUSED with the address in the message', () => {
    const port = closedPort();
    const client = sock(AF_INET, SOCK_STREAM);
    expect(() => client.connect(['127.0.0.1', port])).toThrow(
      expect.objectContaining({
        name: 'OSError',
        code: 'ECONNREFUSED',
        errno: -111,
        syscall: 'connect',
        message: `connect ECONNREFUSED 127.0.0.1:${port}`,
      }),
    );
    expect(sock(AF_INET, SOCK_STREAM).connectEx(['127.0.0.1', port])).toBe(111);
  });

  it('non-blocking connect raises BlockingIOError EINPROGRESS, then SO_ERROR tells the outcome', () => {
    const server = listener();
    const client = sock(AF_INET, SOCK_STREAM);
    client.setBlocking(false);
    expect(client.getBlocking()).toBe(false);
    let error: unknown;
    try {
      client.connect(server.getsockname());
    } catch (e) {
      error = e;
    }
    // Loopback may finish at once; when it does not, it is EINPROGRESS.
    if (error !== undefined) {
      expect(error).toBeInstanceOf(BlockingIOError);
      expect(error).toMatchObject({ code: 'EINPROGRESS', syscall: 'connect' });
      expect(select([], [client], [], 1000)[1]).toEqual([client]);
    }
    expect(client.getsockopt(SOL_SOCKET, SO_ERROR)).toBe(0);

    const refused = sock(AF_INET, SOCK_NONBLOCK | SOCK_STREAM);
    const rc = refused.connectEx(['127.0.0.1', closedPort()]);
    expect([111, 115]).toContain(rc);
    select([], [refused], [], 1000);
    expect(refused.getsockopt(SOL_SOCKET, SO_ERROR)).toBe(111);
  });

  it('would-block raises BlockingIOError EAGAIN; the try* forms return null', () => {
    const [client, conn] = tcpPair();
    conn.setBlocking(false);
    expect(() => conn.recv(10)).toThrow(BlockingIOError);
    expect(() => conn.recv(10)).toThrow(expect.objectContaining({ code: 'EAGAIN', syscall: 'recv' }));
    expect(conn.tryRecvInto(Buffer.alloc(10))).toBeNull();
    // tryRecvInto never blocks, even on a blocking socket.
    expect(client.getBlocking()).toBe(true);
    expect(client.tryRecvInto(Buffer.alloc(10))).toBeNull();
    client.send('abc');
    const buf = Buffer.alloc(10);
    expect(conn.tryRecvInto(buf.subarray(2), 5)).toBe(3);
    expect(buf.subarray(2, 5).toString()).toBe('abc');
    client.close();
    expect(conn.tryRecvInto(buf)).toBe(0);

    const server = listener();
    server.setBlocking(false);
    expect(() => server.accept()).toThrow(expect.objectContaining({ code: 'EAGAIN', syscall: 'accept' }));
    expect(server.tryAccept()).toBeNull();
    const c2 = sock(AF_INET, SOCK_STREAM);
    c2.connect(server.getsockname());
    const accepted = server.tryAccept();
    expect(accepted).not.toBeNull();
    trackClosable(accepted as Socket);
    expect((accepted as Socket).getBlocking()).toBe(false);
  });

  it('trySend fills the send buffer, then returns null; sendAll then raises with the count sent', () => {
    const [client] = tcpPair();
    client.setsockopt(SOL_SOCKET, SO_SNDBUF, 4096);
    const chunk = Buffer.alloc(65536, 1);
    let total = 0;
    for (let i = 0; i < 10_000; i++) {
      const n = client.trySend(chunk);
      if (n === null) break;
      total += n;
    }
    expect(total).toBeGreaterThan(0);
    expect(client.trySend(chunk)).toBeNull();
    client.setBlocking(false);
    expect(() => client.send(chunk)).toThrow(expect.objectContaining({ code: 'EAGAIN', name: 'BlockingIOError' }));
    expect(() => client.sendAll(chunk)).toThrow(/send EAGAIN \(0 bytes were sent\)/);
  });

  it('sendAll moves 8 MiB through a blocking socket while the peer drains', () => {
    const [a, b] = testSocketpair();
    const data = Buffer.alloc(8 * 1024 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = i & 0xff;
    b.setBlocking(false);
    a.setBlocking(false);
    const received: Buffer[] = [];
    let sent = 0;
    let got = 0;
    while (got < data.length) {
      if (sent < data.length) {
        const n = a.trySend(data.subarray(sent));
        if (n !== null) sent += n;
      }
      const chunk = Buffer.alloc(65536);
      const n = b.tryRecvInto(chunk);
      if (n !== null && n > 0) {
        received.push(chunk.subarray(0, n));
        got += n;
      }
    }
    expect(Buffer.concat(received).equals(data)).toBe(true);
  });

  it('each recv(bufsize) returns bytes of its own, whatever the size asked', () => {
    const [a, b] = testSocketpair();
    const got: Buffer[] = [];
    for (const [data, bufsize] of [
      ['first', 65536],
      ['second', 65536],
      ['x'.repeat(70_000), 100_000],
      ['third', 5],
    ] as const) {
      a.sendAll(data);
      let received = '';
      while (received.length < data.length) {
        const chunk = b.recv(bufsize);
        got.push(chunk);
        received += chunk.toString();
      }
      expect(received).toBe(data);
    }
    // Earlier results were not overwritten by later receives.
    expect(got[0]?.toString()).toBe('first');
    expect(got[1]?.toString()).toBe('second');
    expect(got.at(-1)?.toString()).toBe('third');
    a.sendAll('dgram-free');
    const [data] = b.recvfrom(64);
    expect(data.toString()).toBe('dgram-free');
    expect(got[0]?.toString()).toBe('first');
  });

  it('shutdown(SHUT_WR) gives the peer EOF', () => {
    const [client, conn] = tcpPair();
    client.shutdown(SHUT_WR);
    expect(conn.recv(10).length).toBe(0);
  });

  it('a reset connection raises ECONNRESET on the peer', () => {
    const [client, conn] = tcpPair();
    client.setsockopt(SOL_SOCKET, SO_LINGER, Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]));
    client.close();
    expect(() => conn.recv(10)).toThrow(expect.objectContaining({ code: 'ECONNRESET' }));
  });

  it('socket options: int, boolean and byte forms', () => {
    const s = sock(AF_INET, SOCK_STREAM);
    for (const [level, option] of [
      [SOL_SOCKET, SO_REUSEADDR],
      [SOL_SOCKET, SO_REUSEPORT],
      [SOL_SOCKET, SO_KEEPALIVE],
      [IPPROTO_TCP, TCP_NODELAY],
    ] as const) {
      s.setsockopt(level, option, true);
      expect(s.getsockopt(level, option)).toBe(1);
      s.setsockopt(level, option, 0);
      expect(s.getsockopt(level, option)).toBe(0);
    }
    s.setsockopt(SOL_SOCKET, SO_RCVBUF, 65536);
    expect(s.getsockopt(SOL_SOCKET, SO_RCVBUF)).toBeGreaterThanOrEqual(65536);
    s.setsockopt(SOL_SOCKET, SO_SNDBUF, 65536);
    expect(s.getsockopt(SOL_SOCKET, SO_SNDBUF)).toBeGreaterThanOrEqual(65536);
    expect(s.getsockopt(SOL_SOCKET, SO_TYPE)).toBe(SOCK_STREAM);
    const linger = s.getsockopt(SOL_SOCKET, SO_LINGER, 8);
    expect(linger).toBeInstanceOf(Buffer);
    expect(linger.length).toBe(8);
  });
});

describe('Socket over UDP and Unix sockets', () => {
  it('sendto / recvfrom datagrams over 127.0.0.1', () => {
    const a = sock(AF_INET, SOCK_DGRAM);
    const b = sock(AF_INET, SOCK_DGRAM);
    a.bind(['127.0.0.1', 0]);
    b.bind(['127.0.0.1', 0]);
    expect(a.sendto('ping', b.getsockname())).toBe(4);
    const [data, from] = b.recvfrom(100);
    expect(data.toString()).toBe('ping');
    expect(from).toEqual(a.getsockname());
    const buf = Buffer.alloc(10);
    a.sendto('pong', b.getsockname());
    expect(b.recvfromInto(buf)).toEqual([4, a.getsockname()]);
  });

  it('sendto reads its address before it touches the bytes: a getter that frees them sends none of them', () => {
    const a = sock(AF_INET, SOCK_DGRAM);
    const b = sock(AF_INET, SOCK_DGRAM);
    b.bind(['127.0.0.1', 0]);
    b.setBlocking(false);
    const [, port] = b.getsockname() as [string, number];
    const bytes = new Uint8Array(new ArrayBuffer(4096)).fill(0x41);
    // An address whose host getter detaches (frees) the data's ArrayBuffer.
    const address = [undefined, port] as unknown as [string, number];
    Object.defineProperty(address, 0, {
      get: () => {
        structuredClone(bytes.buffer, { transfer: [bytes.buffer] });
        return '127.0.0.1';
      },
    });
    expect(a.sendto(bytes, address)).toBe(0);
    expect(bytes.byteLength).toBe(0); // detached
    // What arrived is the empty datagram a detached view holds, not the freed 4 KiB.
    expect(b.recvfrom(8192)[0].length).toBe(0);
  });

  it('UDP over ::1', () => {
    const a = sock(AF_INET6, SOCK_DGRAM);
    a.bind(['::1', 0]);
    const b = sock(AF_INET6, SOCK_DGRAM);
    b.sendto('x', a.getsockname());
    const [data, from] = a.recvfrom(10);
    expect(data.toString()).toBe('x');
    expect((from as [string, number])[0]).toBe('::1');
  });

  it('Unix stream sockets on a path and in the abstract namespace', () => {
    const dir = mkdtempSync(join(tmpdir(), 'iomux-'));
    try {
      const path = join(dir, 's.sock');
      for (const address of [path, `\0iomux-test-${process.pid}`]) {
        const server = sock(AF_UNIX, SOCK_STREAM);
        server.bind(address);
        server.listen();
        expect(server.getsockname()).toBe(address);
        const client = sock(AF_UNIX, SOCK_STREAM);
        client.connect(address);
        const [conn, peer] = server.accept();
        trackClosable(conn);
        expect(peer).toBe('');
        expect(client.getpeername()).toBe(address);
        client.sendAll('unix');
        expect(conn.recv(10).toString()).toBe('unix');
      }
      expect(existsSync(path)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('socketpair() gives two connected, CLOEXEC, unnamed sockets', () => {
    const [a, b] = testSocketpair();
    expect(a.family).toBe(AF_UNIX);
    expect(a.getsockname()).toBe('');
    expect(fdFlags(a.fileno()) & FDINFO_CLOEXEC).toBe(FDINFO_CLOEXEC);
    a.sendAll('pair');
    expect(b.recv(10).toString()).toBe('pair');
    const [c, d] = testSocketpair(AF_UNIX, SOCK_DGRAM);
    c.send('d1');
    expect(d.recv(10).toString()).toBe('d1');
  });
});

describe('Socket lifetime', () => {
  it('close() is idempotent; every method of a closed socket raises EBADF', () => {
    const s = new Socket(AF_INET, SOCK_STREAM);
    const fd = s.fileno();
    s.close();
    s.close();
    expect(s.closed).toBe(true);
    expect(isOpen(fd)).toBe(false);
    const buf = Buffer.alloc(4);
    for (const call of [
      () => s.fileno(),
      () => s.recv(1),
      () => s.recvInto(buf),
      () => s.tryRecvInto(buf),
      () => s.send('x'),
      () => s.trySend(buf),
      () => s.connect(['127.0.0.1', 1]),
      () => s.bind(['127.0.0.1', 0]),
      () => s.listen(),
      () => s.accept(),
      () => s.setBlocking(false),
      () => s.getsockopt(SOL_SOCKET, SO_TYPE),
      () => s.getsockname(),
      () => s.shutdown(SHUT_WR),
    ]) {
      expect(call).toThrow(expect.objectContaining({ name: 'OSError', code: 'EBADF' }));
    }
  });

  it('a closed socket never acts on the fd number the kernel reuses', () => {
    const [a, b] = testSocketpair();
    const fd = a.fileno();
    a.close();
    const reuse = trackClosable(new Epoll());
    expect(reuse.fileno()).toBe(fd);
    expect(() => a.send('x')).toThrow(expect.objectContaining({ code: 'EBADF' }));
    expect(() => a.close()).not.toThrow();
    expect(reuse.closed).toBe(false);
    reuse.register(b, EPOLLIN);
  });

  it('detach() hands the fd over without closing it; fromFd() wraps a duplicate', () => {
    const s = new Socket(AF_INET, SOCK_STREAM);
    const fd = track(s.detach());
    expect(s.closed).toBe(true);
    expect(s.detach()).toBe(-1);
    expect(isOpen(fd)).toBe(true);
    const dup = Socket.fromFd(fd);
    expect(dup.fileno()).not.toBe(fd);
    expect(dup.family).toBe(AF_INET);
    expect(dup.type).toBe(SOCK_STREAM);
    expect(fdFlags(dup.fileno()) & FDINFO_CLOEXEC).toBe(FDINFO_CLOEXEC);
    dup.close();
    // The original stays the caller's to close.
    expect(isOpen(fd)).toBe(true);
  });

  it('fromFd() on a non-socket is ENOTSOCK and leaks nothing', () => {
    const ep = trackClosable(new Epoll());
    expect(() => Socket.fromFd(ep.fileno())).toThrow(expect.objectContaining({ code: 'ENOTSOCK' }));
    expect(() => Socket.fromFd(999_999)).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });
});

describe('Socket bad input: a clear error before any syscall', () => {
  it('unknown family or type', () => {
    expect(() => new Socket(12345, SOCK_STREAM)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => new Socket(AF_INET, 99)).toThrow(RangeError);
    expect(() => new Socket(Number.NaN, SOCK_STREAM)).toThrow(RangeError);
    expect(() => new Socket('AF_INET' as unknown as number, SOCK_STREAM)).toThrow(TypeError);
  });

  it('addresses of the wrong shape, host names, bad ports, long Unix paths', () => {
    const s = sock(AF_INET, SOCK_STREAM);
    const bad: [unknown, string][] = [
      ['127.0.0.1', 'ERR_INVALID_ARG_TYPE'],
      [['127.0.0.1'], 'ERR_INVALID_ARG_TYPE'],
      [[127, 80], 'ERR_INVALID_ARG_TYPE'],
      [['127.0.0.1', '80'], 'ERR_INVALID_ARG_TYPE'],
      [['example.com', 80], 'ERR_INVALID_ARG_VALUE'],
      [['::1', 80], 'ERR_INVALID_ARG_VALUE'],
      [['127.0.0.1', 65536], 'ERR_OUT_OF_RANGE'],
      [['127.0.0.1', -1], 'ERR_OUT_OF_RANGE'],
      [['127.0.0.1', 1.5], 'ERR_OUT_OF_RANGE'],
    ];
    for (const [address, code] of bad) {
      expect(() => s.connect(address as SocketAddress), JSON.stringify(address)).toThrow(
        expect.objectContaining({ code }),
      );
    }
    expect(() => s.bind(['1.2.3.4\0', 0])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    const s6 = sock(AF_INET6, SOCK_STREAM);
    expect(() => s6.connect(['::1', 80, 1 << 21])).toThrow(RangeError);
    expect(() => s6.connect(['127.0.0.1', 80])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    const u = sock(AF_UNIX, SOCK_STREAM);
    expect(() => u.bind(`/tmp/${'x'.repeat(200)}`)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => u.bind(['/tmp/x', 0] as unknown as string)).toThrow(TypeError);
    // Nothing changed: the socket is still usable.
    expect(s.closed).toBe(false);
    expect(s.getsockname()).toEqual(['0.0.0.0', 0]);
  });

  it('buffers, offsets and lengths are bounds-checked', () => {
    const [a, b] = testSocketpair();
    a.send('xyz');
    const buf = Buffer.alloc(4);
    // nbytes as in Python: at most the buffer's size, never negative; the same for both forms.
    for (const recvInto of [b.recvInto.bind(b), b.tryRecvInto.bind(b)]) {
      expect(() => recvInto(buf, 5)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
      expect(() => recvInto(buf, -1)).toThrow(/The "nbytes" argument must be >= 0 and <= 4/);
      expect(() => recvInto(buf, 1.5)).toThrow(RangeError);
      expect(() => recvInto(buf, 1, -1)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    }
    expect(() => b.recvInto(buf, 5)).toThrow(RangeError);
    expect(() => b.recvInto('abc' as unknown as Buffer)).toThrow(TypeError);
    expect(() => a.trySend([1, 2] as unknown as Buffer)).toThrow(TypeError);
    expect(() => a.send(42 as unknown as string)).toThrow(TypeError);
    expect(() => b.recv(-1)).toThrow(RangeError);
    // Nothing was consumed by the failed calls.
    expect(b.recv(10).toString()).toBe('xyz');
  });

  it('bad option levels, values and shutdown directions', () => {
    const s = sock(AF_INET, SOCK_STREAM);
    expect(() => s.setsockopt(9999, SO_REUSEADDR, 1)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => s.setsockopt(SOL_SOCKET, SO_REUSEADDR, 'yes' as unknown as number)).toThrow(TypeError);
    expect(() => s.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1.5)).toThrow(RangeError);
    expect(() => s.setsockopt(SOL_SOCKET, 9999, 1)).toThrow(expect.objectContaining({ code: 'ENOPROTOOPT' }));
    expect(() => s.getsockopt(SOL_SOCKET, SO_LINGER, 0)).toThrow(RangeError);
    expect(() => s.shutdown(7)).toThrow(RangeError);
    expect(() => s.setBlocking('no' as unknown as boolean)).toThrow(TypeError);
    expect(() => s.listen(-1)).toThrow(RangeError);
    expect(s.getsockopt(SOL_SOCKET, SO_REUSEADDR)).toBe(0);
  });

  it('errors are OSError instances with Node-style fields', () => {
    const s = sock(AF_INET, SOCK_STREAM);
    try {
      s.getpeername();
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(OSError);
      expect(e).toBeInstanceOf(Error);
      expect(e).toMatchObject({
        code: 'ENOTCONN',
        errno: -107,
        syscall: 'getpeername',
        message: 'getpeername ENOTCONN',
      });
    }
  });
});
