/**
 * sendmsg / recvmsg with ancillary data, on real sockets: fds passed over a
 * socketpair and to another process are usable; every bad input is an exact
 * error with nothing sent and no fd leaked; JavaScript that runs while the
 * arguments are read (getters) cannot make the addon touch freed memory.
 */
import { spawn } from 'node:child_process';
import { fstatSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';

import type { NativeRecvmsg } from '../../src/sys/binding.js';
import {
  AF_INET,
  AF_UNIX,
  type Ancillary,
  BlockingIOError,
  CMSG_LEN,
  CMSG_SPACE,
  close,
  type FdList,
  MSG_CTRUNC,
  MSG_PEEK,
  MSG_TRUNC,
  pipe,
  read,
  recvFds,
  recvmsgInto,
  SCM_CREDENTIALS,
  SCM_MAX_FD,
  SCM_RIGHTS,
  SO_PASSCRED,
  SO_SNDBUF,
  SOCK_DGRAM,
  SOCK_SEQPACKET,
  SOCK_STREAM,
  SOL_SOCKET,
  Socket,
  select,
  sendFds,
  sendmsg,
  write,
} from '../../src/sys/index.js';
import { native } from '../../src/sys/native.js';
import {
  FDINFO_CLOEXEC,
  fdFlags,
  openFdCount,
  testEventfd,
  testPipe,
  testSocketpair,
  track,
  trackClosable,
} from '../helpers/fds.js';

const DIST = new URL('../../dist', import.meta.url).href;
const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

/** The same open file (inode and device) behind both fds. */
function sameFile(a: number, b: number): boolean {
  const sa = fstatSync(a);
  const sb = fstatSync(b);
  return sa.ino === sb.ino && sa.dev === sb.dev;
}

/** The fds in an SCM_RIGHTS message's data (native-endian int32s). */
function fdsOf(data: Buffer): number[] {
  return Array.from(new Int32Array(Uint8Array.from(data).buffer));
}

/** Reads what is in a pipe now (it must be readable within 5 s). */
function readNow(fd: number, size = 64): string {
  const [ready] = select([fd], [], [], 5000);
  if (ready.length === 0) throw new Error(`fd ${fd} not readable within 5 s`);
  const buf = Buffer.alloc(size);
  return buf.subarray(0, read(fd, buf)).toString();
}

/** Nothing is queued on `sock`: a failed call sent nothing. */
function expectNothingQueued(sock: Socket): void {
  expect(sock.tryRecvmsg(1 << 16, CMSG_SPACE(4 * SCM_MAX_FD))).toBeNull();
}

describe('sendFds / recvFds over a socketpair', () => {
  it('a passed pipe end is a new fd for the same pipe: bytes written through it come out of the read end', () => {
    const [a, b] = testSocketpair();
    const [r, w] = testPipe();
    expect(a.sendFds([Buffer.from('x')], [w])).toBe(1);
    const [data, fds, msgFlags, address] = b.recvFds(16, 4);
    expect(data.toString()).toBe('x');
    expect(fds).toHaveLength(1);
    const passed = track(fds[0] as number);
    expect(passed).not.toBe(w);
    expect(sameFile(passed, w)).toBe(true);
    expect(msgFlags).toBe(0);
    expect(address).toBeNull();
    write(passed, Buffer.from('through the passed end'));
    expect(readNow(r)).toBe('through the passed end');
  });

  it('several fds at once arrive in order, each CLOEXEC; a Socket is passed by its fileno()', () => {
    const [a, b] = testSocketpair();
    const [r, w] = testPipe();
    const efd = testEventfd();
    const [c, d] = testSocketpair();
    const sent = [r, w, efd, c.fileno()];
    expect(sendFds(a, ['four'], [r, w, efd, c])).toBe(4);
    const [data, fds] = recvFds(b, 16, 8);
    for (const fd of fds) track(fd);
    expect(data.toString()).toBe('four');
    expect(fds).toHaveLength(4);
    fds.forEach((fd, i) => {
      expect(sameFile(fd, sent[i] as number)).toBe(true);
      expect(fdFlags(fd) & FDINFO_CLOEXEC).toBe(FDINFO_CLOEXEC);
    });
    // The passed socket is the same connection: what goes in comes out of d.
    const passedSocket = trackClosable(Socket.fromFd(fds[3] as number));
    passedSocket.sendAll('via the passed socket');
    expect(d.recv(64).toString()).toBe('via the passed socket');
  });

  it('an Int32Array of fds works like an array; the sender keeps its own fds open', () => {
    const [a, b] = testSocketpair();
    const [r, w] = testPipe();
    a.sendFds(['y'], Int32Array.of(w, w));
    const [, fds] = b.recvFds(8, 2);
    for (const fd of fds) track(fd);
    expect(fds).toHaveLength(2);
    expect(fds[0]).not.toBe(fds[1]);
    write(w, Buffer.from('sender'));
    expect(readNow(r)).toBe('sender');
  });

  it('data with no fds: several buffers, one message; recvFds gives an empty list', () => {
    const [a, b] = testSocketpair(AF_UNIX, SOCK_SEQPACKET);
    expect(a.sendmsg(['he', Buffer.from('ll'), new Uint8Array([0x6f])])).toBe(5);
    const [data, ancdata, msgFlags, address] = b.recvmsg(16, CMSG_SPACE(4));
    expect(data.toString()).toBe('hello');
    expect(ancdata).toEqual([]);
    expect(msgFlags).toBe(0);
    expect(address).toBeNull();
    a.sendFds(['plain'], []);
    expect(b.recvFds(16, 4)).toEqual([Buffer.from('plain'), [], 0, null]);
  });

  it("Python's ancdata shape: SCM_RIGHTS given as an Int32Array, received as int32 bytes", () => {
    const [a, b] = testSocketpair();
    const [r, w] = testPipe();
    const ancdata: Ancillary[] = [{ level: SOL_SOCKET, type: SCM_RIGHTS, data: Int32Array.of(w) }];
    expect(sendmsg(a, ['z'], ancdata)).toBe(1);
    const [data, received, msgFlags] = b.recvmsg(8, CMSG_SPACE(4));
    expect(data.toString()).toBe('z');
    expect(msgFlags).toBe(0);
    expect(received).toHaveLength(1);
    const [item] = received as [Ancillary<Buffer>];
    expect(item.level).toBe(SOL_SOCKET);
    expect(item.type).toBe(SCM_RIGHTS);
    expect(item.data.length).toBe(4);
    const [passed] = fdsOf(item.data) as [number];
    track(passed);
    write(passed, Buffer.from('ok'));
    expect(readNow(r)).toBe('ok');
  });

  it('other control messages go both ways as bytes: SCM_CREDENTIALS with SO_PASSCRED', () => {
    const [a, b] = testSocketpair(AF_UNIX, SOCK_DGRAM);
    b.setsockopt(SOL_SOCKET, SO_PASSCRED, 1);
    const ucred = Int32Array.of(process.pid, process.getuid?.() ?? 0, process.getgid?.() ?? 0);
    a.sendmsg(['c'], [{ level: SOL_SOCKET, type: SCM_CREDENTIALS, data: ucred }]);
    const [data, ancdata, msgFlags] = b.recvmsg(8, CMSG_SPACE(12));
    expect(data.toString()).toBe('c');
    expect(msgFlags).toBe(0);
    expect(ancdata).toHaveLength(1);
    const [item] = ancdata as [Ancillary<Buffer>];
    expect([item.level, item.type]).toEqual([SOL_SOCKET, SCM_CREDENTIALS]);
    expect(new Int32Array(Uint8Array.from(item.data).buffer)).toEqual(ucred);
  });

  it('recvmsgInto scatters one message over several buffers of every view type', () => {
    const [a, b] = testSocketpair(AF_UNIX, SOCK_SEQPACKET);
    const [r, w] = testPipe();
    a.sendFds(['abcdefghij'], [w]);
    const x = Buffer.alloc(3);
    const y = new Uint16Array(2);
    const z = new DataView(new ArrayBuffer(8), 2);
    const [n, ancdata, msgFlags] = recvmsgInto(b, [x, y, z], CMSG_SPACE(4));
    expect(n).toBe(10);
    expect(msgFlags).toBe(0);
    expect(x.toString()).toBe('abc');
    expect(Buffer.from(y.buffer).toString()).toBe('defg');
    expect(Buffer.from(z.buffer, 2, 3).toString()).toBe('hij');
    const [passed] = fdsOf((ancdata[0] as Ancillary<Buffer>).data) as [number];
    track(passed);
    write(passed, Buffer.from('!'));
    expect(readNow(r)).toBe('!');
  });

  it('MSG_CTRUNC when maxFds is too small: the fds that fit arrive, the kernel closes the rest, none leak', () => {
    const [a, b] = testSocketpair();
    const [r, w] = testPipe();
    const efd = testEventfd();
    const before = openFdCount();
    a.sendFds(['3'], [r, w, efd]);
    const [data, fds, msgFlags] = b.recvFds(8, 1);
    expect(data.toString()).toBe('3');
    expect(fds).toHaveLength(1);
    expect(msgFlags & MSG_CTRUNC).toBe(MSG_CTRUNC);
    expect(openFdCount()).toBe(before + 1);
    close(fds[0] as number);
    expect(openFdCount()).toBe(before);
    // maxFds 0 and a control buffer of 0 bytes: no fd arrives at all.
    a.sendFds(['a'], [r, w]);
    expect(b.recvFds(8, 0)).toEqual([Buffer.from('a'), [], MSG_CTRUNC, null]);
    a.sendFds(['b'], [r, w]);
    expect(b.recvmsg(8, 0)).toEqual([Buffer.from('b'), [], MSG_CTRUNC, null]);
    expect(openFdCount()).toBe(before);
  });

  it('MSG_TRUNC when a datagram does not fit; with MSG_TRUNC in flags the full length is reported', () => {
    const [a, b] = testSocketpair(AF_UNIX, SOCK_DGRAM);
    a.sendmsg(['0123456789']);
    const [data, , msgFlags] = b.recvmsg(4);
    expect(data.toString()).toBe('0123');
    expect(msgFlags & MSG_TRUNC).toBe(MSG_TRUNC);
    a.sendmsg(['0123456789']);
    const buf = Buffer.alloc(4);
    const [n] = b.recvmsgInto([buf], 0, MSG_TRUNC);
    expect(n).toBe(10);
    expect(buf.toString()).toBe('0123');
    a.sendmsg(['0123456789']);
    expect(b.recvmsg(4, 0, MSG_TRUNC)[0].toString()).toBe('0123');
  });

  it('MSG_PEEK leaves the message queued', () => {
    const [a, b] = testSocketpair(AF_UNIX, SOCK_SEQPACKET);
    a.sendmsg(['peek']);
    expect(b.recvmsg(8, 0, MSG_PEEK)[0].toString()).toBe('peek');
    expect(b.recvmsg(8)[0].toString()).toBe('peek');
  });

  it('a datagram socket sends to an address: given by the Socket, or asked of the kernel for a bare fd', () => {
    const server = trackClosable(new Socket(AF_UNIX, SOCK_DGRAM));
    const client = trackClosable(new Socket(AF_UNIX, SOCK_DGRAM));
    const serverPath = `\0iomux-msg-test-server-${process.pid}`;
    const clientPath = `\0iomux-msg-test-client-${process.pid}`;
    server.bind(serverPath);
    client.bind(clientPath);
    const [r, w] = testPipe();
    expect(client.sendFds(['to'], [w], 0, serverPath)).toBe(2);
    const [data, fds, , address] = server.recvFds(8, 1);
    for (const fd of fds) track(fd);
    expect(data.toString()).toBe('to');
    expect(address).toBe(clientPath);
    write(fds[0] as number, Buffer.from('dgram'));
    expect(readNow(r)).toBe('dgram');
    expect(sendmsg(client.fileno(), ['bare'], [], 0, serverPath)).toBe(4);
    expect(server.recvmsg(8)).toEqual([Buffer.from('bare'), [], 0, clientPath]);
  });

  it('on a stream socket, fds need at least one byte: an empty write sends nothing (Linux)', () => {
    const [a, b] = testSocketpair();
    const [, w] = testPipe();
    const before = openFdCount();
    expect(a.sendFds([], [w])).toBe(0);
    expect(b.tryRecvFds(8, 1)).toBeNull();
    expect(openFdCount()).toBe(before);
  });
});

describe('would-block', () => {
  it('the throwing forms raise BlockingIOError EAGAIN; the try forms return null, even on a blocking socket', () => {
    const [a, b] = testSocketpair();
    expect(b.tryRecvFds(8, 1)).toBeNull();
    expect(b.tryRecvmsg(8)).toBeNull();
    expect(b.tryRecvmsgInto([Buffer.alloc(8)])).toBeNull();
    b.setBlocking(false);
    expect(() => b.recvFds(8, 1)).toThrow(BlockingIOError);
    expect(() => b.recvmsg(8)).toThrow(expect.objectContaining({ code: 'EAGAIN', syscall: 'recvmsg' }));
    // Fill a's send buffer without blocking, then each send form says so.
    const chunk = Buffer.alloc(1 << 16);
    let sent = 0;
    for (let n = a.trySendmsg([chunk]); n !== null; n = a.trySendmsg([chunk])) sent += n;
    expect(sent).toBeGreaterThan(0);
    expect(a.trySendFds([chunk], [])).toBeNull();
    a.setBlocking(false);
    expect(() => a.sendmsg([chunk])).toThrow(expect.objectContaining({ code: 'EAGAIN', syscall: 'sendmsg' }));
    expect(() => a.sendFds([chunk], [a])).toThrow(BlockingIOError);
  });
});

describe('bad input: the exact error, nothing sent, no fd leaked', () => {
  type Call = () => unknown;
  function expectRefused(call: Call, error: Record<string, unknown>, sink: Socket): void {
    const before = openFdCount();
    expect(call).toThrow(expect.objectContaining(error));
    expectNothingQueued(sink);
    expect(openFdCount()).toBe(before);
  }
  const typeError = (message: string) => ({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message });
  const valueError = (message: string) => ({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', message });
  const rangeError = (message: string) => ({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message });

  it('buffers: not an array, an element of the wrong type, more than IOV_MAX', () => {
    const [a, b] = testSocketpair();
    expectRefused(
      () => a.sendmsg(Buffer.from('x') as unknown as Buffer[]),
      typeError('The "buffers" argument must be an instance of Array. Received an instance of Object'),
      b,
    );
    expectRefused(
      () => a.sendmsg([Buffer.from('x'), 1 as unknown as Buffer]),
      typeError('The "buffers[1]" argument must be an instance of Buffer, TypedArray or DataView. Received 1'),
      b,
    );
    expectRefused(
      () => a.sendmsg(new Array<Buffer>(1025).fill(Buffer.from('x'))),
      rangeError('The "buffers" argument must hold at most 1024 buffers (IOV_MAX). Received 1025'),
      b,
    );
    expect(a.sendmsg(new Array<Buffer>(1024).fill(Buffer.from('x')))).toBe(1024);
    expect(b.recv(2048).length).toBe(1024);
  });

  it('fds: wrong types, negative, not integers, more than SCM_MAX_FD', () => {
    const [a, b] = testSocketpair();
    const [, w] = testPipe();
    expectRefused(
      () => a.sendFds(['x'], 'x' as unknown as FdList),
      typeError('The "fds" argument must be an instance of Int32Array or Array. Received type string (\'x\')'),
      b,
    );
    expectRefused(
      () => a.sendFds(['x'], [w, '3'] as unknown as FdList),
      typeError('The "fds[1]" argument must be of type number. Received type string (\'3\')'),
      b,
    );
    expectRefused(
      () => a.sendFds(['x'], [w, -1]),
      rangeError('The "fds[1]" argument must be >= 0 and <= 2147483647. Received -1'),
      b,
    );
    expectRefused(
      () => a.sendFds(['x'], Int32Array.of(w, -1)),
      rangeError('The "fds[1]" argument must be >= 0 and <= 2147483647. Received -1'),
      b,
    );
    expectRefused(
      () => a.sendFds(['x'], [1.5]),
      rangeError('The "fds[0]" argument must be an integer. Received 1.5'),
      b,
    );
    expectRefused(
      () => a.sendFds(['x'], new Array<number>(SCM_MAX_FD + 1).fill(w)),
      rangeError('The "fds" argument must hold at most 253 fds (SCM_MAX_FD). Received 254'),
      b,
    );
    expectRefused(
      () => a.sendFds(['x'], new Int32Array(SCM_MAX_FD + 1).fill(w)),
      rangeError('The "fds" argument must hold at most 253 fds (SCM_MAX_FD). Received 254'),
      b,
    );
    expectRefused(
      () => a.sendFds(['x'], [{ fileno: () => -1 }]),
      rangeError('The "fds[0]" argument must be a file descriptor >= 0. Received -1'),
      b,
    );
    // SCM_MAX_FD itself is allowed, and each arrives as its own fd.
    const before = openFdCount();
    a.sendFds(['x'], new Array<number>(SCM_MAX_FD).fill(w));
    const [, fds] = b.recvFds(8, SCM_MAX_FD);
    expect(fds).toHaveLength(SCM_MAX_FD);
    expect(openFdCount()).toBe(before + SCM_MAX_FD);
    for (const fd of fds) close(fd);
  });

  it('flags, sizes and counts out of range', () => {
    const [a, b] = testSocketpair();
    expectRefused(
      () => a.sendmsg(['x'], [], -1),
      rangeError('The "flags" argument must be >= 0 and <= 2147483647. Received -1'),
      b,
    );
    expectRefused(
      () => a.sendmsg(['x'], [], 'x' as unknown as number),
      typeError('The "flags" argument must be of type number. Received type string (\'x\')'),
      b,
    );
    a.sendmsg(['kept']);
    expect(() => b.recvmsg(-1)).toThrow(
      expect.objectContaining(rangeError('The "bufsize" argument must be >= 0 and <= 2147483647. Received -1')),
    );
    expect(() => b.recvFds(8, SCM_MAX_FD + 1)).toThrow(
      expect.objectContaining(rangeError('The "maxFds" argument must be >= 0 and <= 253. Received 254')),
    );
    expect(() => b.recvmsg(8, 2 << 20)).toThrow(
      expect.objectContaining(rangeError('The "ancbufsize" argument must be >= 0 and <= 1048576. Received 2097152')),
    );
    expect(() => b.recvmsgInto([Buffer.alloc(1), 'x' as unknown as Buffer])).toThrow(
      expect.objectContaining(
        typeError(
          'The "buffers[1]" argument must be an instance of Buffer, TypedArray or DataView. Received type string (\'x\')',
        ),
      ),
    );
    expect(() => CMSG_SPACE(-1)).toThrow(RangeError);
    expect(CMSG_LEN(4)).toBeLessThanOrEqual(CMSG_SPACE(4));
    // None of those consumed the message.
    expect(b.recvmsg(8)[0].toString()).toBe('kept');
  });

  it('ancdata: wrong shapes, SCM_RIGHTS data that is not whole fds', () => {
    const [a, b] = testSocketpair();
    expectRefused(
      () => a.sendmsg(['x'], 5 as unknown as Ancillary[]),
      typeError('The "ancdata" argument must be an instance of Array. Received 5'),
      b,
    );
    expectRefused(
      () => a.sendmsg(['x'], [5 as unknown as Ancillary]),
      typeError('The "ancdata[0]" argument must be an object { level, type, data }. Received 5'),
      b,
    );
    expectRefused(
      () => a.sendmsg(['x'], [{ level: 'x', type: 1, data: Buffer.alloc(4) } as unknown as Ancillary]),
      typeError('The "ancdata[0].level" argument must be of type number. Received type string (\'x\')'),
      b,
    );
    expectRefused(
      () => a.sendmsg(['x'], [{ level: SOL_SOCKET, type: SCM_CREDENTIALS, data: [1, 2] } as unknown as Ancillary]),
      typeError(
        'The "ancdata[0].data" argument must be an instance of Buffer, TypedArray or DataView. Received an instance of Array',
      ),
      b,
    );
    expectRefused(
      () => a.sendmsg(['x'], [{ level: SOL_SOCKET, type: SCM_RIGHTS, data: Buffer.alloc(3) }]),
      valueError('The "ancdata[0].data" argument of an SCM_RIGHTS message must hold whole int32 fds. Received 3 bytes'),
      b,
    );
  });

  it('a socket argument that is no socket, or an address of the wrong shape', () => {
    const [a, b] = testSocketpair();
    expectRefused(
      () => sendFds({} as unknown as Socket, ['x'], []),
      typeError(
        'The "sock" argument must be an fd number or an object with a fileno() method. Received an instance of Object',
      ),
      b,
    );
    expectRefused(
      () => a.sendmsg(['x'], [], 0, ['127.0.0.1', 80]),
      typeError('The "address" argument must be a path string for AF_UNIX. Received an instance of Array'),
      b,
    );
  });

  it('kernel refusals: a passed fd that is not open, a closed socket, no socket, a datagram too large', () => {
    const [a, b] = testSocketpair();
    const [r, w] = pipe();
    close(r);
    close(w);
    expectRefused(() => a.sendFds(['x'], [r]), { name: 'OSError', code: 'EBADF', syscall: 'sendmsg' }, b);
    expectRefused(
      () => a.sendmsg(['x'], [{ level: SOL_SOCKET, type: 0x7fff, data: Buffer.alloc(4) }]),
      { code: 'EINVAL', syscall: 'sendmsg' },
      b,
    );
    const [pr, pw] = testPipe();
    expect(() => sendFds(pw, ['x'], [pr])).toThrow(expect.objectContaining({ code: 'ENOTSOCK', syscall: 'sendmsg' }));
    expect(() => recvFds(pr, 8, 1)).toThrow(expect.objectContaining({ code: 'ENOTSOCK', syscall: 'recvmsg' }));

    const [c, d] = testSocketpair(AF_UNIX, SOCK_DGRAM);
    const big = Buffer.alloc(4 * (c.getsockopt(SOL_SOCKET, SO_SNDBUF) as number));
    expectRefused(() => c.sendFds([big], [pr]), { code: 'EMSGSIZE', syscall: 'sendmsg' }, d);

    const [e, f] = testSocketpair();
    e.close();
    expect(() => e.sendFds(['x'], [pr])).toThrow(
      expect.objectContaining({
        name: 'OSError',
        code: 'EBADF',
        syscall: 'sendmsg',
        message: 'sendmsg EBADF (the socket is closed)',
      }),
    );
    f.close();
    expect(() => f.recvFds(8, 1)).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'recvmsg' }));
  });
});

describe('hardening: JavaScript that runs while the arguments are read', () => {
  /** An array whose element `index` is a getter that runs `effect` and returns `value`. */
  function withGetter<T>(items: T[], index: number, effect: () => void, value: T): T[] {
    Object.defineProperty(items, index, {
      enumerable: true,
      get() {
        effect();
        return value;
      },
    });
    return items;
  }

  function transfer(view: ArrayBufferView): void {
    structuredClone(view.buffer, { transfer: [view.buffer as ArrayBuffer] });
  }

  it('a getter that detaches an earlier buffer: a clean TypeError, nothing sent (TypeScript layer and addon)', () => {
    const [a, b] = testSocketpair();
    const first = new Uint8Array(new ArrayBuffer(1024)).fill(0x61);
    const buffers = withGetter([first, first], 1, () => transfer(first), new Uint8Array([0x62]));
    const detached = valueErrorOf('The "buffers[0]" argument must not be a view of a detached ArrayBuffer');
    expect(() => a.sendmsg(buffers)).toThrow(expect.objectContaining(detached));
    expectNothingQueued(b);
    // The addon on its own, given the getter array directly.
    const second = new Uint8Array(new ArrayBuffer(1024));
    const raw = withGetter([second, second], 1, () => transfer(second), new Uint8Array([0x62]));
    expect(() => native.sendmsg(a.fileno(), raw, undefined, 0, undefined, undefined, undefined)).toThrow(
      expect.objectContaining(detached),
    );
    expectNothingQueued(b);
  });

  it('getters in fds, ancdata and the address all run before any pointer is taken', () => {
    const [a, b] = testSocketpair();
    const [, w] = testPipe();
    const make = () => new Uint8Array(new ArrayBuffer(16)).fill(0x63);
    const detached = valueErrorOf('The "buffers[0]" argument must not be a view of a detached ArrayBuffer');

    let data = make();
    const fds = withGetter([w, w], 1, () => transfer(data), w);
    expect(() => native.sendmsg(a.fileno(), [data], fds, 0, undefined, undefined, undefined)).toThrow(
      expect.objectContaining(detached),
    );

    data = make();
    const cmsgData = make();
    const item = { level: SOL_SOCKET, type: SCM_CREDENTIALS, data: cmsgData };
    Object.defineProperty(item, 'type', {
      get() {
        transfer(cmsgData);
        return SCM_CREDENTIALS;
      },
    });
    expect(() => native.sendmsg(a.fileno(), [data], undefined, 0, undefined, undefined, [item])).toThrow(
      expect.objectContaining(
        valueErrorOf('The "ancdata[0].data" argument must not be a view of a detached ArrayBuffer'),
      ),
    );

    data = make();
    const address = withGetter<string | number>(['127.0.0.1', 9], 0, () => transfer(data), '127.0.0.1');
    expect(() => native.sendmsg(a.fileno(), [data], undefined, 0, address, AF_INET, undefined)).toThrow(
      expect.objectContaining(detached),
    );
    expectNothingQueued(b);
  });

  it('a getter that shrinks a resizable buffer: the length is read after it, so only what is left is sent', () => {
    const [a, b] = testSocketpair();
    const ab = new (
      ArrayBuffer as unknown as new (
        n: number,
        o: { maxByteLength: number },
      ) => ArrayBuffer & {
        resize(n: number): void;
      }
    )(1024, { maxByteLength: 1024 });
    const view = new Uint8Array(ab).fill(0x64);
    const buffers = withGetter([view, view], 1, () => ab.resize(2), new Uint8Array([0x65]));
    expect(a.sendmsg(buffers)).toBe(3);
    expect(b.recv(2048).toString()).toBe('dde');
  });

  it('a getter that detaches a receive buffer: a clean TypeError, and the message is still queued', () => {
    const [a, b] = testSocketpair(AF_UNIX, SOCK_SEQPACKET);
    const [, w] = testPipe();
    a.sendFds(['queued'], [w]);
    const target = new Uint8Array(new ArrayBuffer(16));
    const buffers = withGetter([target, target], 1, () => transfer(target), new Uint8Array(4));
    const before = openFdCount();
    expect(() => b.recvmsgInto(buffers, CMSG_SPACE(4))).toThrow(
      expect.objectContaining(valueErrorOf('The "buffers[0]" argument must not be a view of a detached ArrayBuffer')),
    );
    expect(openFdCount()).toBe(before);
    const [data, fds] = b.recvFds(16, 1);
    for (const fd of fds) track(fd);
    expect([data.toString(), fds.length]).toEqual(['queued', 1]);
  });

  it('a getter that throws: its error propagates, nothing is sent', () => {
    const [a, b] = testSocketpair();
    const boom = new Error('boom');
    const buffers = withGetter(
      [Buffer.from('x'), Buffer.from('y')],
      1,
      () => {
        throw boom;
      },
      Buffer.from('y'),
    );
    expect(() => a.sendmsg(buffers)).toThrow(boom);
    expectNothingQueued(b);
  });

  it('when the result cannot be built, every received fd is closed', () => {
    const [a, b] = testSocketpair();
    const [r, w] = testPipe();
    a.sendFds(['x'], [r, w]);
    const before = openFdCount();
    // A throwing setter on Array.prototype[1] makes the addon fail while it
    // fills its result array, after the kernel installed both fds.
    const boom = new Error('boom');
    let error: unknown;
    Object.defineProperty(Array.prototype, '1', {
      configurable: true,
      set() {
        throw boom;
      },
    });
    let result: NativeRecvmsg | null = null;
    try {
      result = native.recvmsg(b.fileno(), [Buffer.alloc(8)], CMSG_SPACE(8), 0);
    } catch (e) {
      error = e;
    } finally {
      delete (Array.prototype as unknown as Record<string, unknown>)['1'];
    }
    expect(result).toBeNull();
    expect(error).toBe(boom);
    expect(openFdCount()).toBe(before);
    // The message was taken: the fds did arrive, and were closed.
    expectNothingQueued(b);
  });
});

function valueErrorOf(message: string): Record<string, unknown> {
  return { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', message };
}

describe('passing fds to another process', () => {
  it('a child process gets a pipe end and a file over a Unix socket path, and writes through both', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'iomux-msg-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'fds.sock');
    const server = trackClosable(new Socket(AF_UNIX, SOCK_STREAM));
    server.bind(path);
    server.listen(1);
    const [r, w] = pipe();
    track(r);
    let writeEnd = w;
    onTestFinished(() => {
      if (writeEnd >= 0) close(writeEnd);
    });
    const filePath = join(dir, 'out.txt');
    const file = track(openSync(filePath, 'w+'));

    const child = spawn(process.execPath, [fixture('fd-receiver.mjs'), DIST, path], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    onTestFinished(() => {
      clearTimeout(killer);
      child.kill('SIGKILL');
    });

    // Each wait is bounded in the kernel; the child runs on its own meanwhile.
    expect(select([server], [], [], 10_000)[0]).toEqual([server]);
    const [conn] = server.accept();
    trackClosable(conn);
    expect(conn.sendFds(['hi'], [writeEnd, file])).toBe(2);
    close(writeEnd);
    writeEnd = -1;

    // EOF comes once the child has closed its copy: it owned a real fd.
    let text = '';
    for (;;) {
      const [ready] = select([r], [], [], 10_000);
      if (ready.length === 0) throw new Error(`no EOF from the child's pipe end; stderr: ${stderr}`);
      const buf = Buffer.alloc(256);
      const n = read(r, buf);
      if (n === 0) break;
      text += buf.subarray(0, n).toString();
    }
    expect(select([conn], [], [], 10_000)[0]).toEqual([conn]);
    expect(conn.recv(16).toString()).toBe('2');
    expect(await exited).toBe(0);
    expect(stderr).toBe('');
    expect(text).toBe(`hi 0 from ${child.pid}\n`);
    expect(readFileSync(filePath, 'utf8')).toBe(`hi 1 from ${child.pid}\n`);
  });
});
