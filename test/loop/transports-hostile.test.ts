/**
 * Hostile cases for the stream and datagram transports: callbacks that act
 * on other transports within one iteration, Unix socket files, and the
 * other edges asyncio's transports hold (selector_events.py).
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeCertificates } from '../../bench/src/tls-certs.js';
import { type Coroutine, sleep } from '../../src/coro/index.js';
import type { DatagramProtocol, EventLoop, Protocol, Transport } from '../../src/loop/index.js';
import { AF_INET, AF_UNIX, close, eventfd, SOCK_DGRAM, SOCK_STREAM, Socket, socketpair } from '../../src/sys/index.js';
import { newFds, openFdTable } from '../helpers/fds.js';
import { BACKENDS, testLoop } from '../helpers/loops.js';
import { listenLoopback } from '../helpers/net.js';

/** Records what it receives; on data, does `onData` (to another transport). */
class Peer implements Protocol {
  readonly events: string[] = [];
  transport: Transport | null = null;
  onData: (() => void) | null = null;

  connectionMade(transport: Transport): void {
    this.transport = transport;
    this.events.push('made');
  }

  dataReceived(data: Buffer): void {
    this.events.push(`data:${data.toString()}`);
    this.onData?.();
  }

  eofReceived(): boolean {
    this.events.push('eof');
    return false;
  }

  connectionLost(): void {
    this.events.push('lost');
  }
}

function* pairOfTransports(loop: EventLoop): Coroutine<{ a: Peer; b: Peer; ends: ReturnType<typeof socketpair>[] }> {
  const p1 = socketpair();
  const p2 = socketpair();
  const [, a] = yield* loop.connectAcceptedSocket(() => new Peer(), p1[0]);
  const [, b] = yield* loop.connectAcceptedSocket(() => new Peer(), p2[0]);
  return { a, b, ends: [p1, p2] };
}

describe.each(BACKENDS)('hostile transports on %s', (backend) => {
  it('a transport closed by another callback of the same iteration gets no dataReceived after close()', () => {
    const loop = testLoop(backend);
    function* main(): Coroutine<[Peer, Peer]> {
      const { a, b, ends } = yield* pairOfTransports(loop);
      // Whichever reads first closes the other: the other must not read after that.
      a.onData = () => b.transport?.close();
      b.onData = () => a.transport?.close();
      // Both readable before the loop waits: both in one select's ready list.
      ends[0]?.[1].send('x');
      ends[1]?.[1].send('y');
      yield* sleep(30);
      for (const [, peer] of ends) peer.close();
      a.transport?.close();
      b.transport?.close();
      yield* sleep(10);
      return [a, b];
    }
    const [a, b] = loop.runUntilComplete(main());
    const reads = [...a.events, ...b.events].filter((e) => e.startsWith('data')).length;
    expect(reads).toBe(1);
  });

  it('a transport paused by another callback of the same iteration gets no dataReceived until resumed', () => {
    const loop = testLoop(backend);
    function* main(): Coroutine<[Peer, Peer, number]> {
      const { a, b, ends } = yield* pairOfTransports(loop);
      a.onData = () => b.transport?.pauseReading();
      b.onData = () => a.transport?.pauseReading();
      ends[0]?.[1].send('x');
      ends[1]?.[1].send('y');
      yield* sleep(30);
      const reads = [...a.events, ...b.events].filter((e) => e.startsWith('data')).length;
      a.onData = null;
      b.onData = null;
      a.transport?.resumeReading();
      b.transport?.resumeReading();
      yield* sleep(30);
      for (const [, peer] of ends) peer.close();
      yield* sleep(10);
      return [a, b, reads];
    }
    const [a, b, readsWhilePaused] = loop.runUntilComplete(main());
    expect(readsWhilePaused).toBe(1);
    // Nothing lost: each got its byte once resumed, then eof and lost.
    expect([a.events, b.events].map((e) => e.filter((x) => x.startsWith('data')).length)).toEqual([1, 1]);
  });

  it('closing a Unix server leaves alone the socket file another server has bound at its path since', () => {
    const loop = testLoop(backend);
    const path = join(mkdtempSync(join(tmpdir(), 'iomux-hostile-')), 'srv.sock');
    function* main(): Coroutine<[boolean, string]> {
      const first = yield* loop.createUnixServer(() => new Peer(), path);
      // A second server takes the path over (the first one's file is removed as stale).
      const second = yield* loop.createUnixServer(() => new Peer(), path);
      first.close();
      const kept = existsSync(path);
      // The second server still answers at its path.
      const [transport] = yield* loop.createUnixConnection(() => new Peer(), path);
      const peer = String(transport.getExtraInfo('peername'));
      transport.close();
      second.close();
      yield* second.waitClosed();
      return [kept, peer];
    }
    expect(loop.runUntilComplete(main())).toEqual([true, path]);
    expect(existsSync(path)).toBe(false);
  });

  it('createConnection cancelled in its TLS handshake leaves no fd, watch or timer behind', () => {
    const loop = testLoop(backend);
    const certs = makeCertificates();
    const { port } = listenLoopback(); // accepts in the kernel, never says hello back
    const before = openFdTable();
    function* main(): Coroutine<[string, number, number]> {
      yield* sleep(1);
      const base = loop.stats();
      const connecting = loop.createConnection(() => new Peer(), '127.0.0.1', port, {
        ssl: { ca: certs.ca.cert },
        serverHostname: 'localhost',
      });
      yield* sleep(30);
      connecting.cancel();
      yield* sleep(5);
      yield* sleep(5);
      const stats = loop.stats();
      return [connecting.cancelled() ? 'cancelled' : 'not cancelled', stats.fds - base.fds, stats.timers - base.timers];
    }
    expect(loop.runUntilComplete(main())).toEqual(['cancelled', 0, 0]);
    expect(newFds(before)).toEqual([]);
  });

  it('sendto with an address the kernel cannot take throws at once even behind queued datagrams; the queue survives', () => {
    const loop = testLoop(backend);
    const dir = mkdtempSync(join(tmpdir(), 'iomux-hostile-'));
    const receiver = new Socket(AF_UNIX, SOCK_DGRAM);
    receiver.bind(join(dir, 'r'));
    const events: string[] = [];
    function* main(): Coroutine<[string[], number, number, string[]]> {
      const [t] = yield* loop.createDatagramEndpoint(
        (): DatagramProtocol => ({
          errorReceived: (e) => events.push(`error:${e.message}`),
          connectionLost: (e) => events.push(`lost:${e === null ? 'null' : e.message}`),
        }),
        { family: AF_UNIX, localAddr: join(dir, 's') },
      );
      // Fill the receiver until datagrams queue.
      for (let i = 0; i < 2000 && t.getWriteBufferSize() === 0; i++) t.sendto(Buffer.alloc(512), join(dir, 'r'));
      const queued = t.getWriteBufferSize();
      const thrown: string[] = [];
      for (const bad of [`/${'x'.repeat(200)}`, 'a\0b']) {
        try {
          t.sendto('bad', bad);
        } catch (e) {
          thrown.push((e as Error).name);
        }
      }
      const after = t.getWriteBufferSize();
      // The receiver reads everything: the queue drains, the transport stays up.
      receiver.setBlocking(false);
      for (let i = 0; i < 200 && t.getWriteBufferSize() > 0; i++) {
        try {
          for (;;) receiver.recv(1024);
        } catch {
          // drained for now
        }
        yield* sleep(5);
      }
      const left = t.getWriteBufferSize();
      t.close();
      yield* sleep(5);
      return [thrown, after - queued, left, [...events]];
    }
    try {
      const [thrown, grown, left, seen] = loop.runUntilComplete(main());
      expect(thrown).toEqual(['RangeError', 'TypeError']);
      expect(grown).toBe(0);
      expect(left).toBe(0);
      expect(seen).toEqual(['lost:null']);
    } finally {
      receiver.close();
    }
  });

  it('createUnixServer serves options.sock (path null), and refuses path and sock together instead of ignoring sock', () => {
    const loop = testLoop(backend);
    const dir = mkdtempSync(join(tmpdir(), 'iomux-hostile-'));
    const listening = new Socket(AF_UNIX, SOCK_STREAM);
    listening.bind(join(dir, 'mine.sock'));
    listening.listen(8);
    const other = join(dir, 'other.sock');
    // Both given: asyncio's ValueError; before, sock was ignored and `other` bound.
    expect(() => loop.createUnixServer(() => new Peer(), other, { sock: listening })).toThrow(/mutually exclusive/);
    expect(existsSync(other)).toBe(false);
    function* main(): Coroutine<string[]> {
      const server = yield* loop.createUnixServer(() => new Peer(), null, { sock: listening });
      const [transport, client] = yield* loop.createUnixConnection(() => new Peer(), join(dir, 'mine.sock'));
      yield* sleep(5);
      transport.close();
      yield* sleep(5);
      server.close();
      yield* server.waitClosed();
      return client.events;
    }
    expect(loop.runUntilComplete(main())).toEqual(['made', 'lost']);
    expect(listening.closed).toBe(true);
  });

  it('TLS: bytes the client sends with its handshake (OpenSSL read them ahead) reach the server protocol at once', () => {
    const loop = testLoop(backend);
    const certs = makeCertificates();
    function* main(): Coroutine<string[]> {
      const log: string[] = [];
      const server = yield* loop.createServer(
        () => {
          const p = new Peer();
          p.onData = () => p.transport?.write('pong');
          return p;
        },
        '127.0.0.1',
        0,
        { ssl: { cert: certs.server.cert, key: certs.server.key } },
      );
      const port = (server.sockets[0] as Socket).getsockname()[1] as number;
      for (let i = 0; i < 5; i++) {
        const client = new Peer();
        // Written in connectionMade: it leaves with the client's Finished, in one segment.
        client.connectionMade = function (this: Peer, transport: Transport): void {
          Peer.prototype.connectionMade.call(this, transport);
          transport.write(`ping${i}`);
        };
        const [transport] = yield* loop.createConnection(() => client, '127.0.0.1', port, {
          ssl: { ca: certs.ca.cert },
          serverHostname: 'localhost',
        });
        const deadline = loop.time() + 2000;
        while (!client.events.includes('data:pong') && loop.time() < deadline) yield* sleep(1);
        log.push(client.events.includes('data:pong') ? 'pong' : 'stuck');
        transport.abort();
      }
      server.close();
      server.abortClients();
      yield* server.waitClosed();
      return log;
    }
    expect(loop.runUntilComplete(main())).toEqual(['pong', 'pong', 'pong', 'pong', 'pong']);
  });

  it('connectAcceptedSocket never loses bytes a cancelled sockRecv took (io_uring keeps them): refused, or delivered', () => {
    const loop = testLoop(backend);
    function* main(): Coroutine<string> {
      const listening = new Socket(AF_INET, SOCK_STREAM);
      listening.bind(['127.0.0.1', 0]);
      listening.listen(8);
      listening.setBlocking(false);
      const client = new Socket(AF_INET, SOCK_STREAM);
      client.setBlocking(false);
      try {
        yield* loop.sockConnect(client, listening.getsockname());
        const [accepted] = yield* loop.sockAccept(listening);
        const pending = loop.sockRecv(accepted, 100);
        yield* sleep(5);
        client.send('hello');
        // Let the kernel complete the ring's receive before the cancel reaches it.
        const until = Date.now() + 5;
        while (Date.now() < until) {
          // spin
        }
        pending.cancel();
        yield* sleep(5);
        let outcome: string;
        const got: string[] = [];
        try {
          const [transport] = yield* loop.connectAcceptedSocket(
            () => ({ dataReceived: (d: Buffer) => void got.push(d.toString()) }),
            accepted,
          );
          client.send(' world');
          yield* sleep(20);
          transport.close();
          outcome = `delivered:${got.join('')}`;
        } catch (e) {
          // The kept bytes are the next sockRecv's.
          const kept = (yield* loop.sockRecv(accepted, 100)).toString();
          accepted.close();
          outcome = `refused:${(e as Error).name}:${kept}`;
        }
        yield* sleep(2);
        return pending.cancelled() ? outcome : 'the receive completed first';
      } finally {
        client.close();
        listening.close();
      }
    }
    const outcome = loop.runUntilComplete(main());
    expect(['delivered:hello world', 'refused:InvalidStateError:hello', 'the receive completed first']).toContain(
      outcome,
    );
  });

  it('a Server over a listening socket serves the connection a cancelled sockAccept took (io_uring keeps it)', () => {
    const loop = testLoop(backend);
    function* main(): Coroutine<[boolean, number]> {
      const listening = new Socket(AF_INET, SOCK_STREAM);
      listening.bind(['127.0.0.1', 0]);
      listening.listen(8);
      listening.setBlocking(false);
      const client = new Socket(AF_INET, SOCK_STREAM);
      client.setBlocking(false);
      try {
        const pending = loop.sockAccept(listening);
        yield* sleep(5);
        try {
          client.connect(listening.getsockname());
        } catch {
          // EINPROGRESS
        }
        // Let the kernel complete the ring's accept before the cancel reaches it.
        const until = Date.now() + 5;
        while (Date.now() < until) {
          // spin
        }
        pending.cancel();
        yield* sleep(5);
        const made: Peer[] = [];
        const server = yield* loop.createServer(
          () => {
            const p = new Peer();
            made.push(p);
            return p;
          },
          undefined,
          undefined,
          { sock: listening },
        );
        for (let i = 0; i < 100 && made.length === 0; i++) yield* sleep(2);
        server.close();
        server.abortClients();
        yield* server.waitClosed();
        return [pending.cancelled(), made.length];
      } finally {
        client.close();
        listening.close();
      }
    }
    const [cancelled, served] = loop.runUntilComplete(main());
    // Cancelled before the accept completed, or not: either way the one connection is served.
    expect(cancelled ? served : 1).toBe(1);
  });

  it('createDatagramEndpoint never loses a datagram a cancelled sockRecv took (io_uring keeps it): refused, or delivered', () => {
    const loop = testLoop(backend);
    function* main(): Coroutine<string> {
      const a = new Socket(AF_INET, SOCK_DGRAM);
      a.bind(['127.0.0.1', 0]);
      a.setBlocking(false);
      const b = new Socket(AF_INET, SOCK_DGRAM);
      b.bind(['127.0.0.1', 0]);
      try {
        const pending = loop.sockRecv(a, 100);
        yield* sleep(5);
        b.sendto(Buffer.from('one'), a.getsockname());
        // Let the kernel complete the ring's receive before the cancel reaches it.
        const until = Date.now() + 5;
        while (Date.now() < until) {
          // spin
        }
        pending.cancel();
        yield* sleep(5);
        const got: string[] = [];
        let outcome: string;
        try {
          const [t] = yield* loop.createDatagramEndpoint(
            (): DatagramProtocol => ({ datagramReceived: (d) => void got.push(d.toString()) }),
            { sock: a },
          );
          b.sendto(Buffer.from('two'), a.getsockname());
          yield* sleep(20);
          t.close();
          outcome = `delivered:${got.join(',')}`;
        } catch (e) {
          const kept = (yield* loop.sockRecv(a, 100)).toString();
          outcome = `refused:${(e as Error).name}:${kept}`;
        }
        yield* sleep(2);
        return pending.cancelled() ? outcome : 'the receive completed first';
      } finally {
        a.close();
        b.close();
      }
    }
    expect(['delivered:one,two', 'refused:InvalidStateError:one', 'the receive completed first']).toContain(
      loop.runUntilComplete(main()),
    );
  });

  it('a datagram transport refuses a protocol that is not an object, and keeps its own', () => {
    const loop = testLoop(backend);
    function* main(): Coroutine<[string, boolean, string[]]> {
      const got: string[] = [];
      const protocol: DatagramProtocol = { datagramReceived: (d) => void got.push(d.toString()) };
      const [t] = yield* loop.createDatagramEndpoint(() => protocol, { localAddr: ['127.0.0.1', 0] });
      let thrown = 'nothing thrown';
      try {
        t.setProtocol(null as unknown as DatagramProtocol);
      } catch (e) {
        thrown = (e as Error).name;
      }
      const kept = t.getProtocol() === protocol;
      t.sendto('still here', t.getExtraInfo('sockname') as [string, number]);
      for (let i = 0; i < 100 && got.length === 0; i++) yield* sleep(1);
      t.close();
      yield* sleep(1);
      return [thrown, kept, got];
    }
    expect(loop.runUntilComplete(main())).toEqual(['TypeError', true, ['still here']]);
  });

  it('TLS: getExtraInfo keeps peercert after the transport closed, as sockname and peername', () => {
    const loop = testLoop(backend);
    const certs = makeCertificates();
    function* main(): Coroutine<[boolean, boolean, boolean]> {
      const server = yield* loop.createServer(() => new Peer(), '127.0.0.1', 0, {
        ssl: { cert: certs.server.cert, key: certs.server.key },
      });
      const port = (server.sockets[0] as Socket).getsockname()[1] as number;
      const [t] = yield* loop.createConnection(() => new Peer(), '127.0.0.1', port, {
        ssl: { ca: certs.ca.cert },
        serverHostname: 'localhost',
      });
      const [first] = yield* loop.createConnection(() => new Peer(), '127.0.0.1', port, {
        ssl: { ca: certs.ca.cert },
        serverHostname: 'localhost',
      });
      const open = first.getExtraInfo('peercert');
      first.close();
      const peername = t.getExtraInfo('peername');
      // Closed without anyone having asked for its peercert before.
      t.close();
      yield* sleep(5);
      const closed = t.getExtraInfo('peercert');
      server.close();
      server.abortClients();
      yield* server.waitClosed();
      return [
        open !== undefined,
        JSON.stringify(closed) === JSON.stringify(open),
        t.getExtraInfo('peername') === peername,
      ];
    }
    expect(loop.runUntilComplete(main())).toEqual([true, true, true]);
  });

  it('createDatagramEndpoint fails with a TypeError when the factory makes no protocol, and nothing reaches the handler', () => {
    const loop = testLoop(backend);
    const handled: string[] = [];
    loop.setExceptionHandler((_loop, context) => void handled.push(String(context.message)));
    const before = openFdTable();
    function* main(): Coroutine<string> {
      let outcome = 'resolved';
      try {
        yield* loop.createDatagramEndpoint(() => null as unknown as DatagramProtocol, { localAddr: ['127.0.0.1', 0] });
      } catch (e) {
        outcome = (e as Error).name;
      }
      yield* sleep(5);
      return outcome;
    }
    expect(loop.runUntilComplete(main())).toBe('TypeError');
    expect(handled).toEqual([]);
    expect(newFds(before)).toEqual([]);
  });

  it('connectionMade throwing under createConnection fails its Future, and is not reported to the handler as well', () => {
    const loop = testLoop(backend);
    const handled: string[] = [];
    loop.setExceptionHandler((_loop, context) => void handled.push(String(context.message)));
    function* main(): Coroutine<[string, string[]]> {
      const serverSide: Peer[] = [];
      const server = yield* loop.createServer(
        () => {
          const p = new Peer();
          serverSide.push(p);
          return p;
        },
        '127.0.0.1',
        0,
      );
      const port = (server.sockets[0] as Socket).getsockname()[1] as number;
      const events: string[] = [];
      let outcome = 'resolved';
      try {
        yield* loop.createConnection(
          (): Protocol => ({
            connectionMade: () => {
              events.push('made');
              throw new Error('made boom');
            },
            connectionLost: (e) => void events.push(`lost:${e?.message}`),
          }),
          '127.0.0.1',
          port,
        );
      } catch (e) {
        outcome = (e as Error).message;
      }
      for (let i = 0; i < 100 && !serverSide[0]?.events.includes('lost'); i++) yield* sleep(2);
      server.close();
      yield* server.waitClosed();
      return [outcome, events];
    }
    expect(loop.runUntilComplete(main())).toEqual(['made boom', ['made', 'lost:made boom']]);
    expect(handled).toEqual([]);
  });
});

describe('hostile transports on select', () => {
  it('a server whose listening socket select cannot watch (fd >= FD_SETSIZE) fails and leaves no socket or file', () => {
    // Push new fds past FD_SETSIZE.
    const fillers: number[] = [];
    try {
      while (fillers.length < 1100 && (fillers.at(-1) ?? 0) < 1030) fillers.push(eventfd());
      const loop = testLoop('select');
      const path = join(mkdtempSync(join(tmpdir(), 'iomux-hostile-')), 'srv.sock');
      const before = openFdTable();
      function* main(): Coroutine<string[]> {
        const out: string[] = [];
        try {
          yield* loop.createServer(() => new Peer(), '127.0.0.1', 0);
          out.push('served');
        } catch (e) {
          out.push((e as Error).name);
        }
        try {
          yield* loop.createUnixServer(() => new Peer(), path);
          out.push('served');
        } catch (e) {
          out.push((e as Error).name);
        }
        return out;
      }
      expect(loop.runUntilComplete(main())).toEqual(['RangeError', 'RangeError']);
      expect(newFds(before)).toEqual([]);
      expect(existsSync(path)).toBe(false);
    } finally {
      for (const fd of fillers) close(fd);
    }
  });
});
