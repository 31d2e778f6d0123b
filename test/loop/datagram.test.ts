/**
 * Datagrams on the loop: sockRecvfrom / sockRecvfromInto / sockSendto
 * (CPython's test_sock_lowlevel) and createDatagramEndpoint with its
 * transport (test_events' test_create_datagram_endpoint*,
 * test_selector_events' datagram transport tests), on every backend and in
 * both run modes, over real UDP (127.0.0.1, ::1) and Unix datagram sockets.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';

import { CancelledError, type Coroutine, type Future, sleep } from '../../src/coro/index.js';
import { type DatagramEndpointOptions, LoopTrace, type TraceOperation } from '../../src/loop/index.js';
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  type OSError,
  SO_BROADCAST,
  SO_REUSEPORT,
  SO_SNDBUF,
  SOCK_DGRAM,
  SOCK_STREAM,
  SOL_SOCKET,
  Socket,
  type SocketAddress,
} from '../../src/sys/index.js';
import { CASES, closed, dgram, echoRecorder, Recorder, runIn, until } from '../helpers/datagrams.js';
import { trackClosable } from '../helpers/fds.js';
import { testLoop } from '../helpers/loops.js';
import { closedPort } from '../helpers/net.js';

function tmpDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'iomux-dgram-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const LOOPBACK: [string, number, string][] = [
  ['IPv4', AF_INET, '127.0.0.1'],
  ['IPv6', AF_INET6, '::1'],
];

describe.each(CASES)('sockRecvfrom / sockRecvfromInto / sockSendto on %s (%s)', (backend, mode) => {
  it.each(LOOPBACK)('echo over %s: the receive waits, the address is the sender', async (_name, family, host) => {
    const loop = testLoop(backend);
    const server = dgram(family, [host, 0]);
    const client = dgram(family, [host, 0]);
    const got = await runIn(loop, mode, function* () {
      const echo = loop.createTask(
        (function* (): Coroutine<void> {
          for (let i = 0; i < 3; i++) {
            const [data, from] = yield* loop.sockRecvfrom(server, 1024);
            yield* loop.sockSendto(server, Buffer.concat([Buffer.from('echo:'), data]), from as SocketAddress);
          }
        })(),
      );
      const replies: string[] = [];
      const buf = Buffer.alloc(64);
      for (const word of ['a', 'bb', 'ccc']) {
        // Let the server's receive wait first: the datagram arrives on readiness.
        yield* sleep(1);
        expect(yield* loop.sockSendto(client, word, server.getsockname())).toBe(word.length);
        const [n, from] = yield* loop.sockRecvfromInto(client, buf);
        expect(from).toEqual(server.getsockname());
        replies.push(buf.toString('utf8', 0, n));
      }
      yield* echo;
      return replies;
    });
    expect(got).toEqual(['echo:a', 'echo:bb', 'echo:ccc']);
  });

  it('Unix datagram sockets: bound paths, and an unbound sender has address null', async () => {
    const loop = testLoop(backend);
    const dir = tmpDir();
    const server = dgram(AF_UNIX, join(dir, 'server'));
    const bound = dgram(AF_UNIX, join(dir, 'client'));
    const unbound = dgram(AF_UNIX);
    const got = await runIn(loop, mode, function* () {
      const first = loop.sockRecvfrom(server, 100);
      yield* loop.sockSendto(bound, 'from a path', join(dir, 'server'));
      const a = yield* first;
      yield* loop.sockSendto(unbound, Buffer.from('from nowhere'), join(dir, 'server'));
      const b = yield* loop.sockRecvfrom(server, 100);
      return [a[0].toString(), a[1], b[0].toString(), b[1]];
    });
    expect(got).toEqual(['from a path', join(dir, 'client'), 'from nowhere', null]);
  });

  it('sockRecvfromInto takes at most nbytes; the rest of the datagram is discarded', async () => {
    const loop = testLoop(backend);
    const a = dgram(AF_INET, ['127.0.0.1', 0]);
    const b = dgram(AF_INET, ['127.0.0.1', 0]);
    const buf = Buffer.alloc(16, 0);
    const got = await runIn(loop, mode, function* () {
      yield* loop.sockSendto(a, 'hello world', b.getsockname());
      yield* loop.sockSendto(a, 'next', b.getsockname());
      const first = yield* loop.sockRecvfromInto(b, buf, 5);
      const second = yield* loop.sockRecvfrom(b, 100);
      return [first[0], buf.toString('utf8', 0, 6), second[0].toString()];
    });
    expect(got).toEqual([5, 'hello\0', 'next']);
  });

  it('cancelling a pending sockRecvfrom removes its watch and does not keep the loop alive', async () => {
    const loop = testLoop(backend);
    const sock = dgram(AF_INET, ['127.0.0.1', 0]);
    const other = dgram(AF_INET, ['127.0.0.1', 0]);
    const result = await runIn(loop, mode, function* () {
      const pending = loop.sockRecvfrom(sock, 100);
      yield* sleep(2);
      expect(pending.done()).toBe(false);
      expect(loop.stats().fds).toBe(1);
      pending.cancel();
      // Interest changes are batched: the fd leaves the selector within two iterations.
      yield* sleep(1);
      yield* sleep(1);
      const fds = loop.stats().fds;
      const hadReader = loop.removeReader(sock);
      // A datagram sent after the cancel is still there for the next receive.
      other.sendto('later', sock.getsockname());
      const [data] = yield* loop.sockRecvfrom(sock, 100);
      let cancelled = false;
      try {
        pending.result();
      } catch (e) {
        cancelled = e instanceof CancelledError;
      }
      return { fds, hadReader, data: data.toString(), cancelled };
    });
    expect(result).toEqual({ fds: 0, hadReader: false, data: 'later', cancelled: true });
  });

  it('a cancelled receive inside a Task: the Task ends with CancelledError and the loop stops', async () => {
    const loop = testLoop(backend);
    const sock = dgram(AF_UNIX);
    const out = await runIn(loop, mode, function* () {
      const task = loop.createTask(
        (function* (): Coroutine<unknown> {
          return yield* loop.sockRecvfrom(sock, 10);
        })(),
      );
      yield* sleep(1);
      task.cancel();
      try {
        yield* task;
        return 'not cancelled';
      } catch (e) {
        return e instanceof CancelledError ? 'cancelled' : String(e);
      }
    });
    expect(out).toBe('cancelled');
    expect(loop.isRunning()).toBe(false);
  });

  it('ECONNREFUSED from an ICMP port unreachable fails the next receive on a connected socket', async () => {
    const loop = testLoop(backend);
    const sock = dgram(AF_INET);
    sock.connect(['127.0.0.1', closedPort()]);
    const code = await runIn(loop, mode, function* () {
      const pending = loop.sockRecvfrom(sock, 10);
      sock.send('x');
      try {
        yield* pending;
        return 'received';
      } catch (e) {
        return (e as OSError).code;
      }
    });
    expect(code).toBe('ECONNREFUSED');
  });

  it('bad inputs throw at once and change nothing', async () => {
    const loop = testLoop(backend);
    const a = dgram(AF_INET, ['127.0.0.1', 0]);
    const b = dgram(AF_INET, ['127.0.0.1', 0]);
    await runIn(loop, mode, function* () {
      expect(() => loop.sockRecvfrom(a, -1)).toThrow(RangeError);
      expect(() => loop.sockRecvfrom(a, 1.5)).toThrow(RangeError);
      expect(() => loop.sockRecvfrom(a, '10' as unknown as number)).toThrow(TypeError);
      expect(() => loop.sockRecvfromInto(a, Buffer.alloc(4), -1)).toThrow(RangeError);
      expect(() => loop.sockRecvfromInto(a, Buffer.alloc(4), 5)).toThrow(RangeError);
      expect(() => loop.sockRecvfromInto(a, 'x' as unknown as Buffer)).toThrow(TypeError);
      expect(() => loop.sockSendto(a, 42 as unknown as string, b.getsockname())).toThrow(TypeError);
      expect(() => loop.sockSendto(a, 'x', '/a/path')).toThrow(TypeError);
      expect(() => loop.sockSendto(a, 'x', ['127.0.0.1', 65536])).toThrow(RangeError);
      expect(() => loop.sockSendto(a, 'x', ['::1', 1])).toThrow();
      expect(loop.stats().fds).toBe(0);
      yield* sleep(1);
      // Nothing was sent; the sockets still work.
      expect(b.tryRecvfrom(10)).toBeNull();
      yield* loop.sockSendto(a, 'ok', b.getsockname());
      const [data] = yield* loop.sockRecvfrom(b, 10);
      expect(data.toString()).toBe('ok');
    });
  });

  it('a closed socket fails the Future with EBADF', async () => {
    const loop = testLoop(backend);
    const sock = dgram(AF_INET);
    sock.close();
    const codes = await runIn(loop, mode, function* () {
      const out: string[] = [];
      for (const f of [
        loop.sockRecvfrom(sock, 10),
        loop.sockRecvfromInto(sock, Buffer.alloc(4)),
        loop.sockSendto(sock, 'x', ['127.0.0.1', 9]),
      ] as Future<unknown>[]) {
        try {
          yield* f;
        } catch (e) {
          out.push((e as OSError).code);
        }
      }
      return out;
    });
    expect(codes).toEqual(['EBADF', 'EBADF', 'EBADF']);
  });

  it('sockSendto waits for room when the peer does not read, and sends once it does', async () => {
    const loop = testLoop(backend);
    const dir = tmpDir();
    const receiver = dgram(AF_UNIX, join(dir, 'r'));
    const sender = dgram(AF_UNIX);
    const payload = Buffer.alloc(512, 7);
    const got = await runIn(loop, mode, function* () {
      // Fill the receiver's queue without reading.
      let sent = 0;
      while (sender.trySendto(payload, join(dir, 'r')) !== null) sent++;
      const blocked = loop.sockSendto(sender, 'last', join(dir, 'r'));
      // Linux reports the sender writable while the receiver is full: the
      // operation backs off rather than try a send every iteration.
      const before = loop.iterations;
      yield* sleep(50);
      const iterations = loop.iterations - before;
      const waited = !blocked.done();
      let received = 0;
      let last = '';
      while (last !== 'last') {
        const [data] = yield* loop.sockRecvfrom(receiver, 1024);
        last = data.toString();
        received++;
      }
      return { waited, iterations, n: yield* blocked, received, sent };
    });
    expect(got.waited).toBe(true);
    expect(got.iterations).toBeLessThan(200);
    expect(got.n).toBe(4);
    expect(got.received).toBe(got.sent + 1);
  });

  it('a trace records recvfrom, recvfromInto and sendto with the bytes they moved', async () => {
    const loop = testLoop(backend);
    const trace = new LoopTrace();
    loop.setTrace(trace);
    const a = dgram(AF_INET, ['127.0.0.1', 0]);
    const b = dgram(AF_INET, ['127.0.0.1', 0]);
    await runIn(loop, mode, function* () {
      const pending = loop.sockRecvfrom(b, 100);
      yield* loop.sockSendto(a, 'hello', b.getsockname());
      yield* pending;
      yield* loop.sockSendto(a, 'abc', b.getsockname());
      yield* loop.sockRecvfromInto(b, Buffer.alloc(10));
    });
    loop.setTrace(null);
    const got = trace
      .events()
      .filter((e): e is TraceOperation => e.kind === 'op')
      .map((o) => [o.op, o.bytes, o.outcome]);
    expect(got).toEqual([
      ['recvfrom', 5, 'ok'],
      ['sendto', 5, 'ok'],
      ['sendto', 3, 'ok'],
      ['recvfromInto', 3, 'ok'],
    ]);
  });

  it('cancelling a sockSendto that waits for a full Unix receiver leaves no watch and no timer', async () => {
    const loop = testLoop(backend);
    const dir = tmpDir();
    const receiver = dgram(AF_UNIX, join(dir, 'r'));
    const sender = dgram(AF_UNIX);
    const out = await runIn(loop, mode, function* () {
      let sent = 0;
      while (sender.trySendto('fill', join(dir, 'r')) !== null) sent++;
      const blocked = loop.sockSendto(sender, 'never', join(dir, 'r'));
      yield* sleep(20);
      blocked.cancel();
      yield* sleep(1);
      yield* sleep(1);
      const stats = loop.stats();
      let received = 0;
      while (receiver.tryRecvfrom(16) !== null) received++;
      return { fds: stats.fds, timers: stats.timers, received, sent, cancelled: blocked.cancelled() };
    });
    expect(out).toEqual({ fds: 0, timers: 0, received: out.sent, sent: out.sent, cancelled: true });
  });

  it('a blocking socket never blocks the loop (MSG_DONTWAIT): a timer runs while its receive waits', async () => {
    const loop = testLoop(backend);
    const sock = trackClosable(new Socket(AF_INET, SOCK_DGRAM));
    sock.bind(['127.0.0.1', 0]);
    expect(sock.getBlocking()).toBe(true);
    const peer = dgram(AF_INET);
    const order = await runIn(loop, mode, function* () {
      const log: string[] = [];
      const pending = loop.sockRecvfrom(sock, 10);
      pending.addDoneCallback(() => log.push('received'));
      loop.callLater(5, () => {
        log.push('timer');
        peer.sendto('late', sock.getsockname());
      });
      const [data] = yield* pending;
      log.push(data.toString());
      return log;
    });
    expect(order).toEqual(['timer', 'received', 'late']);
  });

  it('many datagrams in both directions over UDP arrive intact (loopback does not drop these)', async () => {
    const loop = testLoop(backend);
    const a = dgram(AF_INET, ['127.0.0.1', 0]);
    const b = dgram(AF_INET, ['127.0.0.1', 0]);
    const count = await runIn(loop, mode, function* () {
      let seen = 0;
      const reader = loop.createTask(
        (function* (): Coroutine<void> {
          for (let i = 0; i < 200; i++) {
            const [data, from] = yield* loop.sockRecvfrom(b, 100);
            expect(data.toString()).toBe(`m${i}`);
            expect(from).toEqual(a.getsockname());
            seen++;
          }
        })(),
      );
      for (let i = 0; i < 200; i++) {
        yield* loop.sockSendto(a, `m${i}`, b.getsockname());
        if (i % 20 === 0) yield* sleep(0);
      }
      yield* until(() => reader.done(), 'the reader');
      yield* reader;
      return seen;
    });
    expect(count).toBe(200);
  });
});

/**
 * A connected Unix datagram pair whose reader does not read: the
 * receiver's queue (net.unix.max_dgram_qlen) and a small SO_SNDBUF fill
 * after a few datagrams. Returns the receiver and the sender socket
 * (connected; for the `sock` option).
 */
function unreadUnixPair(): { receiver: Socket; sender: Socket; path: string } {
  const path = join(tmpDir(), 'receiver');
  const receiver = dgram(AF_UNIX, path);
  const sender = new Socket(AF_UNIX, SOCK_DGRAM);
  sender.setsockopt(SOL_SOCKET, SO_SNDBUF, 4096);
  sender.connect(path);
  return { receiver, sender, path };
}

describe.each(CASES)('createDatagramEndpoint on %s (%s)', (backend, mode) => {
  it.each(LOOPBACK)('echo between two endpoints over %s; callbacks in order', async (_name, _family, host) => {
    const loop = testLoop(backend);
    const result = await runIn(loop, mode, function* () {
      const [server, serverProto] = yield* loop.createDatagramEndpoint(echoRecorder, { localAddr: [host, 0] });
      // connectionMade ran before the endpoint resolved.
      expect(serverProto.events).toEqual(['made']);
      const serverAddr = server.getExtraInfo('sockname') as SocketAddress;
      const [client, clientProto] = yield* loop.createDatagramEndpoint(() => new Recorder(), {
        remoteAddr: [host, (serverAddr as [string, number])[1]],
      });
      for (const word of ['one', 'two', 'three']) client.sendto(word);
      yield* until(() => clientProto.datagrams.length === 3, 'the echoes');
      yield* closed(client, clientProto);
      yield* closed(server, serverProto);
      return { client: clientProto, server: serverProto, clientAddr: client.getExtraInfo('sockname') };
    });
    expect(result.client.datagrams.map((d) => d[0])).toEqual(['one', 'two', 'three']);
    expect(result.client.events).toEqual(['made', 'datagram', 'datagram', 'datagram', 'lost']);
    expect(result.server.events).toEqual(['made', 'datagram', 'datagram', 'datagram', 'lost']);
    expect(result.server.datagrams.map((d) => d[1])).toEqual(Array(3).fill(result.clientAddr));
  });

  it('echo over Unix datagram paths; an unbound sender arrives with address null', async () => {
    const loop = testLoop(backend);
    const dir = tmpDir();
    const serverPath = join(dir, 'server');
    const result = await runIn(loop, mode, function* () {
      const [server, serverProto] = yield* loop.createDatagramEndpoint(echoRecorder, { localAddr: serverPath });
      const [client, clientProto] = yield* loop.createDatagramEndpoint(() => new Recorder(), {
        localAddr: join(dir, 'client'),
        remoteAddr: serverPath,
      });
      expect(client.getExtraInfo('peername')).toBe(serverPath);
      expect(client.getExtraInfo('sockname')).toBe(join(dir, 'client'));
      client.sendto('over unix');
      yield* until(() => clientProto.datagrams.length === 1, 'the echo');
      // An unbound sender: the server gets null and cannot answer it (sendto needs an address).
      const anon = dgram(AF_UNIX);
      anon.sendto('anonymous', serverPath);
      yield* until(() => serverProto.datagrams.length === 2, 'the anonymous datagram');
      yield* closed(client, clientProto);
      yield* closed(server, serverProto);
      return { client: clientProto.datagrams, server: serverProto.datagrams, errors: serverProto.errors.length };
    });
    expect(result.client).toEqual([['over unix', serverPath]]);
    expect(result.server).toEqual([
      ['over unix', join(dir, 'client')],
      ['anonymous', null],
    ]);
  });

  it('resolves host names; binds the family asked for', async () => {
    const loop = testLoop(backend);
    const name = await runIn(loop, mode, function* () {
      const [t, p] = yield* loop.createDatagramEndpoint(() => new Recorder(), {
        localAddr: ['localhost', 0],
        family: AF_INET,
      });
      const sockname = t.getExtraInfo('sockname');
      yield* closed(t, p);
      return sockname;
    });
    expect((name as [string, number])[0]).toBe('127.0.0.1');
  });

  it('a connected endpoint: sendto without address, or with the peer address; another address is a TypeError', async () => {
    const loop = testLoop(backend);
    const peer = dgram(AF_INET, ['127.0.0.1', 0]);
    const other = dgram(AF_INET, ['127.0.0.1', 0]);
    const peerAddr = peer.getsockname();
    const got = await runIn(loop, mode, function* () {
      const [t, p] = yield* loop.createDatagramEndpoint(() => new Recorder(), {
        remoteAddr: ['127.0.0.1', (peerAddr as [string, number])[1]],
      });
      expect(t.getExtraInfo('peername')).toEqual(peerAddr);
      t.sendto('a');
      t.sendto('b', peerAddr);
      expect(() => t.sendto('c', other.getsockname())).toThrow(TypeError);
      expect(() => t.sendto('c', other.getsockname())).toThrow(/Invalid address/);
      const received: string[] = [];
      while (received.length < 2) received.push((yield* loop.sockRecvfrom(peer, 10))[0].toString());
      // Only the peer's datagrams reach a connected endpoint.
      other.sendto('ignored', t.getExtraInfo('sockname') as SocketAddress);
      peer.sendto('reply', t.getExtraInfo('sockname') as SocketAddress);
      yield* until(() => p.datagrams.length === 1, 'the reply');
      yield* sleep(5);
      yield* closed(t, p);
      return { received, datagrams: p.datagrams, otherGot: other.tryRecvfrom(10) };
    });
    expect(got.received).toEqual(['a', 'b']);
    expect(got.datagrams).toEqual([['reply', peerAddr]]);
    expect(got.otherGot).toBeNull();
  });

  it('ICMP port unreachable: errorReceived(ECONNREFUSED), and the transport stays open', async () => {
    const loop = testLoop(backend);
    const out = await runIn(loop, mode, function* () {
      const [t, p] = yield* loop.createDatagramEndpoint(() => new Recorder(), {
        remoteAddr: ['127.0.0.1', closedPort()],
      });
      t.sendto('anyone?');
      // The ICMP error arrives through loopback; the next receive (the fd
      // is readable with it) or send reports it.
      yield* until(() => p.errors.length > 0, 'errorReceived');
      const closing = t.isClosing();
      // Still usable: another send goes out (and is refused again).
      t.sendto('again');
      yield* until(() => p.errors.length > 1, 'the second errorReceived');
      yield* closed(t, p);
      return { events: p.events, closing };
    });
    expect(out.closing).toBe(false);
    expect(out.events[0]).toBe('made');
    expect(out.events.slice(1, 3)).toEqual(['error:ECONNREFUSED', 'error:ECONNREFUSED']);
    expect(out.events.at(-1)).toBe('lost');
    expect(out.events.filter((e) => e === 'lost')).toHaveLength(1);
  });

  it('backpressure: EAGAIN queues (never drops), pauses the protocol, then sends everything in order', async () => {
    const loop = testLoop(backend);
    const { receiver, sender } = unreadUnixPair();
    const COUNT = 300;
    const out = await runIn(loop, mode, function* () {
      const [t, p] = yield* loop.createDatagramEndpoint(() => new Recorder(), { sock: sender });
      t.setWriteBufferLimits(16 * 1024, 4 * 1024);
      expect(t.getWriteBufferLimits()).toEqual([4 * 1024, 16 * 1024]);
      for (let i = 0; i < COUNT; i++) t.sendto(`${String(i).padStart(4, '0')}:${'x'.repeat(200)}`);
      const queued = t.getWriteBufferSize();
      const paused = p.events.includes('pause');
      // Nothing reads yet: the queue stays.
      yield* sleep(10);
      const stillQueued = t.getWriteBufferSize();
      const received: string[] = [];
      while (received.length < COUNT) {
        const [data] = yield* loop.sockRecvfrom(receiver, 1024);
        received.push(data.toString().slice(0, 4));
      }
      yield* until(() => t.getWriteBufferSize() === 0, 'the queue to drain');
      yield* closed(t, p);
      return { queued, paused, stillQueued, received, events: p.events };
    });
    expect(out.queued).toBeGreaterThan(16 * 1024);
    expect(out.paused).toBe(true);
    expect(out.stillQueued).toBe(out.queued);
    expect(out.received).toEqual(Array.from({ length: COUNT }, (_, i) => String(i).padStart(4, '0')));
    expect(out.events).toEqual(['made', 'pause', 'resume', 'lost']);
    expect(receiver.tryRecvfrom(1024)).toBeNull();
  });

  it('unconnected Unix datagram to a full receiver: queued, sent in order once it reads, without spinning the loop', async () => {
    const loop = testLoop(backend);
    const dir = tmpDir();
    const receiver = dgram(AF_UNIX, join(dir, 'r'));
    const COUNT = 200;
    const out = await runIn(loop, mode, function* () {
      const [t, p] = yield* loop.createDatagramEndpoint(() => new Recorder(), {
        family: AF_UNIX,
        localAddr: join(dir, 's'),
      });
      t.setWriteBufferLimits(1024);
      for (let i = 0; i < COUNT; i++) t.sendto(`${String(i).padStart(4, '0')}${'y'.repeat(60)}`, join(dir, 'r'));
      const queued = t.getWriteBufferSize();
      // Linux reports this socket writable while the receiver is full: the
      // transport backs off rather than try a send every iteration.
      const before = loop.iterations;
      yield* sleep(50);
      const iterations = loop.iterations - before;
      const received: string[] = [];
      const senders = new Set<SocketAddress | null>();
      while (received.length < COUNT) {
        const [data, from] = yield* loop.sockRecvfrom(receiver, 1024);
        received.push(data.toString().slice(0, 4));
        senders.add(from);
      }
      yield* until(() => t.getWriteBufferSize() === 0, 'the queue to drain');
      yield* closed(t, p);
      return { queued, iterations, received, senders: [...senders], events: p.events };
    });
    expect(out.queued).toBeGreaterThan(1024);
    expect(out.iterations).toBeLessThan(200);
    expect(out.received).toEqual(Array.from({ length: COUNT }, (_, i) => String(i).padStart(4, '0')));
    expect(out.senders).toEqual([join(dir, 's')]);
    expect(out.events).toEqual(['made', 'pause', 'resume', 'lost']);
  });

  it('close() with queued datagrams sends them all, then calls connectionLost once, last', async () => {
    const loop = testLoop(backend);
    const { receiver, sender } = unreadUnixPair();
    const COUNT = 100;
    const out = await runIn(loop, mode, function* () {
      const [t, p] = yield* loop.createDatagramEndpoint(() => new Recorder(), { sock: sender });
      for (let i = 0; i < COUNT; i++) t.sendto(`d${i}`);
      expect(t.getWriteBufferSize()).toBeGreaterThan(0);
      t.close();
      t.close();
      expect(t.isClosing()).toBe(true);
      yield* sleep(5);
      const lostBeforeRead = p.lost;
      const received: string[] = [];
      while (received.length < COUNT) received.push((yield* loop.sockRecvfrom(receiver, 64))[0].toString());
      yield* until(() => p.lost > 0, 'connectionLost');
      yield* sleep(2);
      return { lostBeforeRead, received, events: p.events, sockClosed: (t.getExtraInfo('socket') as Socket).closed };
    });
    expect(out.lostBeforeRead).toBe(0);
    expect(out.received).toEqual(Array.from({ length: COUNT }, (_, i) => `d${i}`));
    expect(out.events).toEqual(['made', 'lost']);
    expect(out.sockClosed).toBe(true);
  });

  it('abort() drops the queued datagrams and calls connectionLost(null) once', async () => {
    const loop = testLoop(backend);
    const { receiver, sender } = unreadUnixPair();
    const out = await runIn(loop, mode, function* () {
      const [t, p] = yield* loop.createDatagramEndpoint(() => new Recorder(), { sock: sender });
      for (let i = 0; i < 100; i++) t.sendto(`d${i}`);
      expect(t.getWriteBufferSize()).toBeGreaterThan(0);
      t.abort();
      t.abort();
      t.close();
      expect(t.getWriteBufferSize()).toBe(0);
      yield* until(() => p.lost > 0, 'connectionLost');
      yield* sleep(5);
      // Ignored once lost, as asyncio ignores it.
      t.sendto('after');
      let delivered = 0;
      while (receiver.tryRecvfrom(64) !== null) delivered++;
      return { delivered, events: p.events };
    });
    expect(out.delivered).toBeGreaterThan(0);
    expect(out.delivered).toBeLessThan(100);
    expect(out.events).toEqual(['made', 'lost']);
  });

  it('close() inside datagramReceived stops reading; connectionLost follows once', async () => {
    const loop = testLoop(backend);
    const out = await runIn(loop, mode, function* () {
      const proto = new Recorder();
      proto.datagramReceived = function (this: Recorder, data: Buffer, addr: SocketAddress | null) {
        Recorder.prototype.datagramReceived.call(this, data, addr);
        this.transport?.close();
      };
      const [t] = yield* loop.createDatagramEndpoint(() => proto, { localAddr: ['127.0.0.1', 0] });
      const s = dgram(AF_INET);
      for (let i = 0; i < 5; i++) s.sendto(`m${i}`, t.getExtraInfo('sockname') as SocketAddress);
      yield* until(() => proto.lost > 0, 'connectionLost');
      return proto.events;
    });
    expect(out).toEqual(['made', 'datagram', 'lost']);
  });

  it('an exception in datagramReceived goes to the exception handler; the transport stays open', async () => {
    const loop = testLoop(backend);
    const reported: string[] = [];
    loop.setExceptionHandler((_l, context) =>
      reported.push(`${context.message}: ${(context.exception as Error).message}`),
    );
    const out = await runIn(loop, mode, function* () {
      const proto = new Recorder();
      let first = true;
      proto.datagramReceived = function (this: Recorder, data: Buffer, addr: SocketAddress | null) {
        if (first) {
          first = false;
          throw new Error('boom');
        }
        Recorder.prototype.datagramReceived.call(this, data, addr);
      };
      const [t] = yield* loop.createDatagramEndpoint(() => proto, { localAddr: ['127.0.0.1', 0] });
      const s = dgram(AF_INET);
      s.sendto('first', t.getExtraInfo('sockname') as SocketAddress);
      yield* until(() => reported.length > 0, 'the report');
      s.sendto('second', t.getExtraInfo('sockname') as SocketAddress);
      yield* until(() => proto.datagrams.length > 0, 'the second datagram');
      const closing = t.isClosing();
      yield* closed(t, proto);
      return { closing, datagrams: proto.datagrams };
    });
    expect(reported).toEqual(['Exception in datagramReceived: boom']);
    expect(out.closing).toBe(false);
    expect(out.datagrams.map((d) => d[0])).toEqual(['second']);
  });

  it('getExtraInfo, reusePort and allowBroadcast', async () => {
    const loop = testLoop(backend);
    const out = await runIn(loop, mode, function* () {
      const [a, pa] = yield* loop.createDatagramEndpoint(() => new Recorder(), {
        localAddr: ['127.0.0.1', 0],
        reusePort: true,
        allowBroadcast: true,
      });
      const port = (a.getExtraInfo('sockname') as [string, number])[1];
      const [b, pb] = yield* loop.createDatagramEndpoint(() => new Recorder(), {
        localAddr: ['127.0.0.1', port],
        reusePort: true,
      });
      let inUse = '';
      try {
        yield* loop.createDatagramEndpoint(() => new Recorder(), { localAddr: ['127.0.0.1', port] });
      } catch (e) {
        inUse = (e as OSError).code;
      }
      const sock = a.getExtraInfo('socket') as Socket;
      const info = {
        socketIs: sock instanceof Socket,
        reuse: sock.getsockopt(SOL_SOCKET, SO_REUSEPORT),
        broadcast: sock.getsockopt(SOL_SOCKET, SO_BROADCAST),
        bBroadcast: (b.getExtraInfo('socket') as Socket).getsockopt(SOL_SOCKET, SO_BROADCAST),
        peername: a.getExtraInfo('peername'),
        unknown: a.getExtraInfo('nope', 'fallback'),
        protocol: a.getProtocol() === pa,
        inUse,
      };
      yield* closed(a, pa);
      yield* closed(b, pb);
      return info;
    });
    expect(out).toEqual({
      socketIs: true,
      reuse: 1,
      broadcast: 1,
      bBroadcast: 0,
      peername: undefined,
      unknown: 'fallback',
      protocol: true,
      inUse: 'EADDRINUSE',
    });
  });

  it('bad inputs: clear errors at once, and nothing else changes', async () => {
    const loop = testLoop(backend);
    const stream = trackClosable(new Socket(AF_INET, SOCK_STREAM));
    const out = await runIn(loop, mode, function* () {
      const factory = (): Recorder => new Recorder();
      const bad: [unknown, new (...args: never[]) => Error][] = [
        [{}, TypeError],
        [{ family: 99 }, RangeError],
        [{ localAddr: ['127.0.0.1', 70000] }, RangeError],
        [{ localAddr: '/x', family: AF_INET }, TypeError],
        [{ localAddr: '/x', remoteAddr: ['127.0.0.1', 1] }, TypeError],
        [{ localAddr: 42 }, TypeError],
        [{ sock: stream }, TypeError],
        [{ sock: dgram(AF_INET), localAddr: ['127.0.0.1', 0] }, TypeError],
        [{ reusePort: 'yes', family: AF_INET }, TypeError],
        [{ locallAddr: ['127.0.0.1', 0] }, TypeError],
      ];
      for (const [options, kind] of bad) {
        expect(
          () => loop.createDatagramEndpoint(factory, options as DatagramEndpointOptions),
          JSON.stringify(options),
        ).toThrow(kind);
      }
      expect(() => loop.createDatagramEndpoint(42 as unknown as () => Recorder, { family: AF_INET })).toThrow(
        TypeError,
      );
      expect(loop.stats().fds).toBe(0);

      const [t, p] = yield* loop.createDatagramEndpoint(factory, { localAddr: ['127.0.0.1', 0] });
      const peer = dgram(AF_INET, ['127.0.0.1', 0]);
      const to = peer.getsockname();
      expect(() => t.sendto(42 as unknown as string, to)).toThrow(TypeError);
      expect(() => t.sendto('x')).toThrow(TypeError);
      expect(() => t.sendto('x', '/a/path')).toThrow(TypeError);
      expect(() => t.sendto('x', ['localhost', 1])).toThrow(TypeError);
      expect(() => t.sendto('x', ['::1', 1])).toThrow(TypeError);
      expect(() => t.sendto('x', ['127.0.0.1', 70000])).toThrow(RangeError);
      expect(() => t.setWriteBufferLimits(1, 2)).toThrow(RangeError);
      expect(() => t.setWriteBufferLimits(-1)).toThrow(RangeError);
      expect(() => t.setWriteBufferLimits('big' as unknown as number)).toThrow(TypeError);
      expect(t.getWriteBufferLimits()).toEqual([16 * 1024, 64 * 1024]);
      expect(t.getWriteBufferSize()).toBe(0);
      expect(t.isClosing()).toBe(false);
      yield* sleep(2);
      expect(peer.tryRecvfrom(10)).toBeNull();
      t.sendto('fine', to);
      const [data] = yield* loop.sockRecvfrom(peer, 10);
      // A bind that fails rejects the Future and leaves no socket behind.
      let bindError = '';
      try {
        yield* loop.createDatagramEndpoint(factory, {
          localAddr: ['127.0.0.1', (t.getExtraInfo('sockname') as [string, number])[1]],
        });
      } catch (e) {
        bindError = (e as OSError).code;
      }
      yield* closed(t, p);
      return { data: data.toString(), events: p.events, bindError };
    });
    expect(out).toEqual({ data: 'fine', events: ['made', 'lost'], bindError: 'EADDRINUSE' });
  });
});
