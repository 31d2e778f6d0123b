/**
 * TlsContext and TlsSocket (src/sys/tls.ts, native/tls_*.cc): handshakes,
 * bytes both ways, verification with Node's error codes, ALPN, versions,
 * client certificates and session resumption -- between two iomux TLS
 * sockets over a socketpair (driven by hand, non-blocking: every want is
 * seen) and against node:tls. Each bad input gives its clear error.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type CertificateSet, makeCertificates } from '../../bench/src/tls-certs.js';
import {
  AF_INET,
  BlockingIOError,
  OSError,
  SOCK_STREAM,
  Socket,
  socketpair,
  TLS_WANT_READ,
  TLS_WANT_WRITE,
  TlsContext,
  type TlsContextOptions,
  TlsError,
  type TlsSocket,
  TlsWantReadError,
  type WrapSocketOptions,
} from '../../src/sys/index.js';
import { native } from '../../src/sys/native.js';
import { openFdCount } from '../helpers/fds.js';
import { startTlsEchoServer, type TlsEchoServer } from '../helpers/tls-servers.js';

let certs: CertificateSet;

beforeAll(() => {
  certs = makeCertificates();
});

// A connected pair of TLS sockets over a non-blocking socketpair.
function tlsPair(
  clientOptions: TlsContextOptions,
  serverOptions: TlsContextOptions = {},
  wrap: WrapSocketOptions = { serverHostname: 'localhost' },
): { client: TlsSocket; server: TlsSocket } {
  const [a, b] = socketpair();
  a.setBlocking(false);
  b.setBlocking(false);
  const server = new TlsContext({ server: true, cert: certs.server.cert, key: certs.server.key, ...serverOptions });
  const client = new TlsContext({ ca: certs.ca.cert, ...clientOptions });
  return { client: client.wrapSocket(a, wrap), server: server.wrapSocket(b) };
}

// Steps both handshakes until both are done (or one throws); bounded.
function handshake(client: TlsSocket, server: TlsSocket): void {
  let clientDone = false;
  let serverDone = false;
  for (let i = 0; i < 50 && !(clientDone && serverDone); i++) {
    if (!clientDone) clientDone = client.tryHandshake() === 0;
    if (!serverDone) serverDone = server.tryHandshake() === 0;
  }
  if (!(clientDone && serverDone)) throw new Error('handshake did not finish in 50 steps');
}

// Sends all of `data` from `from` while draining `to`, alternating; bounded.
function transfer(from: TlsSocket, to: TlsSocket, data: Buffer): Buffer {
  const out = Buffer.alloc(data.length);
  let sent = 0;
  let got = 0;
  for (let i = 0; i < 100_000 && got < data.length; i++) {
    if (sent < data.length) {
      const n = from.trySend(data, sent);
      if (n > 0) sent += n;
      else expect([TLS_WANT_READ, TLS_WANT_WRITE]).toContain(n);
    }
    const m = to.tryRecvInto(out, got);
    if (m > 0) got += m;
    else expect(m).toBe(TLS_WANT_READ);
  }
  return out.subarray(0, got);
}

function pairCloses(...sockets: TlsSocket[]): void {
  for (const s of sockets) s.close();
}

function failureOf(fn: () => void): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a throw');
}

describe('a handshake over a socketpair', () => {
  it('asks for readiness, completes, and reports what it agreed', () => {
    const { client, server } = tlsPair({ alpn: ['h2', 'http/1.1'] }, { alpn: ['http/1.1'] });
    // Nothing came yet: the server must wait for the ClientHello.
    expect(server.tryHandshake()).toBe(TLS_WANT_READ);
    handshake(client, server);
    expect(client.handshaken && server.handshaken).toBe(true);
    expect(client.protocol).toBe('TLSv1.3');
    expect(client.cipher).toMatch(/^TLS_/);
    expect(client.alpnProtocol).toBe('http/1.1');
    expect(server.alpnProtocol).toBe('http/1.1');
    expect(server.servername).toBe('localhost');
    expect(client.authorized).toBe(true);
    expect(client.authorizationError).toBeNull();
    expect(client.getPeerCertificate()?.subjectAltName).toContain('DNS:localhost');
    pairCloses(client, server);
  });

  it('moves 4 MiB each way byte for byte, through want-write and want-read', () => {
    const { client, server } = tlsPair({});
    handshake(client, server);
    const data = Buffer.alloc(4 << 20);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >> 9)) & 0xff;
    const digest = createHash('sha256').update(data).digest('hex');
    expect(
      createHash('sha256')
        .update(transfer(client, server, data))
        .digest('hex'),
    ).toBe(digest);
    expect(
      createHash('sha256')
        .update(transfer(server, client, data))
        .digest('hex'),
    ).toBe(digest);
    pairCloses(client, server);
  });

  it('TLS 1.2 when the server goes no higher; a client that needs 1.3 then fails', () => {
    const old = tlsPair({}, { maxVersion: 'TLSv1.2' });
    handshake(old.client, old.server);
    expect(old.client.protocol).toBe('TLSv1.2');
    expect(transfer(old.client, old.server, Buffer.from('hello')).toString()).toBe('hello');
    pairCloses(old.client, old.server);

    const strict = tlsPair({ minVersion: 'TLSv1.3' }, { maxVersion: 'TLSv1.2' });
    const error = failureOf(() => handshake(strict.client, strict.server));
    expect(error).toBeInstanceOf(TlsError);
    expect((error as TlsError).code).toMatch(/^ERR_SSL_/);
    pairCloses(strict.client, strict.server);
  });

  it('a Python-like doHandshake on a non-blocking socket throws TlsWantReadError (a BlockingIOError)', () => {
    const { client, server } = tlsPair({});
    const error = failureOf(() => server.doHandshake());
    expect(error).toBeInstanceOf(TlsWantReadError);
    expect(error).toBeInstanceOf(BlockingIOError);
    expect((error as BlockingIOError).code).toBe('EAGAIN');
    pairCloses(client, server);
  });

  it('a second connection with the same session key resumes', () => {
    const context = new TlsContext({ ca: certs.ca.cert });
    const serverContext = new TlsContext({ server: true, cert: certs.server.cert, key: certs.server.key });
    const reused: boolean[] = [];
    for (let i = 0; i < 3; i++) {
      const [a, b] = socketpair();
      a.setBlocking(false);
      b.setBlocking(false);
      const client = context.wrapSocket(a, { serverHostname: 'localhost', sessionKey: 'pair' });
      const server = serverContext.wrapSocket(b);
      handshake(client, server);
      // TLS 1.3 tickets come after the handshake: a round trip delivers them.
      expect(transfer(client, server, Buffer.from('ping')).toString()).toBe('ping');
      expect(transfer(server, client, Buffer.from('pong')).toString()).toBe('pong');
      reused.push(client.sessionReused);
      pairCloses(client, server);
    }
    expect(reused).toEqual([false, true, true]);
  });
});

describe('verification, with Node codes', () => {
  const cases: [string, () => CertificateSet[keyof CertificateSet], string][] = [
    ['an expired certificate', () => certs.expired, 'CERT_HAS_EXPIRED'],
    ['a self-signed certificate', () => certs.selfSigned, 'DEPTH_ZERO_SELF_SIGNED_CERT'],
    ['a certificate of an unknown CA', () => certs.unknownCa, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
    ['a certificate for another host', () => certs.wrongHost, 'ERR_TLS_CERT_ALTNAME_INVALID'],
  ];
  it.each(cases)('%s fails the handshake with its code', (_name, pair, code) => {
    const keyPair = pair() as CertificateSet['server'];
    const { client, server } = tlsPair({}, { cert: keyPair.cert, key: keyPair.key });
    const error = failureOf(() => handshake(client, server));
    expect(error).toBeInstanceOf(TlsError);
    expect((error as TlsError).code).toBe(code);
    pairCloses(client, server);
  });

  it('names the host and the certificate names on a mismatch, as Node does', () => {
    const { client, server } = tlsPair({}, {}, { serverHostname: 'other.example' });
    const error = failureOf(() => handshake(client, server)) as TlsError;
    expect(error.code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    expect(error.host).toBe('other.example');
    expect(error.message).toBe(
      "Hostname/IP does not match certificate's altnames: Host: other.example. is not in the cert's altnames: DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1",
    );
    pairCloses(client, server);
  });

  it('checks an IP address against the IP names (and sends no SNI)', () => {
    const good = tlsPair({}, {}, { serverHostname: '127.0.0.1' });
    handshake(good.client, good.server);
    expect(good.client.authorized).toBe(true);
    expect(good.server.servername).toBeNull();
    pairCloses(good.client, good.server);
    const bad = tlsPair({}, {}, { serverHostname: '127.0.0.2' });
    expect((failureOf(() => handshake(bad.client, bad.server)) as TlsError).code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    pairCloses(bad.client, bad.server);
  });

  it('without a ca, Node roots are trusted: the test CA is not one of them', () => {
    // tlsPair's client options come after its ca: undefined leaves Node's roots.
    const { client, server } = tlsPair({ ca: undefined } as unknown as TlsContextOptions);
    expect((failureOf(() => handshake(client, server)) as TlsError).code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    pairCloses(client, server);
  });

  it('rejectUnauthorized: false completes and reports why the peer is not authorized', () => {
    const { client, server } = tlsPair(
      { rejectUnauthorized: false },
      { cert: certs.expired.cert, key: certs.expired.key },
    );
    handshake(client, server);
    expect(client.authorized).toBe(false);
    expect(client.authorizationError).toBe('CERT_HAS_EXPIRED');
    expect(transfer(client, server, Buffer.from('still talks')).toString()).toBe('still talks');
    pairCloses(client, server);
  });

  it('a server asking for client certificates sees the client; one without fails', () => {
    const withCert = tlsPair(
      { cert: certs.client.cert, key: certs.client.key },
      { requestCert: true, ca: certs.ca.cert },
    );
    handshake(withCert.client, withCert.server);
    // TLS 1.3: the server verifies the client's certificate after the client is done.
    expect(transfer(withCert.client, withCert.server, Buffer.from('hi')).toString()).toBe('hi');
    expect(withCert.server.authorized).toBe(true);
    expect(withCert.server.getPeerCertificate()?.subject).toContain('CN=iomux-client');
    pairCloses(withCert.client, withCert.server);

    const without = tlsPair({}, { requestCert: true, ca: certs.ca.cert });
    const error = failureOf(() => {
      handshake(without.client, without.server);
      transfer(without.client, without.server, Buffer.from('hi'));
    });
    expect(error).toBeInstanceOf(TlsError);
    pairCloses(without.client, without.server);
  });
});

describe('closing', () => {
  it('close_notify reads as 0; a peer gone without it is an error, not an end', () => {
    const clean = tlsPair({});
    handshake(clean.client, clean.server);
    clean.server.close();
    expect(clean.client.tryRecvInto(Buffer.alloc(10))).toBe(0);
    clean.client.close();

    const cut = tlsPair({});
    handshake(cut.client, cut.server);
    expect(transfer(cut.client, cut.server, Buffer.from('x')).toString()).toBe('x');
    cut.server.socket.close(); // the socket, not the TLS connection: no close_notify
    const error = failureOf(() => cut.client.tryRecvInto(Buffer.alloc(10)));
    expect((error as TlsError).code).toBe('ERR_SSL_UNEXPECTED_EOF_WHILE_READING');
    cut.client.close();
  });

  it('a peer gone mid-handshake is ECONNRESET', () => {
    const { client, server } = tlsPair({});
    expect(client.tryHandshake()).toBe(TLS_WANT_READ);
    server.socket.close();
    const error = failureOf(() => client.tryHandshake());
    expect((error as TlsError).code).toBe('ECONNRESET');
    client.close();
  });

  it('closing the socket underneath ends the TLS connection: later calls fail EBADF, nothing crashes', () => {
    const { client, server } = tlsPair({});
    handshake(client, server);
    client.socket.close();
    expect(client.closed).toBe(true);
    for (const call of [
      () => client.tryRecvInto(Buffer.alloc(4)),
      () => client.trySend('x'),
      () => client.tryHandshake(),
      () => client.tryShutdown(),
    ]) {
      const error = failureOf(call);
      expect(error).toBeInstanceOf(OSError);
      expect((error as OSError).code).toBe('EBADF');
    }
    client.close(); // idempotent
    server.close();
  });

  it('closed mid-handshake, or never shaken, frees cleanly: no fd stays open', () => {
    const before = openFdCount();
    for (let i = 0; i < 500; i++) {
      const { client, server } = tlsPair({});
      if (i % 2 === 0) client.tryHandshake();
      if (i % 3 === 0) server.tryHandshake();
      if (i % 5 === 0) server.socket.close();
      pairCloses(client, server);
    }
    expect(openFdCount()).toBe(before);
  });
});

describe('left to the garbage collector', () => {
  it('frees every SSL once: connections in every state, a worker terminated with them alive', () => {
    const dist = fileURLToPath(new URL('../../dist', import.meta.url));
    const script = fileURLToPath(new URL('./fixtures/tls-collect.mjs', import.meta.url));
    const r = spawnSync(
      process.execPath,
      ['--expose-gc', script, dist, certs.server.certFile, certs.server.keyFile, certs.ca.certFile],
      { encoding: 'utf8', timeout: 100_000 },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const [word, before, after] = r.stdout.trim().split(' ');
    expect(word).toBe('ok');
    // The sockets nobody closed were closed when collected: fds back where they were.
    expect(Number(after)).toBeLessThanOrEqual(Number(before));
  }, 120_000);
});

describe('against node:tls', () => {
  let echo: TlsEchoServer;
  beforeAll(async () => {
    echo = await startTlsEchoServer(certs, { alpn: ['echo/1'] });
  });
  afterAll(async () => {
    await echo.close();
  });

  // The echo server runs on this thread's Node loop: a blocking socket would
  // block it. The client is non-blocking, and yields to Node while it waits.
  async function step(fn: () => number): Promise<number> {
    for (let i = 0; i < 2000; i++) {
      const rc = fn();
      if (rc !== TLS_WANT_READ && rc !== TLS_WANT_WRITE) return rc;
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    throw new Error('no progress in 2,000 steps');
  }

  it('shakes hands, agrees ALPN and echoes', async () => {
    const sock = new Socket(AF_INET, SOCK_STREAM);
    sock.connect(['127.0.0.1', echo.port]);
    sock.setBlocking(false);
    const tls = new TlsContext({ ca: certs.ca.cert, alpn: ['echo/1'] }).wrapSocket(sock, {
      serverHostname: 'localhost',
    });
    expect(await step(() => tls.tryHandshake())).toBe(0);
    expect(tls.alpnProtocol).toBe('echo/1');
    expect(await step(() => tls.trySend('hello node'))).toBe(10);
    const buffer = Buffer.alloc(64);
    const n = await step(() => tls.tryRecvInto(buffer));
    expect(buffer.toString('utf8', 0, n)).toBe('hello node');
    tls.close();
  });
});

describe('bad input: a clear error, nothing else changes', () => {
  it.each([
    [{ server: 'yes' }, 'ERR_INVALID_ARG_TYPE'],
    [{ rejectUnauthorized: 1 }, 'ERR_INVALID_ARG_TYPE'],
    [{ minVersion: 'TLSv1.1' }, 'ERR_TLS_INVALID_PROTOCOL_VERSION'],
    [{ maxVersion: 3 }, 'ERR_TLS_INVALID_PROTOCOL_VERSION'],
    [{ minVersion: 'TLSv1.3', maxVersion: 'TLSv1.2' }, 'ERR_INVALID_ARG_VALUE'],
    [{ ca: 42 }, 'ERR_INVALID_ARG_TYPE'],
    [{ alpn: [] }, 'ERR_INVALID_ARG_TYPE'],
    [{ alpn: ['x'.repeat(256)] }, 'ERR_INVALID_ARG_VALUE'],
    [{ alpn: [''] }, 'ERR_INVALID_ARG_VALUE'],
    [{ server: true }, 'ERR_INVALID_ARG_VALUE'],
  ] as [unknown, string][])('TlsContext(%j) throws %s', (options, code) => {
    expect(() => new TlsContext(options as TlsContextOptions)).toThrow(expect.objectContaining({ code }));
  });

  it('a cert without its key, PEM that does not parse, a key of another certificate', () => {
    expect(() => new TlsContext({ cert: certs.server.cert })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
    );
    expect(() => new TlsContext({ ca: 'not a certificate' })).toThrow(
      expect.objectContaining({ code: expect.stringMatching(/^ERR_OSSL_/) }),
    );
    expect(() => new TlsContext({ server: true, cert: 'garbage', key: certs.server.key })).toThrow(
      expect.objectContaining({ code: expect.stringMatching(/^ERR_OSSL_/) }),
    );
    expect(() => new TlsContext({ server: true, cert: certs.server.cert, key: certs.client.key })).toThrow(
      expect.objectContaining({ code: expect.stringMatching(/^ERR_OSSL_/) }),
    );
  });

  it('wrapSocket refuses a closed socket and a bad host name, and leaves the socket as it was', () => {
    const context = new TlsContext({ ca: certs.ca.cert });
    const [a, b] = socketpair();
    expect(() => context.wrapSocket(a, { serverHostname: '' })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
    );
    expect(() => context.wrapSocket(a, { serverHostname: 'bad\u0000name' })).toThrow(TypeError);
    expect(a.closed).toBe(false);
    a.send('plain');
    expect(b.recv(10).toString()).toBe('plain');
    a.close();
    expect(() => context.wrapSocket(a)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    b.close();
  });

  it('a socket that carries a TLS connection is not wrapped twice', () => {
    const { client, server } = tlsPair({});
    const again = (): TlsSocket => new TlsContext({ ca: certs.ca.cert }).wrapSocket(client.socket);
    expect(again).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    // The first one goes on as if nothing happened.
    handshake(client, server);
    expect(transfer(client, server, Buffer.from('still one')).toString()).toBe('still one');
    pairCloses(client, server);
  });

  it('a range outside the buffer is a RangeError before OpenSSL runs', () => {
    const { client, server } = tlsPair({});
    handshake(client, server);
    expect(() => client.tryRecvInto(Buffer.alloc(4), 5)).toThrow(RangeError);
    expect(() => client.trySend(Buffer.alloc(4), 0, 9)).toThrow(RangeError);
    expect(() => client.trySend(42 as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(transfer(client, server, Buffer.from('intact')).toString()).toBe('intact');
    pairCloses(client, server);
  });

  it('the native functions refuse what is not the id of a TLS connection (no crash)', () => {
    const context = new TlsContext();
    // A connection closed (its object still alive): its id is refused nowhere, its operations fail.
    const [a] = socketpair();
    const gone = new native.TlsConn(context.native, a.fileno());
    const goneId = gone.id();
    gone.close();
    a.close();
    const bad = [undefined, null, 0, -1, 1.5, 2 ** 31, Number.NaN, '1', {}, context, context.native, gone];
    for (const value of bad) {
      expect(() => native.tlsRead(value as never, Buffer.alloc(1))).toThrow(TypeError);
      expect(() => native.tlsWrite(value as never, Buffer.alloc(1))).toThrow(TypeError);
      expect(() => native.tlsHandshake(value as never)).toThrow(TypeError);
      expect(() => native.tlsShutdown(value as never)).toThrow(TypeError);
      expect(() => native.tlsHasPending(value as never)).toThrow(TypeError);
    }
    // A closed connection's id still names it until it is collected: its operations fail with EBADF.
    expect(native.tlsHandshake(goneId)).toBe(native.tlsResults.FAILED);
    expect(() => new native.TlsConn({} as never, 0)).toThrow(TypeError);
    expect(() => new native.TlsConn(context.native, -1)).toThrow(RangeError);
    expect(() => new native.TlsContext(null as never)).toThrow(TypeError);
    expect(() => new native.TlsContext({ server: 1 } as never)).toThrow(TypeError);
    expect(() => new native.TlsContext({ minVersion: 5 } as never)).toThrow(RangeError);
  });
});
