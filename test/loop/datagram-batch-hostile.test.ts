/**
 * A datagram transport's batches, attacked: what a protocol may do inside
 * a batch (throw, close from another callback of the same iteration) must
 * not lose datagrams or call the protocol after close(). Every backend,
 * both run modes, real UDP on loopback.
 */
import { describe, expect, it } from 'vitest';

import type { SocketAddress } from '../../src/sys/index.js';
import { AF_INET } from '../../src/sys/index.js';
import { CASES, dgram, Recorder, runIn, until } from '../helpers/datagrams.js';
import { testLoop } from '../helpers/loops.js';

describe.each(CASES)('a datagram transport batch, attacked, on %s (%s)', (backend, mode) => {
  it('an exception in datagramReceived loses none of the batch: the datagrams after it are still delivered', async () => {
    const loop = testLoop(backend);
    const reported: string[] = [];
    loop.setExceptionHandler((_l, context) =>
      reported.push(`${context.message}: ${(context.exception as Error).message}`),
    );
    const out = await runIn(loop, mode, function* () {
      const proto = new Recorder();
      proto.echo = true;
      proto.datagramReceived = function (this: Recorder, data: Buffer, addr: SocketAddress | null) {
        Recorder.prototype.datagramReceived.call(this, data, addr);
        if (data.toString() === 'b') throw new Error('boom');
      };
      const [t] = yield* loop.createDatagramEndpoint(() => proto, { localAddr: ['127.0.0.1', 0] });
      const client = dgram(AF_INET, ['127.0.0.1', 0]);
      const to = t.getExtraInfo('sockname') as SocketAddress;
      // Queued before the loop reads: one batch.
      for (const w of ['a', 'b', 'c', 'd']) client.sendto(w, to);
      let timedOut = false;
      try {
        yield* until(() => proto.datagrams.length >= 4, 'the datagrams after the exception', 1000);
      } catch {
        timedOut = true;
      }
      const echoes: string[] = [];
      yield* until(() => {
        for (let d = client.tryRecvfrom(100); d !== null; d = client.tryRecvfrom(100)) echoes.push(d[0].toString());
        return echoes.length >= 2;
      }, 'the echoes');
      t.close();
      yield* until(() => proto.lost > 0, 'connectionLost');
      return { timedOut, got: proto.datagrams.map((d) => d[0]), echoes };
    });
    expect(reported).toEqual(['Exception in datagramReceived: boom']);
    expect(out.timedOut).toBe(false);
    expect(out.got).toEqual(['a', 'b', 'c', 'd']);
    expect(out.echoes).toEqual(['a', 'b', 'c', 'd']);
  });

  it.each(['close', 'abort'] as const)(
    '%s() by a callback that runs before the readable event of the same iteration: the protocol hears nothing more but connectionLost',
    async (how) => {
      const loop = testLoop(backend);
      const out = await runIn(loop, mode, function* () {
        // A connected endpoint whose peer's port is closed: its first send
        // brings an ICMP port unreachable back, and the socket turns readable
        // with ECONNREFUSED pending.
        const gone = dgram(AF_INET, ['127.0.0.1', 0]);
        const peer = gone.getsockname() as [string, number];
        gone.close();
        const proto = new Recorder();
        const [t] = yield* loop.createDatagramEndpoint(() => proto, { remoteAddr: peer });
        t.sendto('into the void');
        // Runs in the next iteration, before the readable event it polls.
        loop.callSoon(() => (how === 'close' ? t.close() : t.abort()));
        yield* until(() => proto.lost > 0, 'connectionLost');
        return proto.events;
      });
      expect(out).toEqual(['made', 'lost']);
    },
  );
  it("a connected endpoint's replies to a peer gone meanwhile: each ECONNREFUSED the kernel reports reaches errorReceived, as it does outside a batch", async () => {
    const loop = testLoop(backend);
    const out = await runIn(loop, mode, function* () {
      const peer = dgram(AF_INET, ['127.0.0.1', 0]);
      const proto = new Recorder();
      proto.datagramReceived = function (this: Recorder, data: Buffer, addr: SocketAddress | null) {
        Recorder.prototype.datagramReceived.call(this, data, addr);
        this.transport?.sendto(data);
      };
      const [t] = yield* loop.createDatagramEndpoint(() => proto, {
        localAddr: ['127.0.0.1', 0],
        remoteAddr: peer.getsockname() as [string, number],
      });
      // Three datagrams, then the peer is gone: the replies' ICMP port
      // unreachables come back. Sent one by one (outside a batch) the
      // second reply fails with ECONNREFUSED and the third's error is
      // pending for the next receive: two reports.
      for (const w of ['a', 'b', 'c']) peer.sendto(w, t.getExtraInfo('sockname') as SocketAddress);
      peer.close();
      let timedOut = false;
      try {
        yield* until(() => proto.errors.length >= 2, 'two ECONNREFUSED', 1000);
      } catch {
        timedOut = true;
      }
      t.close();
      yield* until(() => proto.lost > 0, 'connectionLost');
      return { timedOut, events: proto.events };
    });
    expect(out.timedOut).toBe(false);
    expect(out.events).toEqual([
      'made',
      'datagram',
      'datagram',
      'datagram',
      'error:ECONNREFUSED',
      'error:ECONNREFUSED',
      'lost',
    ]);
  });
});
