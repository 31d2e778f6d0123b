import { describe, expect, it } from 'vitest';

import {
  BlockingIOError,
  close,
  EFD_NONBLOCK,
  EFD_SEMAPHORE,
  eventfd,
  O_NONBLOCK,
  pipe,
  read,
  syscallCount,
  tryRead,
  tryWrite,
  write,
} from '../../src/sys/index.js';
import { FDINFO_CLOEXEC, fdFlags, isOpen, testEventfd, testPipe, track } from '../helpers/fds.js';

function u64(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
}

describe('eventfd()', () => {
  it('is an 8-byte counter: writes add, a read returns and resets it', () => {
    const fd = testEventfd(3);
    expect(fdFlags(fd) & FDINFO_CLOEXEC).toBe(FDINFO_CLOEXEC);
    write(fd, u64(4n));
    const buf = Buffer.alloc(8);
    expect(read(fd, buf)).toBe(8);
    expect(buf.readBigUInt64LE()).toBe(7n);
  });

  it('EFD_SEMAPHORE reads 1 at a time; EFD_NONBLOCK raises BlockingIOError when zero', () => {
    const fd = testEventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK);
    const buf = Buffer.alloc(8);
    read(fd, buf);
    expect(buf.readBigUInt64LE()).toBe(1n);
    read(fd, buf);
    expect(() => read(fd, buf)).toThrow(BlockingIOError);
    expect(() => read(fd, buf)).toThrow(expect.objectContaining({ code: 'EAGAIN', syscall: 'read', errno: -11 }));
    expect(tryRead(fd, buf)).toBeNull();
  });

  it('refuses unknown flags and bad initial values', () => {
    expect(() => eventfd(0, 0x40000000)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => eventfd(-1)).toThrow(RangeError);
    expect(() => eventfd('1' as unknown as number)).toThrow(TypeError);
  });

  it('a short buffer is EINVAL from the kernel', () => {
    const fd = testEventfd(1);
    expect(() => read(fd, Buffer.alloc(4))).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });
});

describe('pipe(), read(), write(), close()', () => {
  it('moves bytes with offsets and lengths', () => {
    const [r, w] = testPipe();
    expect(fdFlags(r) & FDINFO_CLOEXEC).toBe(FDINFO_CLOEXEC);
    expect(fdFlags(w) & FDINFO_CLOEXEC).toBe(FDINFO_CLOEXEC);
    expect(write(w, Buffer.from('--hello--'), 2, 5)).toBe(5);
    const buf = Buffer.alloc(10, '.');
    expect(read(r, buf, 3, 4)).toBe(4);
    expect(buf.toString()).toBe('...hell...');
    expect(read(r, new Uint8Array(10))).toBe(1);
  });

  it('accepts any TypedArray or DataView; offsets are in bytes', () => {
    const [r, w] = testPipe();
    write(w, new Uint32Array([0x01020304]));
    const view = new DataView(new ArrayBuffer(8));
    expect(read(r, view, 4)).toBe(4);
    expect(view.getUint32(4, true)).toBe(0x01020304);
  });

  it('read() returns 0 at end of file', () => {
    const [r, w] = testPipe();
    close(w);
    expect(read(r, Buffer.alloc(1))).toBe(0);
  });

  it('O_NONBLOCK pipes raise BlockingIOError; the try forms return null', () => {
    const [r, w] = testPipe(O_NONBLOCK);
    expect(() => read(r, Buffer.alloc(1))).toThrow(expect.objectContaining({ name: 'BlockingIOError' }));
    const big = Buffer.alloc(1 << 20);
    let written = 0;
    for (;;) {
      const n = tryWrite(w, big);
      if (n === null) break;
      written += n;
    }
    expect(written).toBeGreaterThan(0);
    expect(() => write(w, big)).toThrow(expect.objectContaining({ code: 'EAGAIN', syscall: 'write' }));
  });

  it('bounds-checks every buffer argument and changes nothing on failure', () => {
    const [r, w] = testPipe();
    write(w, Buffer.from('abc'));
    const buf = Buffer.alloc(4);
    expect(() => read(r, buf, 5)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => read(r, buf, 1, 4)).toThrow(RangeError);
    expect(() => read(r, buf, 0, -1)).toThrow(RangeError);
    expect(() => read(r, buf, 1.5)).toThrow(RangeError);
    expect(() => read(r, buf, Number.NaN)).toThrow(RangeError);
    expect(() => read(r, [0, 0] as unknown as Buffer)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
    );
    expect(() => write(w, 'abc' as unknown as Buffer)).toThrow(TypeError);
    expect(() => read(-1, buf)).toThrow(RangeError);
    expect(() => read(2 ** 31, buf)).toThrow(RangeError);
    expect(() => pipe(0x1)).toThrow(RangeError);
    expect(read(r, buf)).toBe(3);
    expect(buf.subarray(0, 3).toString()).toBe('abc');
  });

  it('a detached ArrayBuffer is an empty range, never a crash', () => {
    const [r, w] = testPipe();
    write(w, Buffer.from('x'));
    const ab = new ArrayBuffer(8);
    const view = new Uint8Array(ab);
    structuredClone(ab, { transfer: [ab] });
    expect(view.byteLength).toBe(0);
    expect(read(r, view)).toBe(0);
    expect(() => read(r, view, 0, 1)).toThrow(RangeError);
  });

  it('close() of an fd that is not open raises EBADF', () => {
    const fd = eventfd();
    close(fd);
    expect(isOpen(fd)).toBe(false);
    expect(() => close(fd)).toThrow(expect.objectContaining({ name: 'OSError', code: 'EBADF', syscall: 'close' }));
    expect(() => read(fd, Buffer.alloc(8))).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });

  it('track() keeps the helper honest: an fd it closes is gone', () => {
    const fd = track(eventfd());
    expect(isOpen(fd)).toBe(true);
  });
});

describe('syscallCount', () => {
  it('counts each syscall the addon makes on this thread', () => {
    const [r, w] = pipe();
    const before = syscallCount();
    write(w, Buffer.from('x'));
    read(r, Buffer.alloc(1));
    expect(syscallCount() - before).toBe(2);
    close(r);
    close(w);
    expect(syscallCount() - before).toBe(4);
  });
});
