/**
 * The embedded server (iomux serve) against clients that misbehave: bodies
 * that hide requests, chunked bodies, odd Connection lists, silence, and a
 * process out of fds. Each client is a raw node:net socket; the server runs
 * on an iomux loop in cooperative mode in this process.
 */
import { connect, type Socket as NetSocket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';

import { type EmbeddedServer, type ServerOptions, startServer } from '../../src/cli/server.js';
import type { EventLoop, Protocol } from '../../src/loop/index.js';
import { close, eventfd } from '../../src/sys/index.js';
import { testLoop } from '../helpers/loops.js';

let stop: (() => Promise<void>) | null = null;
afterEach(async () => {
  await stop?.();
  stop = null;
});

/** Starts the server on a cooperative loop; stopped after the test. */
function serve(options: ServerOptions = {}): { server: EmbeddedServer; loop: EventLoop; seen: Observed } {
  const loop = testLoop('epoll');
  const seen = observe(loop);
  const server = startServer(loop, 0, options);
  let release: () => void = () => {};
  const running = loop.run(new Promise<void>((resolve) => (release = resolve)));
  stop = async () => {
    server.close();
    release();
    await running;
  };
  return { server, loop, seen };
}

/** What the server did, as signals a test can wait for instead of sleeping. */
interface Observed {
  /** Settles once an accept failed with EMFILE. */
  outOfFds: Promise<void>;
  /** Settles once `n` receives brought bytes (dataReceived calls), counting from the start. */
  received(n: number): Promise<void>;
}

/**
 * Wraps the loop's createServer (the server's only way in) to observe each
 * connection's protocol, and listens to the exception handler, where the
 * loop's Server reports an accept that failed for want of fds.
 */
function observe(loop: EventLoop): Observed {
  let outOfFds: () => void = () => {};
  const emfile = new Promise<void>((resolve) => {
    outOfFds = resolve;
  });
  loop.setExceptionHandler((l, context) => {
    if ((context.exception as { code?: string } | undefined)?.code === 'EMFILE') outOfFds();
    else l.defaultExceptionHandler(context);
  });
  let reads = 0;
  const waiters: { n: number; resolve: () => void }[] = [];
  const createServer = loop.createServer.bind(loop);
  loop.createServer = (factory, ...rest) =>
    createServer(
      () => {
        const protocol = factory() as Protocol;
        const dataReceived = protocol.dataReceived?.bind(protocol);
        protocol.dataReceived = (data) => {
          dataReceived?.(data);
          reads++;
          for (const w of waiters.filter((w) => reads >= w.n)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve();
          }
        };
        return protocol;
      },
      ...rest,
    );
  return {
    outOfFds: emfile,
    received: (n) => (reads >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
  };
}

/**
 * Writes `request`, then reads until the server closes: what came back.
 * Settling at all is the proof that the server closed; a server that never
 * does fails on the test's timeout (no deadline of its own to misjudge a
 * loaded machine by).
 */
function exchange(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock: NetSocket = connect(port, '127.0.0.1', () => sock.write(request));
    let text = '';
    sock.on('data', (d) => {
      text += d.toString('latin1');
    });
    sock.on('end', () => {
      sock.destroy();
      resolve(text);
    });
    sock.on('error', reject);
  });
}

const statusLines = (text: string): string[] => text.match(/^HTTP\/1\.1 \d{3} [^\r]*/gm) ?? [];

describe('iomux serve, against clients that misbehave', () => {
  it('a body that holds a second request is read as a body, not served', async () => {
    const { server } = serve();
    const hidden = 'GET /goods/2/ HTTP/1.1\r\nHost: x\r\n\r\n';
    const r = await exchange(
      server.port,
      `POST /goods/1/ HTTP/1.1\r\nHost: x\r\nContent-Length: ${hidden.length}\r\n\r\n${hidden}GET /goods/3/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    );
    // The POST is refused; the request after its body is served; the hidden one never is.
    expect(statusLines(r)).toEqual(['HTTP/1.1 405 Method Not Allowed', 'HTTP/1.1 200 OK']);
    expect(r).toContain('goods 3');
    expect(r).not.toContain('goods 2');
  });

  it('a body that comes after the head, in pieces, is dropped too', async () => {
    const { server, seen } = serve();
    const r = await new Promise<string>((resolve, reject) => {
      // Each piece once the server has received the one before: pieces by
      // construction, where 20 ms timers let a slow turn merge them.
      const sock = connect(server.port, '127.0.0.1', async () => {
        sock.write('GET /goods/1/ HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n');
        await seen.received(1);
        sock.write('GET /goo');
        await seen.received(2);
        sock.write('ds/9/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      });
      let text = '';
      sock.on('data', (d) => {
        text += d.toString('latin1');
      });
      sock.on('end', () => resolve(text));
      sock.on('error', reject);
    });
    // The ten bytes "GET /goods" were the first request's body: the rest is no request.
    expect(statusLines(r)).toEqual(['HTTP/1.1 200 OK', 'HTTP/1.1 400 Bad Request']);
    expect(r).toContain('goods 1');
  });

  it('a chunked request body, or Content-Lengths that disagree, get a 400 and the connection ends', async () => {
    const { server } = serve();
    for (const fields of [
      'Transfer-Encoding: chunked',
      'Content-Length: 5\r\nContent-Length: 6',
      'Content-Length: 5, 5',
      'Content-Length: -1',
    ]) {
      // Settled: the connection ended.
      const r = await exchange(server.port, `GET /goods/1/ HTTP/1.1\r\nHost: x\r\n${fields}\r\n\r\n0\r\n\r\n`);
      expect(statusLines(r), fields).toEqual(['HTTP/1.1 400 Bad Request']);
    }
  });

  it("'Connection: keep-alive, close' closes; so does close in a second Connection field", async () => {
    const { server } = serve();
    for (const fields of ['Connection: keep-alive, close', 'Connection: keep-alive\r\nConnection: close']) {
      // Settled: the connection ended.
      const r = await exchange(server.port, `GET /goods/1/ HTTP/1.1\r\nHost: x\r\n${fields}\r\n\r\n`);
      expect(r).toContain('Connection: close');
    }
  });

  it('a client that never finishes its head, or stays silent between requests, is closed', async () => {
    const { server } = serve({ headerTimeoutMs: 150, idleTimeoutMs: 150 });
    // Each settles only once the server closed the connection.
    expect(await exchange(server.port, 'GET /goods/1/ HTTP/1.1\r\nHost:')).toBe('');
    const idle = await exchange(server.port, 'GET /goods/1/ HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(statusLines(idle)).toEqual(['HTTP/1.1 200 OK']);
  });

  it('a latency holds every response that long, on a timer: requests in flight wait together', async () => {
    const { server, loop } = serve({ latencyMs: 200 });
    const t0 = loop.time();
    const replies = await Promise.all(
      [1, 2, 3, 4, 5].map((n) =>
        exchange(server.port, `GET /goods/${n}/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`).then((text) => ({
          text,
          ms: loop.time() - t0,
        })),
      ),
    );
    for (const [i, r] of replies.entries()) {
      expect(r.text).toContain(`goods ${i + 1}`);
      // Never before the latency (1 ms of timer slack).
      expect(r.ms).toBeGreaterThanOrEqual(199);
    }
  });

  it('running out of fds pauses accepting; the waiting connections are served once fds are free', async () => {
    const { server, seen } = serve();
    // Fill the process's fd table, keeping a few for the clients to come.
    const filler: number[] = [];
    try {
      for (;;) filler.push(eventfd(0));
    } catch (error) {
      expect((error as { code?: string }).code).toBe('EMFILE');
    }
    for (const fd of filler.splice(0, 2)) close(fd);
    // Two clients take the freed fds; the server's accept then has none: EMFILE.
    const first = exchange(server.port, 'GET /goods/1/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const second = exchange(server.port, 'GET /goods/2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    // Free the fds once the server's accept has failed for want of one (not
    // after a 300 ms guess, which a slow turn made test nothing).
    await seen.outOfFds;
    for (const fd of filler.splice(0)) close(fd);
    const [a, b] = await Promise.all([first, second]);
    expect(statusLines(a)).toEqual(['HTTP/1.1 200 OK']);
    expect(statusLines(b)).toEqual(['HTTP/1.1 200 OK']);
    // And it goes on accepting.
    const third = await exchange(server.port, 'GET /goods/3/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(third).toContain('goods 3');
  });
});
