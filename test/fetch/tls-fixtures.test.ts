/**
 * The TLS fixtures, proved with Node's own tls and https clients (no iomux):
 * the certificates of bench/src/tls-certs.ts verify, or fail, exactly as
 * the TLS tests will expect of iomux; nginx's TLS listener speaks the
 * version it is configured for; each misbehaving server of
 * test/helpers/tls-servers.ts misbehaves as documented. When iomux's TLS
 * client reports something here differently from Node, the fixture is not
 * the suspect.
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import { Agent, get as httpsGet, type RequestOptions } from 'node:https';
import { connect as netConnect } from 'node:net';
import {
  type ConnectionOptions,
  createServer as createTlsServer,
  type TLSSocket,
  connect as tlsConnect,
} from 'node:tls';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';

import { findNginx, startNginx } from '../../bench/src/nginx.js';
import { type CertificateSet, findOpenssl, makeCertificates } from '../../bench/src/tls-certs.js';
import {
  HTTPS_HELLO,
  patternBytes,
  rawDuplex,
  startCloseDelimitedHttps,
  startHttpsServer,
  startResetMidHandshake,
  startTlsEchoServer,
  startTruncatingHttps,
  type TestServer,
} from '../helpers/tls-servers.js';

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Servers started by the running test, closed after it whatever happened. */
const servers: TestServer[] = [];
async function track<T extends TestServer>(server: Promise<T>): Promise<T> {
  const s = await server;
  servers.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** Rejects after `ms` so no test waits on a peer that went silent. */
function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** A TLS handshake: resolves the connected socket's protocol, rejects with the client's error. */
async function handshake(options: ConnectionOptions): Promise<{ protocol: string | null; socket: TLSSocket }> {
  return within(
    5000,
    'handshake',
    new Promise((resolve, reject) => {
      const socket = tlsConnect(options, () => {
        resolve({ protocol: socket.getProtocol(), socket });
      });
      socket.once('error', (error) => {
        socket.destroy();
        reject(error);
      });
    }),
  );
}

/** What an https GET saw: status, body, and how the body ended. */
interface GetResult {
  status: number;
  body: Buffer;
  /** 'end' when the response ended cleanly, else the error's code or message. */
  ending: string;
  protocol: string | null;
  headers: IncomingHttpHeaders;
}

function getHttps(options: RequestOptions): Promise<GetResult> {
  return within(
    10_000,
    `GET ${options.path ?? '/'}`,
    new Promise((resolve, reject) => {
      const req = httpsGet(options, (res) => {
        const chunks: Buffer[] = [];
        const protocol = (res.socket as TLSSocket).getProtocol();
        const done = (ending: string): void =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), ending, protocol, headers: res.headers });
        res.on('data', (c: Buffer) => chunks.push(c));
        res.once('end', () => done('end'));
        res.once('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
      });
      req.once('error', reject);
    }),
  );
}

const hasOpenssl = findOpenssl() !== null;
const hasNginx = findNginx() !== null;

/** A node:tls server on ::1 presenting `certs.server`, for the IPv6 SAN. */
async function startTls6(certs: CertificateSet): Promise<TestServer> {
  const server = createTlsServer({ cert: certs.server.cert, key: certs.server.key }, (s) => s.end());
  server.listen(0, '::1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  return { port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

// openssl is installed by bench/setup (.ci/run); without it there are no
// certificates, and so nothing here to prove.
describe.skipIf(!hasOpenssl)('TLS fixtures, checked by Node', () => {
  for (const keyType of ['ec', 'rsa'] as const) {
    describe(`certificates (${keyType})`, () => {
      let certs: CertificateSet;
      beforeAll(() => {
        certs = makeCertificates({ keyType });
      }, 60_000);

      it('are made once per process and key type', () => {
        expect(makeCertificates({ keyType })).toBe(certs);
        expect(certs.ca.cert).toMatch(/^-----BEGIN CERTIFICATE-----/);
        expect(certs.server.key).toMatch(/^-----BEGIN PRIVATE KEY-----/);
      });

      it('the server certificate verifies with the CA as localhost, 127.0.0.1 and ::1', async () => {
        const server = await track(startTlsEchoServer(certs));
        // servername is the name checked against the SANs; without it, the host (an IP SAN).
        for (const options of [{ host: '127.0.0.1', servername: 'localhost' }, { host: '127.0.0.1' }]) {
          const { socket } = await handshake({ ...options, port: server.port, ca: certs.ca.cert });
          expect(socket.authorized).toBe(true);
          socket.destroy();
        }
        const server6 = await track(startTls6(certs));
        const { socket } = await handshake({ host: '::1', port: server6.port, ca: certs.ca.cert });
        expect(socket.authorized).toBe(true);
        socket.destroy();
      });

      // The codes Node reports, which iomux's errors are to match.
      it.each([
        ['expired', 'CERT_HAS_EXPIRED'],
        ['selfSigned', 'DEPTH_ZERO_SELF_SIGNED_CERT'],
        ['unknownCa', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
        ['wrongHost', 'ERR_TLS_CERT_ALTNAME_INVALID'],
      ] as const)('%s fails with %s', async (name, code) => {
        const server = await track(startTlsEchoServer(certs, { keyPair: certs[name] }));
        const result = handshake({ host: '127.0.0.1', servername: 'localhost', port: server.port, ca: certs.ca.cert });
        await expect(result).rejects.toMatchObject({ code });
      });

      it('the client certificate is accepted and its CN seen by the server', async () => {
        const server = await track(startTlsEchoServer(certs, { requestCert: true }));
        const { socket } = await handshake({
          host: '127.0.0.1',
          servername: 'localhost',
          port: server.port,
          ca: certs.ca.cert,
          cert: certs.client.cert,
          key: certs.client.key,
        });
        socket.write('ping');
        const [echoed] = (await within(5000, 'echo', once(socket, 'data'))) as [Buffer];
        expect(echoed.toString()).toBe('ping');
        socket.destroy();
        expect(server.last()).toMatchObject({ clientCN: 'iomux-client', authorized: true });
      });
    });
  }

  describe('servers (ec)', () => {
    let certs: CertificateSet;
    beforeAll(() => {
      certs = makeCertificates();
    }, 60_000);
    const trusted = (port: number): { host: string; servername: string; port: number; ca: string } => ({
      host: '127.0.0.1',
      servername: 'localhost',
      port,
      ca: certs.ca.cert,
    });

    it('the https server: /, /big by hash, keep-alive over one connection', async () => {
      const server = await track(startHttpsServer(certs));
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const hello = await getHttps({ ...trusted(server.port), agent, path: '/' });
        expect(hello).toMatchObject({ status: 200, ending: 'end' });
        expect(hello.body.toString()).toBe(HTTPS_HELLO);
        const big = await getHttps({ ...trusted(server.port), agent, path: `/big?bytes=${1 << 20}` });
        expect(big.body.length).toBe(1 << 20);
        expect(sha256(big.body)).toBe(sha256(patternBytes(1 << 20)));
        expect(server.connections()).toBe(1);
      } finally {
        agent.destroy();
      }
    });

    it('the https server: TLS 1.2 or 1.3 only, ALPN, client CN in x-client-cn', async () => {
      for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
        const server = await track(startHttpsServer(certs, { minVersion: version, maxVersion: version }));
        const r = await getHttps({ ...trusted(server.port), agent: false, path: '/' });
        expect(r.protocol).toBe(version);
      }
      const alpn = await track(startTlsEchoServer(certs, { alpn: ['h2', 'http/1.1'] }));
      const { socket } = await handshake({ ...trusted(alpn.port), ALPNProtocols: ['http/1.1'] });
      expect(socket.alpnProtocol).toBe('http/1.1');
      // In TLS 1.3 the client is connected before the server is: one echo first.
      socket.write('x');
      await within(5000, 'echo', once(socket, 'data'));
      socket.destroy();
      expect(alpn.last()?.alpnProtocol).toBe('http/1.1');
      const mutual = await track(startHttpsServer(certs, { requestCert: true }));
      const r = await getHttps({
        ...trusted(mutual.port),
        agent: false,
        path: '/',
        cert: certs.client.cert,
        key: certs.client.key,
      });
      expect(r.status).toBe(200);
      expect(r.headers['x-client-cn']).toBe('iomux-client');
    });

    it('reset mid-handshake: the client gets ECONNRESET', async () => {
      const server = await track(startResetMidHandshake());
      await expect(handshake(trusted(server.port))).rejects.toMatchObject({ code: 'ECONNRESET' });
    });

    it('truncating server: Node sees the body cut short', async () => {
      const server = await track(startTruncatingHttps(certs, { bodyBytes: 100_000, sendBytes: 40_000 }));
      const r = await getHttps({ ...trusted(server.port), agent: false, path: '/' });
      expect(r.status).toBe(200);
      expect(r.body.length).toBe(40_000);
      // Node 20: the response emits 'aborted' and then an error "aborted", code ECONNRESET.
      expect(r.ending).toBe('ECONNRESET');
    });

    for (const closeNotify of [true, false]) {
      it(`close-delimited body, ${closeNotify ? 'with' : 'without'} close_notify`, async () => {
        const body = randomBytes(50_000);
        const server = await track(startCloseDelimitedHttps(certs, { body, closeNotify }));
        const r = await getHttps({ ...trusted(server.port), agent: false, path: '/' });
        expect(r.status).toBe(200);
        expect(sha256(r.body)).toBe(sha256(body));
        // Node ends the response at the TCP FIN either way: it does not tell
        // a missing close_notify from a clean close.
        expect(r.ending).toBe('end');
        // On the wire (TLS 1.2, where an alert is a record of type 21 in
        // the clear): a close_notify was sent or not.
        expect((await recordTypes(server.port)).includes(21)).toBe(closeNotify);
      });
    }
  });

  // .ci/run installs nginx (bench/setup); only a machine without it skips these.
  describe.skipIf(!hasNginx)('nginx over TLS', () => {
    for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
      it(`${version} only: that version, 1 MiB by hash, the plain port too`, async () => {
        const certs = makeCertificates();
        const big = randomBytes(1 << 20);
        const tls = { certFile: certs.server.certFile, keyFile: certs.server.keyFile, protocols: version };
        const nginx = await startNginx({ 'big.bin': big }, undefined, { tls });
        if (nginx === null) throw new Error('nginx is installed but startNginx returned null');
        servers.push({ port: nginx.port, close: () => nginx.stop() });
        expect(nginx.tlsPort).toBeGreaterThan(0);
        const options = { host: '127.0.0.1', servername: 'localhost', port: nginx.tlsPort, ca: certs.ca.cert };
        const r = await getHttps({ ...options, agent: false, path: '/big.bin' });
        expect(r).toMatchObject({ status: 200, ending: 'end', protocol: version });
        expect(sha256(r.body)).toBe(sha256(big));
        // The other version is refused.
        const other = version === 'TLSv1.2' ? 'TLSv1.3' : 'TLSv1.2';
        await expect(handshake({ ...options, minVersion: other, maxVersion: other })).rejects.toThrow();
        // Resumption: nginx keeps no session cache but issues tickets.
        const first = await handshake(options);
        if (version === 'TLSv1.3') await within(5000, 'ticket', once(first.socket, 'session'));
        const session = first.socket.getSession();
        first.socket.destroy();
        const second = await handshake({ ...options, session });
        expect(second.socket.isSessionReused()).toBe(true);
        second.socket.destroy();
        const plain = await new Promise<number>((resolve, reject) => {
          const c = netConnect(nginx.port, '127.0.0.1', () => {
            c.destroy();
            resolve(nginx.port);
          });
          c.once('error', reject);
        });
        expect(plain).toBe(nginx.port);
      }, 30_000);
    }

    it('without tls, tlsPort is undefined', async () => {
      const nginx = await startNginx({});
      if (nginx === null) throw new Error('nginx is installed but startNginx returned null');
      servers.push({ port: nginx.port, close: () => nginx.stop() });
      expect(nginx.tlsPort).toBeUndefined();
    });
  });
});

/**
 * The TLS record types a TLS 1.2 client receives from `port` for one GET
 * until the server closes: 22 handshake, 20 change_cipher_spec, 23
 * application data, 21 alert. The client reads through {@link rawDuplex},
 * so every byte passes here in JS.
 */
async function recordTypes(port: number): Promise<number[]> {
  const certs = makeCertificates();
  const raw = netConnect(port, '127.0.0.1');
  const types: number[] = [];
  let pending = Buffer.alloc(0);
  raw.on('data', (d: Buffer) => {
    pending = Buffer.concat([pending, d]);
    while (pending.length >= 5) {
      const length = pending.readUInt16BE(3);
      if (pending.length < 5 + length) break;
      types.push(pending[0] as number);
      pending = pending.subarray(5 + length);
    }
  });
  await within(5000, 'connect', once(raw, 'connect'));
  const tls = tlsConnect({
    socket: rawDuplex(raw),
    servername: 'localhost',
    ca: certs.ca.cert,
    maxVersion: 'TLSv1.2',
  });
  tls.on('error', () => {});
  await within(5000, 'handshake', once(tls, 'secureConnect'));
  tls.end('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
  tls.resume();
  await within(5000, 'close', once(raw, 'close'));
  return types;
}
