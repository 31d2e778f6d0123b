/**
 * HeldWrites (src/loop/held-writes.ts): who holds writes while the loop's
 * callbacks run, and their release once the run ends -- on its own, and in
 * a loop on every backend, where a callback's small writes leave after it.
 */
import { describe, expect, it } from 'vitest';

import { type Coroutine, sleep } from '../../src/coro/index.js';
import { HeldWrites, type WriteHolder } from '../../src/loop/held-writes.js';
import { AF_UNIX, SOCK_STREAM, syscallCount } from '../../src/sys/index.js';
import { testSocketpair } from '../helpers/fds.js';
import { BACKENDS, testLoop } from '../helpers/loops.js';

function holder(log: string[], name: string, fail = false): WriteHolder {
  return {
    releaseHeld(): void {
      log.push(name);
      if (fail) throw new Error(`${name} failed`);
    },
  };
}

describe('HeldWrites', () => {
  it('holds only while a run of callbacks is on, and releases every holder once, in order', () => {
    const held = new HeldWrites();
    const log: string[] = [];
    const reported: unknown[] = [];
    expect(held.hold(holder(log, 'outside'))).toBe(false);
    held.begin();
    expect(held.hold(holder(log, 'a'))).toBe(true);
    expect(held.hold(holder(log, 'b', true))).toBe(true);
    expect(held.hold(holder(log, 'c'))).toBe(true);
    expect(log).toEqual([]);
    held.end((e) => reported.push(e));
    // A holder that throws is reported; the others are released all the same.
    expect(log).toEqual(['a', 'b', 'c']);
    expect(reported.map((e) => (e as Error).message)).toEqual(['b failed']);
    expect(held.hold(holder(log, 'after'))).toBe(false);
    held.begin();
    held.end(() => {});
    expect(log).toEqual(['a', 'b', 'c']);
  });
});

describe.each(BACKENDS)('held writes in a loop on %s', (backend) => {
  it("a callback's small writes leave after it has run; a large one sends the held ones and itself at once", () => {
    const loop = testLoop(backend);
    const [mine, peer] = testSocketpair(AF_UNIX, SOCK_STREAM);
    mine.setBlocking(false);
    peer.setBlocking(false);
    const big = Buffer.alloc(5000, 'z');
    function* main(): Coroutine<{ during: number; bigCalls: number; after: number; got: string }> {
      const [transport] = yield* loop.connectAcceptedSocket(() => ({}), mine);
      let before = syscallCount();
      transport.write('one ');
      transport.write('two ');
      const during = syscallCount() - before;
      before = syscallCount();
      // Above what is held (4 KiB): the held bytes (one gathered send), then it.
      transport.write(big);
      const bigCalls = syscallCount() - before;
      transport.write(' three');
      const after = peer.recv(10_000).length;
      yield* sleep(0);
      const got = Buffer.concat([peer.recv(10_000)]).toString();
      transport.close();
      return { during, bigCalls, after, got };
    }
    const out = loop.runUntilComplete(main());
    expect(out).toEqual({ during: 0, bigCalls: 2, after: 8 + big.length, got: ' three' });
  });
});
