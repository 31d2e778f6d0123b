/**
 * The EMFILE leg, in a child process whose fd limit is low (the parent runs
 * it under `ulimit -n`): for each backend and run mode, a loop with an echo
 * server and the embedded server; sockets made beforehand; then every free
 * fd taken by eventfds, so that
 *
 * - the connect path fails: new sockets and a fetch end with EMFILE;
 * - the accept path fails: the premade sockets connect, both servers'
 *   accept(2) says EMFILE (the echo server counts it and retries);
 *
 * then, a little later, the fds are released and everything in flight must
 * complete with the right bytes, and the fd count must be back where it was.
 * Sends its tally over IPC.
 */
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { type Coroutine, gather, sleep, waitFor } from 'iomux/coro';
import { fetchCoroutine } from 'iomux/fetch';
import { EventLoop, type SelectorName } from 'iomux/loop';
import { AF_INET, close, eventfd, SOCK_STREAM, Socket } from 'iomux/sys';

import { echoClient, startEchoServer } from './echo.js';
import { Rng } from './prng.js';
import type { RunMode } from './round.js';
import { packageRoot } from './servers.js';
import { bump, errorCode, newTally, type Tally } from './tally.js';

/** What the parent passes (JSON in argv[2]). */
export interface EmfileConfig {
  seed: number;
  backends: SelectorName[];
  modes: RunMode[];
}

interface EmbeddedServerModule {
  startServer(loop: EventLoop, port?: number): { port: number; close(): void };
}

const DEADLINE_MS = 60_000;
const PREMADE = 8;

function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Takes every free fd (eventfds) until EMFILE/ENFILE; returns them and the code that stopped it. */
function exhaust(): { fds: number[]; code: string } {
  const fds: number[] = [];
  for (let i = 0; i < 1_000_000; i++) {
    try {
      fds.push(eventfd());
    } catch (error) {
      return { fds, code: errorCode(error) };
    }
  }
  return { fds, code: 'NONE' };
}

/** GET `path` on a premade socket, reading to EOF: the body (the head checked for 200). */
function* rawGet(loop: EventLoop, sock: Socket, port: number, path: string): Coroutine<Buffer> {
  try {
    yield* loop.sockConnect(sock, ['127.0.0.1', port]);
    yield* loop.sockSendAll(sock, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    const chunks: Buffer[] = [];
    for (;;) {
      const chunk = yield* loop.sockRecv(sock, 65536);
      if (chunk.length === 0) break;
      chunks.push(chunk);
    }
    const all = Buffer.concat(chunks);
    const end = all.indexOf('\r\n\r\n');
    if (end < 0 || !all.subarray(0, 12).toString().startsWith('HTTP/1.1 200')) throw new Error('bad response head');
    return all.subarray(end + 4);
  } finally {
    sock.close();
  }
}

function* leg(loop: EventLoop, server: { port: number }, rng: Rng, tally: Tally, label: string): Coroutine<void> {
  const echo = startEchoServer(loop, tally);
  const path = `/bytes/${rng.int(1, 50_000)}`;
  const premade = Array.from({ length: PREMADE }, () => {
    const s = new Socket(AF_INET, SOCK_STREAM);
    s.setBlocking(false);
    return s;
  });
  yield* sleep(0);
  const acceptsBefore = tally.errors['accept EMFILE'] ?? 0;
  const { fds, code } = exhaust();
  try {
    bump(tally.ops, 'emfile exhaust');
    bump(tally.errors, `exhaust ${code}`);
    // The connect path: no fd for a new socket, nor for a fetch's.
    try {
      new Socket(AF_INET, SOCK_STREAM).close();
      tally.failures.push(`${label}: a socket was made with every fd taken`);
    } catch (error) {
      bump(tally.errors, `socket ${errorCode(error)}`);
    }
    try {
      yield* fetchCoroutine(loop, `http://127.0.0.1:${server.port}/goods/1/`, { timeoutMs: DEADLINE_MS });
      tally.failures.push(`${label}: a fetch succeeded with every fd taken`);
    } catch (error) {
      bump(tally.errors, `fetch ${errorCode(error)}`);
    }
    // The accept path: the premade sockets connect now.
    const half = PREMADE / 2;
    const echoes = premade.slice(0, half).map((sock) => {
      const job = { proxyPort: echo.port, serverPort: 0, payload: rng.bytes(rng.int(1, 100_000)), maxPiece: 65536 };
      return loop.createTask(echoClient(loop, job, rng.fork(job.payload.length), tally, sock));
    });
    const gets = premade.slice(half).map((sock) => loop.createTask(rawGet(loop, sock, server.port, path)));
    const started = loop.time();
    while ((tally.errors['accept EMFILE'] ?? 0) === acceptsBefore && loop.time() - started < DEADLINE_MS)
      yield* sleep(5);
    if ((tally.errors['accept EMFILE'] ?? 0) === acceptsBefore)
      tally.failures.push(`${label}: accept never saw EMFILE`);
    yield* sleep(rng.int(50, 300));
    for (const fd of fds.splice(0)) close(fd);
    bump(tally.ops, 'emfile release');
    const want = yield* fetchCoroutine(loop, `http://127.0.0.1:${server.port}${path}`, { timeoutMs: DEADLINE_MS });
    const wantHash = createHash('sha256').update(want.body).digest('hex');
    for (const outcome of yield* waitFor(gather(...echoes), DEADLINE_MS)) {
      bump(tally.ops, 'emfile echo');
      if (outcome !== 'ok') tally.failures.push(`${label}: echo after EMFILE ended ${outcome}`);
    }
    for (const body of yield* waitFor(gather(...gets), DEADLINE_MS)) {
      bump(tally.ops, 'emfile fetch');
      if (createHash('sha256').update(body).digest('hex') !== wantHash) {
        tally.failures.push(`${label}: body after EMFILE differs`);
      } else tally.bytesVerified += body.length;
    }
  } finally {
    for (const fd of fds) close(fd);
    yield* echo.close(DEADLINE_MS);
  }
}

/** One trip through the loop, for the server's closing to take effect. */
function* settle(): Coroutine<void> {
  yield* sleep(0);
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as EmfileConfig;
  const url = pathToFileURL(join(packageRoot(), 'dist/cli/server.js')).href;
  const { startServer } = (await import(url)) as EmbeddedServerModule;
  const tally = newTally();
  const rng = new Rng(config.seed);
  for (const backend of config.backends) {
    for (const mode of config.modes) {
      const label = `emfile ${backend} ${mode}`;
      const before = fdCount();
      const loop = new EventLoop({ selector: backend });
      const server = startServer(loop, 0);
      const run = (): Coroutine<void> => leg(loop, server, rng.fork(before), tally, label);
      try {
        if (mode === 'owning') loop.runUntilComplete(run());
        else await loop.run(run());
        server.close();
        loop.runUntilComplete(settle());
        const left = loop.selector.getMap().size;
        if (left > 0) tally.failures.push(`${label}: ${left} fd(s) still registered`);
      } catch (error) {
        tally.failures.push(`${label}: ${error instanceof Error ? error.stack : error}`);
      } finally {
        loop.close();
      }
      const after = fdCount();
      if (after > before) tally.failures.push(`${label}: ${after - before} fd(s) leaked (${before} -> ${after})`);
      bump(tally.exercised, label);
    }
  }
  process.send?.({ type: 'result', tally }, () => process.exit(0));
}

await main();
