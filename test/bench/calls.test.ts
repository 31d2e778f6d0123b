import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { type BaselineAddon, buildBaseline, buildMarks, loadBaseline, loadMarks } from '../../src/bench/baseline.js';
import { nodeIncludeDir } from '../../src/bench/floor.js';
import {
  AF_INET,
  EPOLL_CTL_ADD,
  EPOLLIN,
  type IPv4Address,
  O_NONBLOCK,
  POLLIN,
  pipe,
  SOCK_STREAM,
  Socket,
} from '../../src/sys/index.js';
import { signalEventfd, testEventfd, testPipe, testSocketpair, track, trackClosable } from '../helpers/fds.js';

const MESSAGE_BYTES = 64;
const EAGAIN = 11;
const EBADF = 9;
const EINVAL = 22;

function baseline(): BaselineAddon {
  const built = buildBaseline();
  if ('error' in built) throw new Error(built.error);
  return loadBaseline(built.path);
}

describe('the baseline addon of bench calls (plain C N-API, compiled on the fly)', () => {
  it('finds the running Node headers', () => {
    const dir = nodeIncludeDir();
    expect(dir).not.toBeNull();
    expect(readFileSync(join(dir as string, 'node_api.h'), 'utf8')).toContain('napi_module_register');
  });

  it('sends and receives on a socketpair: byte counts, -EAGAIN when empty, -EINVAL for bad arguments', () => {
    const base = baseline();
    const [a, b] = testSocketpair();
    const msg = Buffer.alloc(MESSAGE_BYTES, 1);
    const buf = Buffer.alloc(MESSAGE_BYTES * 2);
    expect(base.send(a.fileno(), msg, MESSAGE_BYTES)).toBe(MESSAGE_BYTES);
    // n beyond the buffer is cut to it.
    expect(base.send(a.fileno(), msg, 1000)).toBe(MESSAGE_BYTES);
    expect(base.send(a.fileno(), msg, 5)).toBe(5);
    expect(base.recv(b.fileno(), buf)).toBe(2 * MESSAGE_BYTES);
    expect(base.recv(b.fileno(), buf)).toBe(5);
    expect(base.recv(b.fileno(), buf)).toBe(-EAGAIN);
    const untyped = base as unknown as Record<string, (...args: unknown[]) => number>;
    expect(untyped['send']?.(a.fileno(), 'text', 4)).toBe(-EINVAL);
    expect(untyped['send']?.(a.fileno(), msg, -1)).toBe(-EINVAL);
    expect(untyped['recv']?.(b.fileno(), new Int32Array(4))).toBe(-EINVAL);
    expect(untyped['recv']?.()).toBe(-EINVAL);
    expect(base.recv(-1, buf)).toBe(-EBADF);
  });

  it('reads and writes a pipe, and closes fds', () => {
    const base = baseline();
    const [r, w] = testPipe(O_NONBLOCK);
    expect(base.write(w, Buffer.from('hello'), 5)).toBe(5);
    const buf = Buffer.alloc(16);
    expect(base.read(r, buf)).toBe(5);
    expect(buf.subarray(0, 5).toString()).toBe('hello');
    expect(base.read(r, buf)).toBe(-EAGAIN);
    // Not tracked: closed here, and its numbers may be reused at once.
    const [r2, w2] = pipe();
    expect(base.close(r2)).toBe(0);
    expect(base.close(w2)).toBe(0);
    expect(base.close(r2)).toBe(-EBADF);
  });

  it('accepts a pending loopback connection', () => {
    const base = baseline();
    const server = trackClosable(new Socket(AF_INET, SOCK_STREAM));
    server.bind(['127.0.0.1', 0]);
    server.listen(8);
    server.setBlocking(false);
    expect(base.accept(server.fileno())).toBe(-EAGAIN);
    const client = trackClosable(new Socket(AF_INET, SOCK_STREAM));
    client.connect(['127.0.0.1', (server.getsockname() as IPv4Address)[1]]);
    const fd = track(base.accept(server.fileno()));
    expect(fd).toBeGreaterThan(2);
  });

  it('the callgrind marks build where valgrind is installed, and do nothing outside it', () => {
    const built = buildMarks();
    if ('error' in built) {
      expect(built.error).toContain('callgrind.h');
      return;
    }
    const marks = loadMarks(built.path);
    expect(marks.onValgrind()).toBe(false);
    marks.toggle();
    marks.toggle();
    marks.dump('nothing');
  });

  it('epoll, poll and select report the one ready fd of three', () => {
    const base = baseline();
    const fds = [testEventfd(), testEventfd(), testEventfd()];
    const ready = fds[1] as number;
    signalEventfd(ready);
    const epfd = track(base.epollCreate());
    for (const fd of fds) expect(base.epollCtl(epfd, EPOLL_CTL_ADD, fd, EPOLLIN)).toBe(0);
    const out = new Int32Array(8);
    expect(base.epollWait(epfd, out, 0)).toBe(1);
    expect([out[0], out[1]]).toEqual([ready, EPOLLIN]);
    expect(base.epollWait(epfd, new Int32Array(1), 0)).toBe(-EINVAL);

    const pfds = new Int32Array(fds.flatMap((fd) => [fd, POLLIN]));
    expect(base.poll(pfds, 0)).toBe(1);
    expect(fds.map((_, i) => (pfds[2 * i + 1] as number) >>> 16)).toEqual([0, POLLIN, 0]);

    const selected = new Int32Array(3);
    expect(base.select(new Int32Array(fds), selected, 0)).toBe(1);
    expect(selected[0]).toBe(ready);
    // FD_SET beyond FD_SETSIZE would write past the set.
    expect(base.select(new Int32Array([1024]), selected, 0)).toBe(-EINVAL);
    expect(base.select(new Int32Array([-1]), selected, 0)).toBe(-EINVAL);
  });
});
