/**
 * The CLI over TLS: `iomux serve --tls CERT KEY` (in a child process) as
 * the server of `iomux fetch https://... --ca / --insecure` in each style,
 * of Node's own https client at TLS 1.2 and 1.3, and of clients whose
 * handshake fails; `iomux demo --tls`, with a certificate made for the run
 * and with given files.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { get as httpsGet } from 'node:https';
import { connect as netConnect } from 'node:net';
import { createInterface } from 'node:readline';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type CertificateSet, findOpenssl, makeCertificates } from '../../bench/src/tls-certs.js';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

function iomux(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** An https GET by Node's client, trusting `ca`: status, body and the protocol spoken. */
function nodeGet(
  url: string,
  ca: string,
  maxVersion: 'TLSv1.2' | 'TLSv1.3',
): Promise<{ status: number; body: string; protocol: string | null }> {
  return new Promise((resolve, reject) => {
    const req = httpsGet(url, { ca, maxVersion, agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      const protocol = (res.socket as import('node:tls').TLSSocket).getProtocol();
      res.setEncoding('latin1');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, protocol }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer in 10 s')));
    req.on('error', reject);
  });
}

describe.skipIf(findOpenssl() === null)('iomux over TLS', () => {
  let certs: CertificateSet;
  let server: ChildProcess | null = null;
  let port = 0;

  beforeAll(async () => {
    certs = makeCertificates();
    const child = spawn(process.execPath, [CLI, 'serve', '--tls', certs.server.certFile, certs.server.keyFile], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    server = child;
    for await (const line of createInterface({ input: child.stdout })) {
      expect(line).toMatch(/^listening https:\/\/127\.0\.0\.1:\d+$/);
      port = Number(/:(\d+)$/.exec(line)?.[1]);
      break;
    }
  });

  afterAll(() => {
    server?.kill();
  });

  it.each(['busy', 'callback', 'coroutine', 'async'])(
    'fetch --ca in the %s style: the page, its name checked',
    (style) => {
      const r = iomux('fetch', '--style', style, '--ca', certs.ca.certFile, `https://localhost:${port}/goods/7/`);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toContain('<h1>goods 7</h1>');
    },
  );

  it('fetch without --ca fails verification (exit 1); --insecure fetches; several URLs over one kept-alive TLS connection', () => {
    const url = `https://localhost:${port}/bytes/100000`;
    const strict = iomux('fetch', url);
    expect(strict.status).toBe(1);
    expect(strict.stderr).toContain('(UNABLE_TO_VERIFY_LEAF_SIGNATURE)');
    const loose = iomux('fetch', '--insecure', url);
    expect(loose.status).toBe(0);
    expect(loose.stdout.length).toBe(100_000);
    const many = iomux(
      'fetch',
      '--ca',
      certs.ca.certFile,
      '--concurrency',
      '1',
      url,
      `https://127.0.0.1:${port}/chunked/5000`,
    );
    expect(many.status).toBe(0);
    expect(many.stdout).toBe(`200 100000 ${url}\n200 5000 https://127.0.0.1:${port}/chunked/5000\n`);
  });

  it("Node's https client gets pages at TLS 1.2 and 1.3", async () => {
    for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
      const r = await nodeGet(`https://localhost:${port}/goods/3/`, certs.ca.cert, version);
      expect(r).toMatchObject({ status: 200, protocol: version });
      expect(r.body).toContain('<h1>goods 3</h1>');
    }
  });

  it('a handshake that fails closes that connection only: the server goes on', async () => {
    // A client that does not trust the server aborts its handshake with an alert.
    await new Promise<void>((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost' });
      s.on('error', () => resolve());
      s.on('secureConnect', () => resolve());
    });
    // Plain HTTP on the TLS port: no ClientHello at all.
    await new Promise<void>((resolve) => {
      const s = netConnect(port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      s.on('data', () => {});
      s.on('error', () => resolve());
      s.on('close', () => resolve());
    });
    const r = await nodeGet(`https://localhost:${port}/goods/1/`, certs.ca.cert, 'TLSv1.3');
    expect(r.status).toBe(200);
  });

  it('serve --tls refuses missing or unreadable files with a usage error (exit 2)', () => {
    expect(iomux('serve', '--tls', certs.server.certFile)).toMatchObject({
      status: 2,
      stderr: expect.stringContaining('--tls takes a certificate file and a key file'),
    });
    expect(iomux('serve', '--tls', '/nonexistent.crt', certs.server.keyFile)).toMatchObject({
      status: 2,
      stderr: expect.stringContaining('cannot read /nonexistent.crt (ENOENT)'),
    });
    // A key that is not the certificate's.
    expect(iomux('serve', '--tls', certs.server.certFile, certs.client.keyFile)).toMatchObject({
      status: 2,
      stderr: expect.stringContaining('--tls:'),
    });
    expect(iomux('fetch', '--ca', '/nonexistent.pem', 'https://localhost/')).toMatchObject({ status: 2 });
  });

  it('demo --tls: every style over https, with a certificate made for the run, or the files given', () => {
    const made = iomux('demo', '--tls', '--count', '3', '--latency', '0');
    expect(made.stderr).toBe('');
    expect(made.status).toBe(0);
    expect(made.stdout).toMatch(/at https:\/\/127\.0\.0\.1:\d+\/goods/);
    expect(made.stdout).toMatch(/busy\s+-\s+[\d.]+\s+[\d.]+\s+3\s+0\s+\d+/);
    expect(made.stdout).toMatch(/async\s+epoll\s+[\d.]+\s+[\d.]+\s+3\s+0\s+\d+/);
    const given = iomux(
      'demo',
      '--models',
      '--tls',
      certs.server.certFile,
      certs.server.keyFile,
      '--ca',
      certs.ca.certFile,
      '--count',
      '2',
      '--latency',
      '0',
    );
    expect(given.stderr).toBe('');
    expect(given.status).toBe(0);
    expect(given.stdout).toMatch(/signal-driven\s+signal-driven\s+\d+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+\d+\s+\d+\s+2\s+0/);
    expect(iomux('demo', '--ca', certs.ca.certFile)).toMatchObject({ status: 2 });
  }, 60_000);

  it('--help tells of https and TLS', () => {
    expect(iomux('fetch', '--help').stdout).toMatch(/--ca FILE[\s\S]*--insecure/);
    expect(iomux('serve', '--help').stdout).toContain('--tls CERT KEY');
    expect(iomux('demo', '--help').stdout).toMatch(/--tls \[CERT KEY\]/);
  });
});
