/**
 * An echo server and its clients on one loop over loopback: 1,000
 * connections, each moving 1 MiB both ways, checked by hash. select cannot
 * watch fds >= 1024, so on select the connections run 400 at a time.
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';

import { type Coroutine, gather } from '../../src/coro/index.js';
import type { EventLoop } from '../../src/loop/index.js';
import { SHUT_WR } from '../../src/sys/index.js';
import { openFdCount } from '../helpers/fds.js';
import { BACKENDS, testLoop } from '../helpers/loops.js';
import { echoServer, listenLoopback, tcpSocket } from '../helpers/net.js';

const CONNECTIONS = 1000;
const BYTES = 1 << 20;
const CHUNK = 64 * 1024;

function* client(loop: EventLoop, port: number): Coroutine<boolean> {
  const sock = tcpSocket();
  yield* loop.sockConnect(sock, ['127.0.0.1', port]);
  const sent = createHash('sha256');
  const received = createHash('sha256');
  const sender = loop.createTask(
    (function* (): Coroutine<void> {
      for (let off = 0; off < BYTES; off += CHUNK) {
        const chunk = randomBytes(CHUNK);
        sent.update(chunk);
        yield* loop.sockSendAll(sock, chunk);
      }
      sock.shutdown(SHUT_WR);
    })(),
  );
  const buf = Buffer.allocUnsafe(CHUNK);
  let total = 0;
  for (;;) {
    const n = yield* loop.sockRecvInto(sock, buf);
    if (n === 0) break;
    received.update(buf.subarray(0, n));
    total += n;
  }
  yield* sender;
  sock.close();
  return total === BYTES && sent.digest('hex') === received.digest('hex');
}

describe.each(BACKENDS)('echo on %s', (backend) => {
  it(`${CONNECTIONS} connections x 1 MiB, checked by hash`, { timeout: 120_000 }, () => {
    const loop = testLoop(backend);
    const before = openFdCount();
    const { sock: server, port } = listenLoopback(CONNECTIONS);
    const wave = backend === 'select' ? 400 : CONNECTIONS;
    function* main(): Coroutine<[number, number]> {
      let ok = 0;
      let served = 0;
      for (let done = 0; done < CONNECTIONS; done += wave) {
        const n = Math.min(wave, CONNECTIONS - done);
        const [s, ...results] = (yield* gather(
          echoServer(loop, server, n),
          ...Array.from({ length: n }, () => client(loop, port)),
        )) as [number, ...boolean[]];
        served += s;
        ok += results.filter(Boolean).length;
      }
      return [ok, served];
    }
    const [ok, served] = loop.runUntilComplete(main());
    expect(ok).toBe(CONNECTIONS);
    expect(served).toBe(CONNECTIONS * BYTES);
    server.close();
    expect(openFdCount()).toBe(before);
  });
});
