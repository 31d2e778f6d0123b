/**
 * The embedded server (iomux serve) against clients that misbehave: bodies
 * that hide requests, chunked bodies, odd Connection lists, silence, and a
 * process out of fds. Each client is a raw node:net socket; the server runs
 * on an iomux loop in cooperative mode in this process.
 */
import { connect, type Socket as NetSocket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';

import { type EmbeddedServer, type ServerOptions, startServer } from '../../src/cli/server.js';
import type { EventLoop } from '../../src/loop/index.js';
import { close, eventfd } from '../../src/sys/index.js';
import { testLoop } from '../helpers/loops.js';

let stop: (() => Promise<void>) | null = null;
afterEach(async () => {
  await stop?.();
  stop = null;
});

/** Starts the server on a cooperative loop; stopped after the test. */
function serve(options: ServerOptions = {}): { server: EmbeddedServer; loop: EventLoop } {
  const loop = testLoop('epoll');
  const server = startServer(loop, 0, options);
  let release: () => void = () => {};
  const running = loop.run(new Promise<void>((resolve) => (release = resolve)));
  stop = async () => {
    server.close();
    release();
    await running;
  };
  return { server, loop };
}

/** Writes `request`, then reads until the server closes (or `ms` pass): what came back, and whether it closed. */
function exchange(port: number, request: string, ms = 3000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const sock: NetSocket = connect(port, '127.0.0.1', () => sock.write(request));
    let text = '';
    const timer = setTimeout(() => {
      sock.destroy();
      resolve({ text, closed: false });
    }, ms);
    sock.on('data', (d) => {
      text += d.toString('latin1');
    });
    sock.on('end', () => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ text, closed: true });
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
    expect(statusLines(r.text)).toEqual(['HTTP/1.1 405 Method Not Allowed', 'HTTP/1.1 200 OK']);
    expect(r.text).toContain('goods 3');
    expect(r.text).not.toContain('goods 2');
  });

  it('a body that comes after the head, in pieces, is dropped too', async () => {
    const { server } = serve();
    const r = await new Promise<string>((resolve, reject) => {
      const sock = connect(server.port, '127.0.0.1', () => {
        sock.write('GET /goods/1/ HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n');
        setTimeout(() => sock.write('GET /goo'), 20);
        setTimeout(() => sock.write('ds/9/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), 40);
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
      const r = await exchange(server.port, `GET /goods/1/ HTTP/1.1\r\nHost: x\r\n${fields}\r\n\r\n0\r\n\r\n`);
      expect(statusLines(r.text), fields).toEqual(['HTTP/1.1 400 Bad Request']);
      expect(r.closed).toBe(true);
    }
  });

  it("'Connection: keep-alive, close' closes; so does close in a second Connection field", async () => {
    const { server } = serve();
    for (const fields of ['Connection: keep-alive, close', 'Connection: keep-alive\r\nConnection: close']) {
      const r = await exchange(server.port, `GET /goods/1/ HTTP/1.1\r\nHost: x\r\n${fields}\r\n\r\n`);
      expect(r.text).toContain('Connection: close');
      expect(r.closed).toBe(true);
    }
  });

  it('a client that never finishes its head, or stays silent between requests, is closed', async () => {
    const { server } = serve({ headerTimeoutMs: 150, idleTimeoutMs: 150 });
    const partial = await exchange(server.port, 'GET /goods/1/ HTTP/1.1\r\nHost:', 10_000);
    expect(partial).toEqual({ text: '', closed: true });
    const idle = await exchange(server.port, 'GET /goods/1/ HTTP/1.1\r\nHost: x\r\n\r\n', 10_000);
    expect(statusLines(idle.text)).toEqual(['HTTP/1.1 200 OK']);
    expect(idle.closed).toBe(true);
  });

  it('a latency holds every response that long, on a timer: requests in flight wait together', async () => {
    const { server } = serve({ latencyMs: 200 });
    const t0 = performance.now();
    const replies = await Promise.all(
      [1, 2, 3, 4, 5].map((n) =>
        exchange(server.port, `GET /goods/${n}/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, 15_000).then(
          (r) => ({
            ...r,
            ms: performance.now() - t0,
          }),
        ),
      ),
    );
    for (const [i, r] of replies.entries()) {
      expect(r.text).toContain(`goods ${i + 1}`);
      // Never before the latency (1 ms of timer slack).
      expect(r.ms).toBeGreaterThanOrEqual(199);
    }
  });

  it('running out of fds pauses accepting; the waiting connections are served once fds are free', async () => {
    const { server } = serve();
    // Fill the process's fd table, keeping a few for the clients to come.
    const filler: number[] = [];
    try {
      for (;;) filler.push(eventfd(0));
    } catch (error) {
      expect((error as { code?: string }).code).toBe('EMFILE');
    }
    for (const fd of filler.splice(0, 2)) close(fd);
    // Two clients take the freed fds; the server's accept then has none: EMFILE.
    const first = exchange(server.port, 'GET /goods/1/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 15_000);
    const second = exchange(server.port, 'GET /goods/2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 15_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const fd of filler.splice(0)) close(fd);
    const [a, b] = await Promise.all([first, second]);
    expect(statusLines(a.text)).toEqual(['HTTP/1.1 200 OK']);
    expect(statusLines(b.text)).toEqual(['HTTP/1.1 200 OK']);
    // And it goes on accepting.
    const third = await exchange(server.port, 'GET /goods/3/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(third.text).toContain('goods 3');
  });
});
