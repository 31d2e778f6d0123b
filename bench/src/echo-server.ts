/**
 * The echo servers the echo benchmark compares, each run in its own process:
 *
 *   node echo-server.js iomux [select|poll|epoll]   the loop, owning mode, coroutine style (the
 *                                                   package's c10k server, echo-loop.ts)
 *   node echo-server.js iomux-traced                the same with a LoopTrace attached (SIGUSR2: print its event count)
 *   node echo-server.js iomux-uring                 the same coroutines on the io_uring (completion) loop
 *   node echo-server.js iomux-coop                  the same coroutines, cooperative mode (await loop.run)
 *   node echo-server.js iomux-callbacks             the loop, owning mode, callbacks (addReader + try*)
 *   node echo-server.js iomux-protocol              the loop's transports: loop.createServer with an echo Protocol (owning, epoll)
 *   node echo-server.js iomux-buffered              the same with a BufferedProtocol receiving into one shared buffer
 *   node echo-server.js iomux-streams               the loop's streams: startServer, a generator coroutine per client (owning, epoll)
 *   node echo-server.js iomux-udp                   UDP: loop.createDatagramEndpoint with an echo DatagramProtocol (owning, epoll)
 *   node echo-server.js selectors-iomux             the notes' selectors program (echo-selectors.ts)
 *   node echo-server.js net                         node:net
 *   node echo-server.js net-tls <certFile> <keyFile>  node:tls, the certificate and key in PEM files
 *   node echo-server.js iomux-tls <certFile> <keyFile>  the loop's coroutines over loop.startTls
 *
 * Prints "listening <port>" and serves until killed. TCP_NODELAY everywhere,
 * as in the C floor.
 *
 * The transports, streams and datagram rows use the loop's asyncio-style
 * APIs (issue 19) as their users write them.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';

import { listenSocket, serveIomux } from '#iomux/cli/bench/echo-loop.js';
import type { Coroutine } from '#iomux/coro/index.js';
import {
  type BackendName,
  type BufferedProtocol,
  type DatagramProtocol,
  type DatagramTransport,
  EventLoop,
  LoopTrace,
  type Protocol,
  type Server,
  type StreamReader,
  type StreamWriter,
  startServer,
  type Transport,
} from '#iomux/loop/index.js';
import { IPPROTO_TCP, OSError, Socket, type SocketAddress, TCP_NODELAY, TlsContext } from '#iomux/sys/index.js';
import { serveNotesSelectors } from './echo-selectors.js';

/**
 * The loop without coroutines: a reader callback per connection receives
 * into one buffer shared by all and sends straight from it, with the
 * non-throwing try* calls (no exception, no promise, no Future per message).
 * A send the kernel takes only in part copies the rest out of the shared
 * buffer and waits for writability instead of readability (the peer is not
 * reading: stop reading from it too).
 */
function serveCallbacks(): void {
  const loop = new EventLoop({ selector: 'epoll' });
  const server = listenSocket();
  const buf = Buffer.allocUnsafe(65536);

  function close(conn: Socket): void {
    loop.removeReader(conn);
    loop.removeWriter(conn);
    conn.close();
  }

  // The rest of a short send, by itself: the shared buffer is not its own.
  function sendRest(conn: Socket, data: Buffer, sent: number): void {
    loop.removeReader(conn);
    loop.addWriter(conn, writable, conn, Buffer.from(data.subarray(Math.max(sent, 0))));
  }

  function readable(conn: Socket): void {
    let n: number | null;
    let sent: number;
    try {
      n = conn.tryRecvInto(buf);
      if (n === null) return; // would block: a spurious wake-up
      if (n === 0) {
        close(conn);
        return;
      }
      sent = conn.trySend(buf.subarray(0, n)) ?? 0;
    } catch (e) {
      if (!(e instanceof OSError)) throw e;
      close(conn); // reset by the client at the end of a run
      return;
    }
    if (sent !== n) sendRest(conn, buf.subarray(0, n), sent);
  }

  function writable(conn: Socket, data: Buffer): void {
    let sent: number;
    try {
      sent = conn.trySend(data) ?? 0;
    } catch (e) {
      if (!(e instanceof OSError)) throw e;
      close(conn);
      return;
    }
    if (sent === data.length) {
      loop.removeWriter(conn);
      loop.addReader(conn, readable, conn);
    } else if (sent > 0) {
      loop.addWriter(conn, writable, conn, data.subarray(sent));
    }
  }

  loop.addReader(server, () => {
    for (;;) {
      const conn = server.tryAccept();
      if (conn === null) return;
      conn.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
      loop.addReader(conn, readable, conn);
    }
  });
  process.stdout.write(`listening ${(server.getsockname() as [string, number])[1]}\n`);
  loop.runForever();
}

/** The port of a listening Server's first socket. */
function serverPort(server: Server): number {
  const first = server.sockets[0];
  if (first === undefined) throw new Error('the server has no socket');
  return (first.getsockname() as [string, number])[1];
}

/** TCP_NODELAY on a transport's socket, as the C floor sets it (the loop may set it already). */
function noDelay(socket: unknown): void {
  if (socket instanceof Socket) socket.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
}

/** asyncio's echo Protocol: what arrives goes straight back through the transport. */
class EchoProtocol implements Protocol {
  transport: Transport | null = null;

  connectionMade(transport: Transport): void {
    this.transport = transport;
    noDelay(transport.getExtraInfo('socket'));
  }

  dataReceived(data: Buffer): void {
    (this.transport as Transport).write(data);
  }
}

/** The Protocol echo server: loop.createServer, owning mode, epoll. */
function serveProtocol(): void {
  const loop = new EventLoop({ backend: 'epoll' });
  const server = loop.runUntilComplete(
    loop.createServer(() => new EchoProtocol(), '127.0.0.1', 0, { backlog: 4096, reuseAddress: true }),
  );
  process.stdout.write(`listening ${serverPort(server)}\n`);
  loop.runForever();
}

/**
 * A buffered protocol (getBuffer + bufferUpdated, asyncio's API for
 * receiving without a copy): every connection receives into one buffer the
 * server shares, and writes straight from it -- the transport sends at
 * once, or copies the part the socket did not take.
 */
class EchoBufferedProtocol implements BufferedProtocol {
  transport: Transport | null = null;
  constructor(readonly buffer: Buffer) {}

  connectionMade(transport: Transport): void {
    this.transport = transport;
    noDelay(transport.getExtraInfo('socket'));
  }

  getBuffer(): Buffer {
    return this.buffer;
  }

  bufferUpdated(nbytes: number): void {
    (this.transport as Transport).write(this.buffer.subarray(0, nbytes));
  }
}

function serveBuffered(): void {
  const loop = new EventLoop({ backend: 'epoll' });
  const shared = Buffer.allocUnsafe(64 * 1024);
  const server = loop.runUntilComplete(
    loop.createServer(() => new EchoBufferedProtocol(shared), '127.0.0.1', 0, { backlog: 4096, reuseAddress: true }),
  );
  process.stdout.write(`listening ${serverPort(server)}\n`);
  loop.runForever();
}

/**
 * The streams echo server: startServer with a generator coroutine per
 * client, reading up to 64 KiB, writing it back and waiting for the drain
 * (asyncio's streams idiom, as the uvloop-streams peer has it). Owning mode, epoll.
 */
function serveStreams(): void {
  const loop = new EventLoop({ backend: 'epoll' });
  function* client(reader: StreamReader, writer: StreamWriter): Coroutine<void> {
    noDelay(writer.getExtraInfo('socket'));
    try {
      for (;;) {
        const data = yield* reader.read(65536);
        if (data.length === 0) break;
        writer.write(data);
        yield* writer.drain();
      }
    } catch (e) {
      if (!(e instanceof OSError)) throw e; // a client reset at the end of a run
    } finally {
      writer.close();
    }
  }
  function* main(): Coroutine<Server> {
    return yield* startServer(client, '127.0.0.1', 0, { backlog: 4096, reuseAddress: true });
  }
  const server = loop.runUntilComplete(main());
  process.stdout.write(`listening ${serverPort(server)}\n`);
  loop.runForever();
}

/** asyncio's UDP echo: each datagram goes back to its sender. */
class EchoDatagramProtocol implements DatagramProtocol {
  transport: DatagramTransport | null = null;

  connectionMade(transport: DatagramTransport): void {
    this.transport = transport;
  }

  datagramReceived(data: Buffer, address: SocketAddress | null): void {
    (this.transport as DatagramTransport).sendto(data, address);
  }
}

/** The UDP echo server: loop.createDatagramEndpoint on 127.0.0.1, owning mode, epoll. */
function serveUdp(): void {
  const loop = new EventLoop({ backend: 'epoll' });
  const [transport] = loop.runUntilComplete(
    loop.createDatagramEndpoint(() => new EchoDatagramProtocol(), { localAddr: ['127.0.0.1', 0] }),
  );
  process.stdout.write(`listening ${(transport.getExtraInfo('sockname') as [string, number])[1]}\n`);
  loop.runForever();
}

function serveNet(): void {
  const server = createServer({ noDelay: true }, (socket) => {
    socket.on('data', (data) => socket.write(data));
    socket.on('error', () => socket.destroy());
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no TCP address');
    process.stdout.write(`listening ${address.port}\n`);
  });
}

/** node:tls as its users write it: a data handler that writes back, Node's TLS defaults (TLS 1.3). */
function serveNetTls(certFile: string, keyFile: string): void {
  const server = createTlsServer(
    { cert: readFileSync(certFile), key: readFileSync(keyFile), noDelay: true },
    (socket) => {
      socket.on('data', (data) => socket.write(data));
      socket.on('error', () => socket.destroy());
    },
  );
  server.on('tlsClientError', () => {}); // a client killed mid-handshake at the end of a run
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no TCP address');
    process.stdout.write(`listening ${address.port}\n`);
  });
}

/**
 * The iomux echo server over TLS: the plain server's coroutines on the
 * epoll loop, each connection first through `loop.startTls` (one server
 * context for all).
 */
function serveIomuxTls(certFile: string, keyFile: string): void {
  const context = new TlsContext({ server: true, cert: readFileSync(certFile), key: readFileSync(keyFile) });
  serveIomux('epoll', false, (loop, conn) => loop.startTls(conn, { serverSide: true, context }));
}

/**
 * The plain iomux server with a LoopTrace attached (its ring wrapping all
 * the while, as a long-running traced server's does); on SIGUSR2 it prints
 * "traced <events recorded so far>", so the benchmark can say what one
 * traced event costs.
 */
function serveIomuxTraced(): void {
  const trace = new LoopTrace();
  serveIomux('epoll', false, undefined, (loop) => {
    loop.setTrace(trace);
    loop.addSignalHandler('SIGUSR2', () => process.stdout.write(`traced ${trace.size + trace.dropped}\n`));
  });
}

const [kind, selector, keyFile] = process.argv.slice(2);
if (kind === 'iomux') serveIomux((selector ?? 'epoll') as BackendName);
else if (kind === 'iomux-traced') serveIomuxTraced();
else if (kind === 'iomux-uring') serveIomux('io_uring');
else if (kind === 'iomux-coop') serveIomux('epoll', true);
else if (kind === 'iomux-callbacks') serveCallbacks();
else if (kind === 'iomux-protocol') serveProtocol();
else if (kind === 'iomux-buffered') serveBuffered();
else if (kind === 'iomux-streams') serveStreams();
else if (kind === 'iomux-udp') serveUdp();
else if (kind === 'selectors-iomux') serveNotesSelectors();
else if (kind === 'net') serveNet();
else if (kind === 'net-tls' && selector !== undefined && keyFile !== undefined) serveNetTls(selector, keyFile);
else if (kind === 'iomux-tls' && selector !== undefined && keyFile !== undefined) serveIomuxTls(selector, keyFile);
else {
  process.stderr.write(
    'usage: echo-server.js iomux [select|poll|epoll|io_uring] | iomux-traced | iomux-uring | iomux-coop | iomux-callbacks | selectors-iomux | net\n' +
      '       echo-server.js iomux-protocol | iomux-buffered | iomux-streams | iomux-udp\n' +
      '       echo-server.js net-tls <certFile> <keyFile> | iomux-tls <certFile> <keyFile>\n',
  );
  process.exitCode = 2;
}
