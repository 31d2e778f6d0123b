/**
 * Datagrams in batches: receiveBatch / datagramAt / senderAt
 * (src/loop/datagram-batch.ts), and what the datagram transport does with a
 * batch -- its datagrams delivered with no syscall between them, the
 * replies sent from datagramReceived gathered and sent together once the
 * batch ends, in order, with close(), abort() and send errors inside a
 * batch behaving as they do outside one. Every backend, both run modes,
 * real UDP on loopback.
 */
import { describe, expect, it } from 'vitest';

import type { Coroutine } from '../../src/coro/index.js';
import { datagramAt, READS_PER_WAKE, receiveBatch, senderAt } from '../../src/loop/datagram-batch.js';
import type { DatagramTransport, EventLoop } from '../../src/loop/index.js';
import { AF_INET, AF_INET6, type OSError, type Socket, type SocketAddress, syscallCount } from '../../src/sys/index.js';
import { CASES, dgram, Recorder, runIn, until } from '../helpers/datagrams.js';
import { testLoop } from '../helpers/loops.js';

describe('receiveBatch, datagramAt, senderAt', () => {
  it.each([
    ['IPv4', AF_INET, '127.0.0.1'],
    ['IPv6', AF_INET6, '::1'],
  ])('%s: each datagram copied out whole, with its sender as sockRecvfrom gives it', (_name, family, host) => {
    const server = dgram(family, [host, 0]);
    const a = dgram(family, [host, 0]);
    const b = dgram(family, [host, 0]);
    expect(receiveBatch(server.fileno())).toBe(false);
    a.sendto('from a', server.getsockname());
    b.sendto(Buffer.alloc(60_000, 9), server.getsockname());
    a.sendto('', server.getsockname());
    expect(receiveBatch(server.fileno())).toBe(3);
    const first = datagramAt(0);
    expect(first.toString()).toBe('from a');
    expect(datagramAt(1)).toEqual(Buffer.alloc(60_000, 9));
    expect(datagramAt(2).length).toBe(0);
    expect([senderAt(0), senderAt(1), senderAt(2)]).toEqual([a.getsockname(), b.getsockname(), a.getsockname()]);
    // Copies: the next batch does not change what was handed out.
    b.sendto('later', server.getsockname());
    expect(receiveBatch(server.fileno())).toBe(1);
    expect(first.toString()).toBe('from a');
    // Each sender is an array of its own: changing one changes no other.
    const sender = senderAt(0) as [string, number];
    sender[1] = 1;
    expect(senderAt(0)).toEqual(b.getsockname());
  });

  it(`takes at most ${READS_PER_WAKE} datagrams; the rest wait for the next batch`, () => {
    const server = dgram(AF_INET, ['127.0.0.1', 0]);
    const client = dgram(AF_INET);
    for (let i = 0; i < READS_PER_WAKE + 5; i++) client.sendto(`d${i}`, server.getsockname());
    expect(receiveBatch(server.fileno())).toBe(READS_PER_WAKE);
    expect(datagramAt(READS_PER_WAKE - 1).toString()).toBe(`d${READS_PER_WAKE - 1}`);
    expect(receiveBatch(server.fileno())).toBe(5);
    expect(datagramAt(0).toString()).toBe(`d${READS_PER_WAKE}`);
    expect(receiveBatch(server.fileno())).toBe(false);
  });
});

/** Sends `words` from `from` to `to`: queued at the receiver before its loop reads, so they make one batch. */
function sendAll(from: Socket, to: SocketAddress, words: readonly string[]): void {
  for (const word of words) from.sendto(word, to);
}

/** Everything waiting at `sock`, as text. */
function drain(sock: Socket): string[] {
  const got: string[] = [];
  for (let d = sock.tryRecvfrom(70_000); d !== null; d = sock.tryRecvfrom(70_000)) got.push(d[0].toString());
  return got;
}

function* endpoint(loop: EventLoop, protocol: Recorder): Coroutine<[DatagramTransport, SocketAddress]> {
  const [transport] = yield* loop.createDatagramEndpoint(() => protocol, { localAddr: ['127.0.0.1', 0] });
  return [transport, transport.getExtraInfo('sockname') as SocketAddress];
}

describe.each(CASES)('a datagram transport receiving a batch on %s (%s)', (backend, mode) => {
  it('delivers its datagrams with no syscall between them; the replies go out after the last, in order', async () => {
    const loop = testLoop(backend);
    const out = await runIn(loop, mode, function* () {
      const proto = new Recorder();
      proto.echo = true;
      const counts: number[] = [];
      let seenDuringBatch = -1;
      const [a, b] = [dgram(AF_INET, ['127.0.0.1', 0]), dgram(AF_INET, ['127.0.0.1', 0])];
      proto.datagramReceived = function (this: Recorder, data, addr) {
        counts.push(syscallCount());
        Recorder.prototype.datagramReceived.call(this, data, addr);
        if (this.datagrams.length === 20) seenDuringBatch = drain(a).length + drain(b).length;
      };
      const [t, to] = yield* endpoint(loop, proto);
      const words = Array.from({ length: 10 }, (_, i) => `w${i}`);
      sendAll(a, to, words);
      sendAll(
        b,
        to,
        words.map((w) => w.toUpperCase()),
      );
      yield* until(() => proto.datagrams.length === 20, 'the batch');
      const echoes: [string[], string[]] = [[], []];
      yield* until(() => {
        echoes[0].push(...drain(a));
        echoes[1].push(...drain(b));
        return echoes[0].length + echoes[1].length === 20;
      }, 'the echoes');
      t.close();
      yield* until(() => proto.lost > 0, 'connectionLost');
      return { counts, seenDuringBatch, echoes, words };
    });
    expect(new Set(out.counts).size, 'no syscall between the datagrams of one batch').toBe(1);
    expect(out.seenDuringBatch, 'no reply out before the batch ended').toBe(0);
    expect(out.echoes).toEqual([out.words, out.words.map((w) => w.toUpperCase())]);
  });

  it('close() inside the batch: the replies sent before it still go out, then connectionLost once, last', async () => {
    const loop = testLoop(backend);
    const out = await runIn(loop, mode, function* () {
      const proto = new Recorder();
      proto.echo = true;
      proto.datagramReceived = function (this: Recorder, data, addr) {
        Recorder.prototype.datagramReceived.call(this, data, addr);
        if (this.datagrams.length === 3) this.transport?.close();
      };
      const [, to] = yield* endpoint(loop, proto);
      const client = dgram(AF_INET, ['127.0.0.1', 0]);
      sendAll(client, to, ['a', 'b', 'c', 'd', 'e']);
      yield* until(() => proto.lost > 0, 'connectionLost');
      const echoes: string[] = [];
      yield* until(() => echoes.push(...drain(client)) >= 3, 'the echoes');
      return { events: proto.events, echoes };
    });
    expect(out.echoes).toEqual(['a', 'b', 'c']);
    expect(out.events).toEqual(['made', 'datagram', 'datagram', 'datagram', 'lost']);
  });

  it('abort() inside the batch: the replies sent before it go out as they would have at once; connectionLost(null) once', async () => {
    const loop = testLoop(backend);
    const out = await runIn(loop, mode, function* () {
      const proto = new Recorder();
      proto.echo = true;
      proto.datagramReceived = function (this: Recorder, data, addr) {
        Recorder.prototype.datagramReceived.call(this, data, addr);
        if (this.datagrams.length === 2) this.transport?.abort();
        // After the abort a send is ignored, as asyncio does.
        if (this.datagrams.length === 2) this.transport?.sendto('ignored', addr);
      };
      const [t, to] = yield* endpoint(loop, proto);
      const client = dgram(AF_INET, ['127.0.0.1', 0]);
      sendAll(client, to, ['a', 'b', 'c']);
      yield* until(() => proto.lost > 0, 'connectionLost');
      const echoes: string[] = [];
      yield* until(() => echoes.push(...drain(client)) >= 2, 'the echoes');
      return { events: proto.events, echoes, size: t.getWriteBufferSize() };
    });
    expect(out.echoes).toEqual(['a', 'b']);
    expect(out.events).toEqual(['made', 'datagram', 'datagram', 'lost']);
    expect(out.size).toBe(0);
  });

  it('a reply the kernel refuses goes to errorReceived; the others, and what errorReceived sends, go out in order', async () => {
    const loop = testLoop(backend);
    const out = await runIn(loop, mode, function* () {
      const proto = new Recorder();
      proto.datagramReceived = function (this: Recorder, data, addr) {
        Recorder.prototype.datagramReceived.call(this, data, addr);
        // Too large for UDP: EMSGSIZE, from the kernel, once the batch's replies go out.
        this.transport?.sendto(data.toString() === 'big' ? Buffer.alloc(70_000) : data, addr);
      };
      let client: Socket | null = null;
      proto.errorReceived = function (this: Recorder, exc) {
        Recorder.prototype.errorReceived.call(this, exc);
        this.transport?.sendto('after the error', (client as Socket).getsockname());
      };
      const [t, to] = yield* endpoint(loop, proto);
      client = dgram(AF_INET, ['127.0.0.1', 0]);
      sendAll(client, to, ['one', 'big', 'three']);
      const echoes: string[] = [];
      yield* until(() => echoes.push(...drain(client as Socket)) >= 3, 'the replies');
      const closing = t.isClosing();
      t.close();
      yield* until(() => proto.lost > 0, 'connectionLost');
      return { events: proto.events, echoes, closing, syscall: (proto.errors[0] as OSError).syscall };
    });
    expect(out.echoes).toEqual(['one', 'three', 'after the error']);
    expect(out.events).toEqual(['made', 'datagram', 'datagram', 'datagram', 'error:EMSGSIZE', 'lost']);
    expect(out.closing).toBe(false);
    expect(out.syscall).toBe('sendmmsg');
  });

  it('sendto still checks every address at once, however often the same host was sent to', async () => {
    const loop = testLoop(backend);
    const out = await runIn(loop, mode, function* () {
      const proto = new Recorder();
      const [t] = yield* endpoint(loop, proto);
      const peer = dgram(AF_INET, ['127.0.0.1', 0]);
      const to = peer.getsockname() as [string, number];
      t.sendto('first', to);
      expect(() => t.sendto('x', [to[0], 70_000])).toThrow(RangeError);
      expect(() => t.sendto('x', [to[0], 1.5])).toThrow(RangeError);
      expect(() => t.sendto('x', [to[0], '80' as unknown as number])).toThrow(TypeError);
      const arrayLike = { 0: to[0], 1: to[1], length: 2 } as unknown as SocketAddress;
      expect(() => t.sendto('x', arrayLike)).toThrow(TypeError);
      t.sendto('second', to);
      const got: string[] = [];
      yield* until(() => got.push(...drain(peer)) >= 2, 'the datagrams');
      t.close();
      yield* until(() => proto.lost > 0, 'connectionLost');
      return { got, events: proto.events };
    });
    expect(out.got).toEqual(['first', 'second']);
    expect(out.events).toEqual(['made', 'lost']);
  });
});
