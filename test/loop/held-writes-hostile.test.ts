/**
 * Held writes (src/loop/held-writes.ts, stream-transport.ts) under attack:
 * what a callback wrote before the transport ended badly still leaves, as
 * it did when the write went out at once.
 */
import { describe, expect, it } from 'vitest';

import { type Coroutine, sleep } from '../../src/coro/index.js';
import {
  type Protocol,
  StreamReader,
  StreamReaderProtocol,
  StreamWriter,
  type Transport,
} from '../../src/loop/index.js';
import { AF_UNIX, SOCK_STREAM, type Socket } from '../../src/sys/index.js';
import { testSocketpair } from '../helpers/fds.js';
import { BACKENDS, testLoop } from '../helpers/loops.js';

// Fills `sock`'s way to its peer (its send buffer and the peer's receive buffer): the bytes it took.
function fill(sock: Socket): number {
  let total = 0;
  const big = Buffer.alloc(65536, 'f');
  for (let n = sock.trySend(big); n !== null; n = sock.trySend(big)) total += n;
  for (let n = sock.trySend('f'); n !== null; n = sock.trySend('f')) total += n;
  return total;
}

// Reads what `peer` has now: the bytes, and whether it saw the end.
function drainPeer(peer: Socket): { bytes: Buffer; eof: boolean } {
  const parts: Buffer[] = [];
  for (;;) {
    const buffer = Buffer.alloc(1 << 20);
    const n = peer.tryRecvInto(buffer);
    if (n === null) return { bytes: Buffer.concat(parts), eof: false };
    if (n === 0) return { bytes: Buffer.concat(parts), eof: true };
    parts.push(buffer.subarray(0, n));
  }
}

describe.each(BACKENDS)('held writes, hostile, on %s', (backend) => {
  it('a reply written by dataReceived before it throws still reaches the peer', () => {
    const loop = testLoop(backend);
    const reported: unknown[] = [];
    loop.setExceptionHandler((_l, context) => reported.push(context['exception']));
    const [mine, peer] = testSocketpair(AF_UNIX, SOCK_STREAM);
    mine.setBlocking(false);
    peer.setBlocking(false);
    const lost: unknown[] = [];
    function* main(): Coroutine<string> {
      const protocol: Protocol = {
        dataReceived(data: Buffer): void {
          transport?.write(`reply to ${data.toString()}`);
          throw new Error('protocol bug');
        },
        connectionLost(error: Error | null): void {
          lost.push(error);
        },
      };
      let transport: Transport | null = null;
      [transport] = yield* loop.connectAcceptedSocket(() => protocol, mine);
      peer.send(Buffer.from('req'));
      for (let i = 0; i < 50 && lost.length === 0; i++) yield* sleep(0.001);
      let got = '';
      try {
        got = peer.recv(100).toString();
      } catch {
        // nothing there
      }
      return got;
    }
    expect(loop.runUntilComplete(main())).toBe('reply to req');
    expect(lost.length).toBe(1);
    expect(reported.map((e) => (e as Error).message)).toEqual(['protocol bug']);
  });

  it('a greeting written by connectionMade before it throws still reaches the peer', () => {
    const loop = testLoop(backend);
    loop.setExceptionHandler(() => {});
    const [mine, peer] = testSocketpair(AF_UNIX, SOCK_STREAM);
    mine.setBlocking(false);
    peer.setBlocking(false);
    function* main(): Coroutine<string> {
      const protocol: Protocol = {
        connectionMade(transport: Transport): void {
          transport.write('hello');
          throw new Error('protocol bug');
        },
      };
      try {
        yield* loop.connectAcceptedSocket(() => protocol, mine);
      } catch {
        // connectionMade's exception
      }
      yield* sleep(0.005);
      let got = '';
      try {
        got = peer.recv(100).toString();
      } catch {
        // nothing there
      }
      return got;
    }
    expect(loop.runUntilComplete(main())).toBe('hello');
  });

  it('close() with a write held and the socket full: the write is buffered, pauses the protocol, then leaves before the end', () => {
    const loop = testLoop(backend);
    const [mine, peer] = testSocketpair(AF_UNIX, SOCK_STREAM);
    mine.setBlocking(false);
    peer.setBlocking(false);
    const filled = fill(mine);
    const log: string[] = [];
    let lost = 0;
    function* main(): Coroutine<{ size: number; during: string[]; bytes: number; tail: string; eof: boolean }> {
      const protocol: Protocol = {
        pauseWriting: () => log.push('pause'),
        resumeWriting: () => log.push('resume'),
        connectionLost: () => {
          lost++;
        },
      };
      const [transport] = yield* loop.connectAcceptedSocket(() => protocol, mine);
      transport.setWriteBufferLimits(0);
      transport.write('abc');
      const size = transport.getWriteBufferSize();
      const during = [...log];
      transport.close();
      const parts: Buffer[] = [];
      let eof = false;
      for (let i = 0; i < 500 && !eof; i++) {
        const got = drainPeer(peer);
        parts.push(got.bytes);
        eof = got.eof;
        yield* sleep(0.001);
      }
      const all = Buffer.concat(parts);
      return { size, during, bytes: all.length, tail: all.subarray(-3).toString(), eof };
    }
    const out = loop.runUntilComplete(main());
    expect(out).toEqual({ size: 0, during: [], bytes: filled + 3, tail: 'abc', eof: true });
    expect(log).toEqual(['pause', 'resume']);
    expect(lost).toBe(1);
  });

  it('writeEof() with a write held and the socket full: the bytes, then the end, the transport still open', () => {
    const loop = testLoop(backend);
    const [mine, peer] = testSocketpair(AF_UNIX, SOCK_STREAM);
    mine.setBlocking(false);
    peer.setBlocking(false);
    const filled = fill(mine);
    function* main(): Coroutine<{ bytes: number; tail: string; eof: boolean; closing: boolean }> {
      const [transport] = yield* loop.connectAcceptedSocket(() => ({}), mine);
      transport.write('xy');
      transport.write('z');
      transport.writeEof();
      const parts: Buffer[] = [];
      let eof = false;
      for (let i = 0; i < 500 && !eof; i++) {
        const got = drainPeer(peer);
        parts.push(got.bytes);
        eof = got.eof;
        yield* sleep(0.001);
      }
      const all = Buffer.concat(parts);
      const closing = transport.isClosing();
      transport.close();
      return { bytes: all.length, tail: all.subarray(-3).toString(), eof, closing };
    }
    expect(loop.runUntilComplete(main())).toEqual({ bytes: filled + 3, tail: 'xyz', eof: true, closing: false });
  });

  it('a held write the peer refuses at release (EPIPE): connectionLost gets the error once, no exception handler', () => {
    const loop = testLoop(backend);
    const reported: unknown[] = [];
    loop.setExceptionHandler((_l, context) => reported.push(context));
    const [mine, peer] = testSocketpair(AF_UNIX, SOCK_STREAM);
    mine.setBlocking(false);
    const lost: unknown[] = [];
    function* main(): Coroutine<void> {
      const protocol: Protocol = { connectionLost: (e) => lost.push(e) };
      const [transport] = yield* loop.connectAcceptedSocket(() => protocol, mine);
      peer.close();
      transport.write('into the void');
      for (let i = 0; i < 50 && lost.length === 0; i++) yield* sleep(0.001);
      yield* sleep(0.005);
    }
    loop.runUntilComplete(main());
    expect(lost.length).toBe(1);
    expect((lost[0] as { code?: string }).code).toMatch(/EPIPE|ECONNRESET/);
    expect(reported).toEqual([]);
  });

  it('a Task that writes and returns: the bytes are out when runUntilComplete returns, and when run() resolves', async () => {
    const loop = testLoop(backend);
    const [mine, peer] = testSocketpair(AF_UNIX, SOCK_STREAM);
    mine.setBlocking(false);
    peer.setBlocking(false);
    function* open(): Coroutine<Transport> {
      const [transport] = yield* loop.connectAcceptedSocket(() => ({}), mine);
      return transport;
    }
    const transport = loop.runUntilComplete(open());
    function* last(word: string): Coroutine<void> {
      yield* sleep(0);
      transport.write(word);
    }
    loop.runUntilComplete(last('blocking '));
    const first = drainPeer(peer).bytes.toString();
    await loop.run(last('cooperative'));
    const second = drainPeer(peer).bytes.toString();
    loop.runUntilComplete(
      (function* (): Coroutine<void> {
        transport.close();
        yield* sleep(0.001);
      })(),
    );
    expect([first, second]).toEqual(['blocking ', 'cooperative']);
  });

  it('cooperative: held writes of protocol callbacks and direct ones from promise continuations and Node timers keep their order', async () => {
    const loop = testLoop(backend);
    const [mine, peer] = testSocketpair(AF_UNIX, SOCK_STREAM);
    mine.setBlocking(false);
    peer.setBlocking(false);
    let count = 0;
    const got: Buffer[] = [];
    await loop.run(async () => {
      let transport: Transport | null = null;
      const protocol: Protocol = {
        dataReceived(data: Buffer): void {
          count++;
          transport?.write(`<${data.toString()}>`);
          Promise.resolve().then(() => transport?.write(`p${data.toString()}`));
          setTimeout(() => transport?.write(`t${data.toString()}`), 0);
          transport?.write(`[${data.toString()}]`);
        },
      };
      [transport] = await loop.connectAcceptedSocket(() => protocol, mine);
      for (let i = 0; i < 5; i++) {
        peer.send(String(i));
        const deadline = Date.now() + 2000;
        while (count === i && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1));
        await new Promise((r) => setTimeout(r, 2));
        got.push(drainPeer(peer).bytes);
      }
      transport.close();
    });
    const text = Buffer.concat(got).toString();
    expect(text).toBe([0, 1, 2, 3, 4].map((i) => `<${i}>[${i}]p${i}t${i}`).join(''));
  });

  it.each([false, true])('stats (debug %s): the time a run spends releasing its held writes is in runMs', (debug) => {
    const loop = testLoop(backend, { debug });
    loop.setExceptionHandler(() => {});
    const [mine, peer] = testSocketpair(AF_UNIX, SOCK_STREAM);
    mine.setBlocking(false);
    peer.setBlocking(false);
    fill(mine);
    const SPIN_MS = 60;
    function* main(): Coroutine<number> {
      const protocol: Protocol = {
        // Called as the release buffers what the full socket did not take.
        pauseWriting(): void {
          const until = Date.now() + SPIN_MS;
          while (Date.now() < until) {
            // spin
          }
        },
      };
      const [transport] = yield* loop.connectAcceptedSocket(() => protocol, mine);
      transport.setWriteBufferLimits(0);
      const before = loop.stats().runMs;
      transport.write('x');
      yield* sleep(0);
      const took = loop.stats().runMs - before;
      transport.abort();
      return took;
    }
    expect(loop.runUntilComplete(main())).toBeGreaterThanOrEqual(SPIN_MS - 1);
  });

  it("StreamWriter: drain() after a write the peer refuses (EPIPE) reports the connection's loss, as unheld", () => {
    const loop = testLoop(backend);
    const [mine, peer] = testSocketpair(AF_UNIX, SOCK_STREAM);
    mine.setBlocking(false);
    function* main(): Coroutine<string> {
      const reader = new StreamReader();
      const protocol = new StreamReaderProtocol(reader, null, loop);
      const [transport] = yield* loop.connectAcceptedSocket(() => protocol, mine);
      const writer = new StreamWriter(transport, protocol, reader, loop);
      peer.close();
      writer.write('into the void');
      try {
        yield* writer.drain();
      } catch (error) {
        return (error as { code?: string }).code ?? String(error);
      }
      writer.close();
      return 'drained';
    }
    expect(loop.runUntilComplete(main())).toMatch(/EPIPE|ECONNRESET/);
  });

  it('StreamWriter: drain() after a write the full socket cannot take waits (high-water mark 0) until the peer reads', () => {
    const loop = testLoop(backend);
    const [mine, peer] = testSocketpair(AF_UNIX, SOCK_STREAM);
    mine.setBlocking(false);
    peer.setBlocking(false);
    const filled = fill(mine);
    function* main(): Coroutine<{ drainedFirst: boolean; bytes: number }> {
      const reader = new StreamReader();
      const protocol = new StreamReaderProtocol(reader, null, loop);
      const [transport] = yield* loop.connectAcceptedSocket(() => protocol, mine);
      const writer = new StreamWriter(transport, protocol, reader, loop);
      transport.setWriteBufferLimits(0);
      writer.write('x');
      const drained = writer.drain();
      yield* sleep(0.005);
      const drainedFirst = drained.done();
      let bytes = 0;
      for (let i = 0; i < 500 && !drained.done(); i++) {
        bytes += drainPeer(peer).bytes.length;
        yield* sleep(0.001);
      }
      yield* drained;
      bytes += drainPeer(peer).bytes.length;
      writer.close();
      return { drainedFirst, bytes };
    }
    expect(loop.runUntilComplete(main())).toEqual({ drainedFirst: false, bytes: filled + 1 });
  });

  it('closing: what resumeWriting writes as the buffer empties still leaves before the end', () => {
    const loop = testLoop(backend);
    const [mine, peer] = testSocketpair(AF_UNIX, SOCK_STREAM);
    mine.setBlocking(false);
    peer.setBlocking(false);
    const filled = fill(mine);
    let lost = 0;
    function* main(): Coroutine<{ bytes: number; tail: string; eof: boolean }> {
      let transport: Transport | null = null;
      const protocol: Protocol = {
        resumeWriting(): void {
          transport?.write('trailer');
        },
        connectionLost(): void {
          lost++;
        },
      };
      [transport] = yield* loop.connectAcceptedSocket(() => protocol, mine);
      transport.setWriteBufferLimits(0);
      transport.write('abc');
      yield* sleep(0);
      // 'abc' is buffered now (the socket is full), the protocol paused.
      transport.close();
      const parts: Buffer[] = [];
      let eof = false;
      for (let i = 0; i < 500 && !eof; i++) {
        const got = drainPeer(peer);
        parts.push(got.bytes);
        eof = got.eof;
        yield* sleep(0.001);
      }
      const all = Buffer.concat(parts);
      return { bytes: all.length, tail: all.subarray(-10).toString(), eof };
    }
    expect(loop.runUntilComplete(main())).toEqual({ bytes: filled + 10, tail: 'abctrailer', eof: true });
    expect(lost).toBe(1);
  });
});
