/**
 * Hostile cases for the stream and datagram transports: callbacks that act
 * on other transports within one iteration, Unix socket files, and the
 * other edges asyncio's transports hold (selector_events.py).
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { type Coroutine, sleep } from '../../src/coro/index.js';
import type { EventLoop, Protocol, Transport } from '../../src/loop/index.js';
import { socketpair } from '../../src/sys/index.js';
import { BACKENDS, testLoop } from '../helpers/loops.js';

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
});
