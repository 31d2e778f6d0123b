/**
 * Hostile review of TLS (native/tls_*.cc, src/sys/tls.ts, src/loop/tls-ops.ts):
 * each test shows a bug found in review, and keeps it fixed.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

import { type CertificateSet, makeCertificates } from '../../bench/src/tls-certs.js';
import { type Coroutine, gather } from '../../src/coro/index.js';
import type { EventLoop } from '../../src/loop/index.js';
import {
  SHUT_WR,
  SO_RCVTIMEO,
  SOL_SOCKET,
  type Socket,
  socketpair,
  TLS_WANT_READ,
  TlsContext,
  type TlsError,
  type TlsSocket,
  TlsWantWriteError,
  type WrapSocketOptions,
} from '../../src/sys/index.js';
import { BACKENDS, testLoop } from '../helpers/loops.js';

let certs: CertificateSet;
let serverContext: TlsContext;

beforeAll(() => {
  certs = makeCertificates();
  serverContext = new TlsContext({ server: true, cert: certs.server.cert, key: certs.server.key });
});

const root = fileURLToPath(new URL('../..', import.meta.url));

// A connected pair of TLS sockets over a non-blocking socketpair.
function tlsPair(
  client: TlsContext,
  wrap: WrapSocketOptions,
  server: TlsContext = serverContext,
): { client: TlsSocket; server: TlsSocket } {
  const [a, b] = socketpair();
  a.setBlocking(false);
  b.setBlocking(false);
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

// One round trip each way (brings TLS 1.3's session tickets to the client).
function roundTrip(client: TlsSocket, server: TlsSocket): void {
  const buf = Buffer.alloc(16);
  expect(client.trySend('ping')).toBe(4);
  expect(server.tryRecvInto(buf)).toBe(4);
  expect(server.trySend('pong')).toBe(4);
  expect(client.tryRecvInto(buf)).toBe(4);
}

function failureOf(fn: () => void): Error | null {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  return null;
}

// Runs `script` (CommonJS) in a child node with `native` bound to this
// clone's addon; its exit status and output.
function runNative(script: string): { status: number | null; signal: string | null; out: string } {
  const prelude = `const native = require('node-gyp-build')(${JSON.stringify(root)});\n`;
  const child = spawnSync(process.execPath, ['-e', prelude + script], { cwd: root, encoding: 'utf8', timeout: 30_000 });
  return { status: child.status, signal: child.signal, out: `${child.stdout}${child.stderr}` };
}

describe('native TlsContext unwrapping', () => {
  it('an object that passes instanceof TlsContext but wraps nothing is a TypeError, not a SIGSEGV', () => {
    const result = runNative(`
      const fake = Object.create(native.TlsContext.prototype);
      try { new native.TlsConn(fake, 0); console.log('no throw'); }
      catch (e) { console.log(e.constructor.name + ': ' + e.message); }
    `);
    expect(result.signal).toBeNull();
    expect(result.status).toBe(0);
    expect(result.out).toMatch(/^TypeError: /);
  });
});

describe('session resumption and the host name', () => {
  it('a session kept under a key is not resumed for another host name: the name is still checked', () => {
    const context = new TlsContext({ ca: certs.ca.cert });
    // A connection to localhost (the certificate's name) leaves a session under 'shared'.
    const first = tlsPair(context, { serverHostname: 'localhost', sessionKey: 'shared' });
    handshake(first.client, first.server);
    roundTrip(first.client, first.server);
    expect(first.client.authorized).toBe(true);
    first.client.close();
    first.server.close();
    // The same key for a name the certificate does not hold: a full
    // handshake would fail ERR_TLS_CERT_ALTNAME_INVALID; resumption must not skip it.
    const second = tlsPair(context, { serverHostname: 'evil.example', sessionKey: 'shared' });
    const error = failureOf(() => handshake(second.client, second.server));
    const reused = second.client.sessionReused;
    second.client.close();
    second.server.close();
    expect({ code: (error as TlsError | null)?.code, reused }).toEqual({
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
      reused: false,
    });
  });
});

describe('names and chains as Node takes them', () => {
  it('a fully qualified name with its trailing dot matches the certificate (as node:tls)', () => {
    const context = new TlsContext({ ca: certs.ca.cert });
    const { client, server } = tlsPair(context, { serverHostname: 'localhost.' });
    const error = failureOf(() => handshake(client, server));
    const authorized = client.authorized;
    // SNI carries no trailing dot (RFC 6066 3).
    const servername = server.servername;
    client.close();
    server.close();
    expect({ error: (error as TlsError | null)?.code ?? null, authorized, servername }).toEqual({
      error: null,
      authorized: true,
      servername: 'localhost',
    });
  });

  it('a chain certificate that does not parse is an error, not silently left out (as node:tls)', () => {
    const garbage = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
    const make = (): TlsContext =>
      new TlsContext({ server: true, cert: `${certs.server.cert}\n${garbage}`, key: certs.server.key });
    expect(make).toThrow(expect.objectContaining({ code: expect.stringMatching(/^ERR_OSSL_/) }));
  });
});

describe('verification without an explicit handshake', () => {
  it('a send before doHandshake still refuses a certificate that does not verify', () => {
    const context = new TlsContext({ ca: certs.ca.cert });
    // localhost's certificate, asked for another name: the peer is not who it should be.
    const { client, server } = tlsPair(context, { serverHostname: 'bank.example' });
    const got = Buffer.alloc(64);
    let received = 0;
    let error: Error | null = null;
    // No tryHandshake: SSL_write shakes hands on its own, as Python's send does.
    for (let i = 0; i < 50 && error === null && received === 0; i++) {
      try {
        client.trySend('the password');
      } catch (e) {
        error = e as Error;
      }
      try {
        const n = server.tryRecvInto(got);
        if (n > 0) received = n;
      } catch {
        // the client's failure may end the server's side too
      }
    }
    client.close();
    server.close();
    expect({ code: (error as TlsError | null)?.code, leaked: got.subarray(0, received).toString() }).toEqual({
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
      leaked: '',
    });
  });
});

describe('the verification error a peer gets', () => {
  // node:tls reports the chain's failure, and the name only for a chain
  // that verifies: a name mismatch must not hide an untrusted chain (code
  // that tolerates one failure would then accept the other).
  const cases: [string, () => CertificateSet['server'], string][] = [
    ['an unknown CA', () => certs.unknownCa, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
    ['an expired certificate', () => certs.expired, 'CERT_HAS_EXPIRED'],
    ['a self-signed certificate', () => certs.selfSigned, 'DEPTH_ZERO_SELF_SIGNED_CERT'],
  ];
  it.each(cases)('%s for another name is reported as its chain failure, as node:tls does', (_name, pair, code) => {
    const keyPair = pair();
    const server = new TlsContext({ server: true, cert: keyPair.cert, key: keyPair.key });
    const lenient = tlsPair(
      new TlsContext({ ca: certs.ca.cert, rejectUnauthorized: false }),
      { serverHostname: 'other.example' },
      server,
    );
    handshake(lenient.client, lenient.server);
    const reported = lenient.client.authorizationError;
    lenient.client.close();
    lenient.server.close();
    const strict = tlsPair(new TlsContext({ ca: certs.ca.cert }), { serverHostname: 'other.example' }, server);
    const error = failureOf(() => handshake(strict.client, strict.server)) as TlsError | null;
    strict.client.close();
    strict.server.close();
    expect({ reported, thrown: error?.code }).toEqual({ reported: code, thrown: code });
  });
});

describe('shutdown(SHUT_WR) with a full socket buffer', () => {
  it('close_notify is not lost: a want error, and a later call sends it before shutdown(2)', () => {
    const context = new TlsContext({ ca: certs.ca.cert });
    const record = Buffer.alloc(16384, 1); // one TLS record each
    // How many whole records the socket takes while the peer reads nothing.
    const probe = tlsPair(context, { serverHostname: 'localhost' });
    handshake(probe.client, probe.server);
    let fit = 0;
    while (probe.client.trySend(record) > 0) fit++;
    probe.client.close();
    probe.server.close();
    // All of them went: nothing of ours is half-sent, but no room is left.
    const { client, server } = tlsPair(context, { serverHostname: 'localhost' });
    handshake(client, server);
    for (let i = 0; i < fit; i++) expect(client.trySend(record)).toBe(record.length);
    let shut = false;
    const tryShut = (): void => {
      try {
        client.shutdown(SHUT_WR);
        shut = true;
      } catch (error) {
        if (!(error instanceof TlsWantWriteError)) throw error;
      }
    };
    tryShut();
    const buf = Buffer.alloc(65536);
    let received = 0;
    let end = '';
    for (let i = 0; i < 1000 && end === ''; i++) {
      try {
        const n = server.tryRecvInto(buf);
        if (n === 0) end = 'close_notify';
        else if (n > 0) received += n;
        else if (n === TLS_WANT_READ && !shut) tryShut();
      } catch (error) {
        end = (error as { code?: string }).code ?? String(error);
      }
    }
    client.close();
    server.close();
    expect({ received, end }).toEqual({ received: fit * record.length, end: 'close_notify' });
  });
});

describe('closing after shutdown', () => {
  it('close() after shutdown(SHUT_WR) on a blocking socket does not wait for the peer', () => {
    const context = new TlsContext({ ca: certs.ca.cert });
    const { client, server } = tlsPair(context, { serverHostname: 'localhost' });
    handshake(client, server);
    client.socket.setBlocking(true);
    // Bounds the wait a bug would make (else it would be forever): a
    // blocking receive gives up after 1.5 s.
    const timeval = Buffer.alloc(16);
    timeval.writeBigInt64LE(1n, 0);
    timeval.writeBigInt64LE(500_000n, 8);
    client.socket.setsockopt(SOL_SOCKET, SO_RCVTIMEO, timeval);
    client.shutdown(SHUT_WR); // close_notify, then shutdown(2)
    const started = performance.now();
    // The peer is alive and silent (it has not closed): close() sends
    // nothing more and must not read, waiting for the peer's close_notify.
    client.close();
    const elapsed = performance.now() - started;
    server.close();
    expect(elapsed).toBeLessThan(500);
  });
});

// A TLS echo-less sink: accepts one connection over a socketpair and reads
// everything until close_notify, returning it.
function* sink(loop: EventLoop, sock: Socket): Coroutine<Buffer> {
  const tls = yield* loop.startTls(sock, { serverSide: true, context: serverContext });
  const chunks: Buffer[] = [];
  for (;;) {
    const chunk = yield* loop.sockRecv(tls, 65536);
    if (chunk.length === 0) break;
    chunks.push(chunk);
  }
  tls.close();
  return Buffer.concat(chunks);
}

describe.each(BACKENDS)('TLS on a blocking socket on the %s loop', (backend) => {
  it('startTls never blocks the loop, as the plain sock_* operations do not (MSG_DONTWAIT)', () => {
    const loop = testLoop(backend);
    const [a, b] = socketpair(); // blocking, as socketpair() makes them
    // A bug blocks in recv(2) inside startTls, with the peer on this very
    // loop: forever. A receive timeout bounds it to 1.5 s for the test.
    const timeval = Buffer.alloc(16);
    timeval.writeBigInt64LE(1n, 0);
    timeval.writeBigInt64LE(500_000n, 8);
    a.setsockopt(SOL_SOCKET, SO_RCVTIMEO, timeval);
    b.setsockopt(SOL_SOCKET, SO_RCVTIMEO, timeval);
    const started = performance.now();
    const [client, server] = loop.runUntilComplete(
      (function* (): Coroutine<unknown[]> {
        return (yield* gather(
          loop.startTls(a, { serverName: 'localhost', ca: certs.ca.cert }),
          loop.startTls(b, { serverSide: true, context: serverContext }),
        )) as unknown[];
      })(),
    ) as [TlsSocket, TlsSocket];
    const elapsed = performance.now() - started;
    expect(client.authorized).toBe(true);
    client.close();
    server.close();
    expect(elapsed).toBeLessThan(1000);
  });
});

describe.each(BACKENDS)('TLS sends on the %s loop', (backend) => {
  it('cancelling a queued send that OpenSSL never saw does not break the sends after it', () => {
    const loop = testLoop(backend);
    const [a, b] = socketpair();
    a.setBlocking(false);
    b.setBlocking(false);
    const big = randomBytes(4 << 20);
    function* client(): Coroutine<string> {
      const tls = yield* loop.startTls(a, { serverName: 'localhost', ca: certs.ca.cert });
      const first = loop.sockSendAll(tls, big); // waits: the socket buffer fills
      const second = loop.sockSendAll(tls, 'never sent'); // queued behind it
      yield* first;
      // The second has not been tried yet (it goes with the next writability):
      // cancelling it takes nothing half-sent out of the stream.
      second.cancel();
      expect(second.cancelled()).toBe(true);
      let outcome = 'sent';
      try {
        yield* loop.sockSendAll(tls, 'third');
      } catch (error) {
        outcome = (error as { code?: string }).code ?? String(error);
      }
      tls.close();
      return outcome;
    }
    const [received, outcome] = loop.runUntilComplete(
      (function* (): Coroutine<unknown[]> {
        return (yield* gather(sink(loop, b), client())) as unknown[];
      })(),
    ) as [Buffer, string];
    expect(outcome).toBe('sent');
    expect(received.length).toBe(big.length + 'third'.length);
    expect(received.subarray(big.length).toString()).toBe('third');
  });
});
