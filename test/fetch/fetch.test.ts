/**
 * The four fetch styles against real servers in child processes: the iomux
 * server, node:http (chunked), Python's http.server (HTTP/1.0,
 * close-delimited), nginx where installed, and a raw server that misbehaves
 * on purpose.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { findNginx, NGINX_GOODS_PAGE, startNginx } from '../../bench/src/nginx.js';
import { startServerProcess } from '../../src/cli/demo.js';
import { type FetchStyle, fetchMany } from '../../src/cli/fetch-many.js';
import { TimeoutError } from '../../src/coro/index.js';
import type { FetchError, FetchResult } from '../../src/fetch/index.js';
import type { BackendName } from '../../src/loop/index.js';
import { IoUring } from '../../src/sys/index.js';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const children: ChildProcess[] = [];
let iomuxPort = 0;
let httpPort = 0;
let rawPort = 0;
let http6Port = 0;
let pythonPort = 0;
let stopIomux = (): void => {};
let dir = '';
let bigHash = '';

async function firstLine(child: ChildProcess): Promise<string> {
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  for await (const line of lines) return line;
  throw new Error('the server printed nothing');
}

beforeAll(async () => {
  const iomux = await startServerProcess(CLI);
  iomuxPort = iomux.port;
  stopIomux = iomux.stop;
  const node = spawn(process.execPath, [fileURLToPath(new URL('./fixtures/node-servers.mjs', import.meta.url))], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.push(node);
  [httpPort, rawPort, http6Port] = (await firstLine(node)).split(' ').map(Number) as [number, number, number];
  dir = mkdtempSync(join(tmpdir(), 'iomux-fetch-'));
  const big = randomBytes(10 << 20);
  bigHash = createHash('sha256').update(big).digest('hex');
  writeFileSync(join(dir, 'big'), big);
  const python = spawn(
    'python3',
    [fileURLToPath(new URL('./fixtures/python-server.py', import.meta.url)), join(dir, 'big')],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  children.push(python);
  pythonPort = Number(await firstLine(python));
}, 30_000);

afterAll(() => {
  stopIomux();
  for (const c of children) c.kill();
  rmSync(dir, { recursive: true, force: true });
});

async function one(
  style: FetchStyle,
  url: string,
  backend: BackendName = 'epoll',
  timeoutMs = 10_000,
): Promise<FetchResult | FetchError> {
  const [result] = await fetchMany([url], { style, backend, concurrency: 1, timeoutMs });
  return result as FetchResult | FetchError;
}

function ok(r: FetchResult | FetchError): FetchResult {
  if (!('status' in r)) throw r;
  return r;
}

describe.each(['busy', 'callback', 'coroutine', 'async'] as FetchStyle[])('fetch, %s style', (style) => {
  it('a page of the iomux shop', async () => {
    const r = ok(await one(style, `http://127.0.0.1:${iomuxPort}/goods/7/`));
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.body.toString()).toContain('<h1>goods 7</h1>');
  });

  it('chunked bodies from node:http, and a host name', async () => {
    const r = ok(await one(style, `http://localhost:${httpPort}/x`));
    expect(r.body.toString()).toBe(`chunked body for /x (Host: localhost:${httpPort})`);
    expect(r.headers['transfer-encoding']).toBe('chunked');
  });

  it('an IPv6 literal: connected over ::1, the Host header in brackets', async () => {
    const r = ok(await one(style, `http://[::1]:${http6Port}/v6`));
    expect(r.body.toString()).toBe(`chunked body for /v6 (Host: [::1]:${http6Port})`);
  });

  it("close-delimited HTTP/1.0 from Python's http.server: 10 MiB checked by hash", async () => {
    const r = ok(await one(style, `http://127.0.0.1:${pythonPort}/big`));
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBeUndefined();
    expect(createHash('sha256').update(r.body).digest('hex')).toBe(bigHash);
  });

  it.each([
    ['a refused port', () => 'http://127.0.0.1:1/', 'ECONNREFUSED'],
    ['a reset mid-body', () => `http://127.0.0.1:${rawPort}/reset`, 'ECONNRESET'],
    ['a malformed status line', () => `http://127.0.0.1:${rawPort}/malformed`, 'ERR_HTTP_BAD_STATUS_LINE'],
    ['an oversize header', () => `http://127.0.0.1:${rawPort}/oversize`, 'ERR_HTTP_HEADERS_TOO_LARGE'],
    ['an unknown host', () => 'http://no-such-host.invalid/', 'ENOTFOUND'],
    ['another scheme', () => 'ftp://127.0.0.1/', 'ERR_UNSUPPORTED_PROTOCOL'],
  ])('%s fails that URL with a clear FetchError', async (_what, url, code) => {
    const r = await one(style, url());
    expect(r).toMatchObject({ name: 'FetchError', code, url: url() });
    expect((r as Error).message.startsWith(`${url()}: `)).toBe(true);
  });

  it('a timeout', async () => {
    // The page comes after 60 s (the server's longest delay; the process is
    // killed after the suite): only a timeout that never fires lets it win.
    const r = await one(style, `http://127.0.0.1:${iomuxPort}/delay/60000`, 'epoll', 100);
    expect(r).toMatchObject({ name: 'FetchError', code: 'ERR_TIMEOUT' });
    // One class for a timeout, whichever fetcher: the coroutine layer's TimeoutError.
    expect((r as Error).cause).toBeInstanceOf(TimeoutError);
    expect((r as Error).cause).toMatchObject({ code: 'ERR_TIMEOUT', message: 'timed out after 100 ms' });
  });
});

describe('fetching many', () => {
  it.each([
    ['callback', 'select'],
    ['coroutine', 'poll'],
    ['async', 'epoll'],
    // io_uring: the callback Fetcher on its polls, the coroutines on its completions.
    ...((IoUring.available()
      ? [
          ['callback', 'io_uring'],
          ['coroutine', 'io_uring'],
          ['async', 'io_uring'],
        ]
      : []) as [FetchStyle, BackendName][]),
  ] as [FetchStyle, BackendName][])(
    '1,000 URLs, %s on %s; one failure does not stop the others',
    async (style, backend) => {
      const urls = Array.from({ length: 1000 }, (_, i) => `http://127.0.0.1:${iomuxPort}/goods/${i}/`);
      urls[500] = 'http://127.0.0.1:1/';
      const results = await fetchMany(urls, { style, backend, concurrency: 100, timeoutMs: 30_000 });
      const failed = results.filter((r) => !('status' in r));
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatchObject({ code: 'ECONNREFUSED' });
      expect((results[999] as FetchResult).body.toString()).toContain('goods 999');
    },
    60_000,
  );
});

// nginx is a real server of the field: .ci/run installs it (bench/setup).
// Without it, the test below proves only that there is no binary to run.
describe('against nginx, where installed', () => {
  it('every style: a page and 10 MiB (Content-Length) by hash; 1,000 URLs over keep-alive and close', {
    timeout: 60_000,
  }, async () => {
    const big = randomBytes(10 << 20);
    const nginx = await startNginx({ 'big.bin': big });
    if (nginx === null) {
      expect(findNginx()).toBeNull();
      return;
    }
    try {
      const base = `http://127.0.0.1:${nginx.port}`;
      for (const style of ['busy', 'callback', 'coroutine', 'async'] as FetchStyle[]) {
        const page = ok(await one(style, `${base}/goods/3/`));
        expect(page.status).toBe(200);
        expect(page.headers['server']).toMatch(/^nginx/);
        expect(page.body.toString()).toBe(NGINX_GOODS_PAGE);
        const file = ok(await one(style, `${base}/big.bin`));
        expect(file.headers['content-length']).toBe(String(10 << 20));
        expect(createHash('sha256').update(file.body).digest('hex')).toBe(
          createHash('sha256').update(big).digest('hex'),
        );
        expect((await one(style, `${base}/missing`)) as FetchResult).toMatchObject({ status: 404 });
      }
      const urls = Array.from({ length: 1000 }, (_, i) => `${base}/goods/${i}/`);
      for (const keepAlive of [false, true]) {
        const results = await fetchMany(urls, {
          style: 'coroutine',
          backend: 'epoll',
          concurrency: 100,
          timeoutMs: 30_000,
          keepAlive,
        });
        expect(results.filter((r) => 'status' in r && r.status === 200)).toHaveLength(1000);
      }
    } finally {
      await nginx.stop();
    }
  });
});
