/**
 * Held writes (src/loop/held-writes.ts, stream-transport.ts) under attack:
 * what a callback wrote before the transport ended badly still leaves, as
 * it did when the write went out at once.
 */
import { describe, expect, it } from 'vitest';

import { type Coroutine, sleep } from '../../src/coro/index.js';
import type { Protocol, Transport } from '../../src/loop/index.js';
import { AF_UNIX, SOCK_STREAM } from '../../src/sys/index.js';
import { testSocketpair } from '../helpers/fds.js';
import { BACKENDS, testLoop } from '../helpers/loops.js';

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
});
