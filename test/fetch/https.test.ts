/**
 * https:// in every fetcher -- busy-poll, the callback Fetcher, the
 * generator coroutine, async/await, HttpPool, and the I/O models -- against
 * node:https and the misbehaving TLS peers of test/helpers/tls-servers.ts
 * (in this process), and nginx's TLS listener where installed. The
 * fetchers run in a child process on dist/ (fixtures/fetch-child.mjs): the
 * busy-poll, callback and owning-mode ones hold their thread until done, so
 * a server on this thread would never answer. Each child runs every
 * fetcher (the loop-based ones on every backend) over the same URLs.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createHttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';

import { findNginx, startNginx } from '../../bench/src/nginx.js';
import { type CertificateSet, findOpenssl, makeCertificates } from '../../bench/src/tls-certs.js';
import { fetchAsync, HttpPool, IO_MODELS } from '../../src/fetch/index.js';
import { IoUring } from '../../src/sys/index.js';
import { BACKENDS, testLoop } from '../helpers/loops.js';
import {
  HTTPS_HELLO,
  patternBytes,
  startCloseDelimitedHttps,
  startHttpsServer,
  startResetMidHandshake,
  startTruncatingHttps,
  type TestServer,
} from '../helpers/tls-servers.js';

const CHILD = fileURLToPath(new URL('./fixtures/fetch-child.mjs', import.meta.url));
const BIG = 10 << 20;
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

interface Job {
  style: string;
  backend?: string;
  urls: string[];
}

/** What the child reports of one URL. */
type Outcome =
  | { status: number; bytes: number; sha256: string; text: string }
  | { error: { name: string; code: string; message: string } };

/** Every fetcher: busy-poll once, each loop-based style and the pool on every backend, every I/O model. */
function everyFetcher(urls: string[]): Job[] {
  const jobs: Job[] = [{ style: 'busy', urls }];
  for (const backend of BACKENDS) {
    for (const style of ['callback', 'coroutine', 'async', 'pool-coroutine', 'pool-async']) {
      jobs.push({ style, backend, urls });
    }
  }
  for (const model of IO_MODELS) {
    if (model !== 'io_uring' || IoUring.available()) jobs.push({ style: `model:${model}`, urls });
  }
  return jobs;
}

const label = (job: Job): string => (job.backend === undefined ? job.style : `${job.style}/${job.backend}`);

/** Runs `jobs` in the child (without blocking this thread's servers); outcomes by job label. */
function fetchInChild(jobs: Job[], options: Record<string, unknown>): Promise<Record<string, Outcome[]>> {
  const arg = JSON.stringify({ jobs, options: { timeoutMs: 15_000, ...options } });
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [CHILD, arg],
      { timeout: 100_000, maxBuffer: 16 << 20, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error !== null) {
          reject(new Error(`fetch child failed: ${error.message}\n${stderr}`));
          return;
        }
        const results = JSON.parse(stdout) as Outcome[][];
        resolve(Object.fromEntries(jobs.map((job, i) => [label(job), results[i] as Outcome[]])));
      },
    );
  });
}

/** The same expectation for every job. */
function forEvery(jobs: Job[], expected: unknown[]): Record<string, unknown[]> {
  return Object.fromEntries(jobs.map((job) => [label(job), expected]));
}

const page = (body: Buffer | string): unknown => {
  const bytes = Buffer.from(body);
  return expect.objectContaining({ status: 200, bytes: bytes.length, sha256: sha256(bytes) });
};
const failure = (code: string): unknown => ({ error: expect.objectContaining({ name: 'FetchError', code }) });

const servers: TestServer[] = [];
async function track<T extends TestServer>(server: Promise<T>): Promise<T> {
  const s = await server;
  servers.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe.skipIf(findOpenssl() === null)('https in every fetcher', () => {
  let certs: CertificateSet;
  beforeAll(() => {
    certs = makeCertificates();
  });

  it.each(['TLSv1.2', 'TLSv1.3'] as const)(
    'node:https over %s: a page and 10 MiB by sha256, the name checked by SNI',
    async (version) => {
      const server = await track(startHttpsServer(certs, { minVersion: version, maxVersion: version }));
      const base = `https://localhost:${server.port}`;
      const jobs = everyFetcher([`${base}/`, `${base}/big?bytes=${BIG}`]);
      const results = await fetchInChild(jobs, { ca: certs.ca.cert });
      expect(results).toEqual(forEvery(jobs, [page(HTTPS_HELLO), page(patternBytes(BIG))]));
    },
    120_000,
  );

  it('HttpPool keeps a TLS connection alive: four requests, one handshake', async () => {
    const server = await track(startHttpsServer(certs));
    const url = `https://127.0.0.1:${server.port}/`;
    const jobs = BACKENDS.flatMap((backend) =>
      ['pool-coroutine', 'pool-async'].map((style) => ({ style, backend, urls: [url, url, url, url] })),
    );
    const results = await fetchInChild(jobs, { ca: certs.ca.cert });
    expect(results).toEqual(forEvery(jobs, Array(4).fill(page(HTTPS_HELLO))));
    // Each job is a pool of its own, run one after the other.
    expect(server.connections()).toBe(jobs.length);
  });

  it('certificates that do not verify, resets and truncations fail with their code; bodies of known length do not', async () => {
    const ca = certs.ca.cert;
    const expired = await track(startHttpsServer(certs, { keyPair: certs.expired }));
    const wrongHost = await track(startHttpsServer(certs, { keyPair: certs.wrongHost }));
    const unknownCa = await track(startHttpsServer(certs, { keyPair: certs.unknownCa }));
    const selfSigned = await track(startHttpsServer(certs, { keyPair: certs.selfSigned }));
    const reset = await track(startResetMidHandshake());
    const truncated = await track(startTruncatingHttps(certs, { bodyBytes: 100_000, sendBytes: 40_000 }));
    // The whole Content-Length, then a FIN without close_notify: complete, never read past.
    const complete = await track(startTruncatingHttps(certs, { bodyBytes: 100_000, sendBytes: 100_000 }));
    const body = patternBytes(70_000);
    const notified = await track(startCloseDelimitedHttps(certs, { body, closeNotify: true }));
    const cut = await track(startCloseDelimitedHttps(certs, { body, closeNotify: false }));
    const url = (s: TestServer): string => `https://localhost:${s.port}/`;
    const cases: [TestServer, unknown][] = [
      [expired, failure('CERT_HAS_EXPIRED')],
      [wrongHost, failure('ERR_TLS_CERT_ALTNAME_INVALID')],
      [unknownCa, failure('UNABLE_TO_VERIFY_LEAF_SIGNATURE')],
      [selfSigned, failure('DEPTH_ZERO_SELF_SIGNED_CERT')],
      [reset, failure('ECONNRESET')],
      [truncated, failure('ERR_SSL_UNEXPECTED_EOF_WHILE_READING')],
      [complete, page(patternBytes(100_000))],
      // Again: the pool's connection to it was closed without close_notify while idle.
      [complete, page(patternBytes(100_000))],
      [notified, page(body)],
      [cut, failure('ERR_SSL_UNEXPECTED_EOF_WHILE_READING')],
    ];
    const jobs = everyFetcher(cases.map(([s]) => url(s)));
    const results = await fetchInChild(jobs, { ca });
    expect(results).toEqual(
      forEvery(
        jobs,
        cases.map(([, e]) => e),
      ),
    );
  }, 120_000);

  it('rejectUnauthorized: false fetches from a self-signed server; without ca, the bundled roots do not know ours', async () => {
    const selfSigned = await track(startHttpsServer(certs, { keyPair: certs.selfSigned }));
    const good = await track(startHttpsServer(certs));
    const jobs = everyFetcher([`https://localhost:${selfSigned.port}/`]);
    expect(await fetchInChild(jobs, { rejectUnauthorized: false })).toEqual(forEvery(jobs, [page(HTTPS_HELLO)]));
    const strict = [{ style: 'busy', urls: [`https://localhost:${good.port}/`] }];
    expect(await fetchInChild(strict, {})).toEqual(forEvery(strict, [failure('UNABLE_TO_VERIFY_LEAF_SIGNATURE')]));
  }, 120_000);

  // Cooperative mode lets a server in this process answer: what the TLS
  // layer negotiated is seen from the server's side.
  it.each(BACKENDS)(
    'async and the pool on %s, in this process: ca as an array of Buffers; the pool resumes the session',
    async (backend) => {
      const resumed: boolean[] = [];
      const server = createHttpsServer({ cert: certs.server.cert, key: certs.server.key }, (req, res) => {
        resumed.push((req.socket as TLSSocket).isSessionReused());
        res.end('ok');
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      servers.push({
        port: 0,
        close: () => new Promise<void>((resolve) => server.close(() => resolve()).closeAllConnections()),
      });
      const url = `https://localhost:${(server.address() as { port: number }).port}/`;
      // Another CA first: each PEM of the array is trusted, not only the first.
      const ca = [Buffer.from(certs.selfSigned.cert), Buffer.from(certs.ca.cert)];
      const loop = testLoop(backend);
      const bodies = await loop.run(async () => {
        const first = await fetchAsync(loop, url, { ca, timeoutMs: 10_000 });
        const pool = new HttpPool(loop);
        try {
          const pooled = await loop.createTask(pool.fetch(url, { ca, timeoutMs: 10_000 }));
          return [first, pooled].map((r) => r.body.toString());
        } finally {
          pool.close();
        }
      });
      expect(bodies).toEqual(['ok', 'ok']);
      // One context per trust options, shared by the fetchers: the pool's
      // connection resumes the session the first fetch left.
      expect(resumed).toEqual([false, true]);
    },
  );

  describe.skipIf(findNginx() === null)('against nginx over TLS', () => {
    it.each(['TLSv1.2', 'TLSv1.3'])(
      '%s: 10 MiB (Content-Length) by sha256, every fetcher',
      async (protocols) => {
        const big = randomBytes(BIG);
        const nginx = await startNginx({ 'big.bin': big }, undefined, {
          tls: { certFile: certs.server.certFile, keyFile: certs.server.keyFile, protocols },
        });
        if (nginx === null) throw new Error('nginx is installed but startNginx returned null');
        try {
          const jobs = everyFetcher([`https://localhost:${nginx.tlsPort}/big.bin`]);
          const results = await fetchInChild(jobs, { ca: certs.ca.cert });
          expect(results).toEqual(forEvery(jobs, [page(big)]));
        } finally {
          await nginx.stop();
        }
      },
      120_000,
    );
  });
});
