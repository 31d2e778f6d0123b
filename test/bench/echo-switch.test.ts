import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { availableParallelism } from 'node:os';
import { connect as connectTls } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

import {
  availableEchoServers,
  ECHO_EXTRA_KINDS,
  ECHO_SERVER_KINDS,
  ECHO_SERVER_NAMES,
  ECHO_UDP_KINDS,
  type EchoResult,
  echoCertificates,
  echoPoints,
  formatEchoTable,
  isTlsKind,
  isUdpKind,
  runEchoBench,
  startEchoServer,
  stopServer,
  tlsUnavailable,
  tracingCost,
  udpResends,
  udpUnavailable,
} from '../../bench/src/echo.js';
import { formatFetchTable, runFetchBench } from '../../bench/src/fetch.js';
import { findNginx } from '../../bench/src/nginx.js';
import { buildBenchC } from '../../bench/src/peers.js';
import { formatPingPongTable, runPingPongBench } from '../../bench/src/pingpong.js';
import { formatSwitchTable, runSwitchBench } from '../../bench/src/switch.js';
import { findOpenssl } from '../../bench/src/tls-certs.js';
import { IoUring } from '../../src/sys/index.js';

// npm `epoll` is a NAN addon, built by `npm ci` for the Node that ran it:
// on another Node line (.ci/node-lines runs this suite on the newest LTS
// with the same node_modules) it cannot load, and its comparison is skipped
// with the loader's reason. Any other failure to load still fails the test.
function npmEpollAbiMismatch(): string | null {
  try {
    createRequire(import.meta.url)('epoll');
    return null;
  } catch (e) {
    const abi = /NODE_MODULE_VERSION (\d+)[\s\S]*?NODE_MODULE_VERSION (\d+)/.exec(e instanceof Error ? e.message : '');
    if (abi === null) return null;
    return `npm epoll (a NAN addon) was built for NODE_MODULE_VERSION ${abi[1]}; node ${process.version} needs ${abi[2]}`;
  }
}

// Sends `data` on a new connection (over TLS with `tls`, trusting the test
// CA) and resolves with what comes back once all of it did; `paused` holds
// the reading back until it resolves.
async function echo(port: number, data: Buffer, paused?: Promise<void>, tls = false): Promise<Buffer> {
  const sock = tls
    ? connectTls({ port, host: '127.0.0.1', ca: echoCertificates().ca.cert })
    : connect(port, '127.0.0.1');
  if (paused !== undefined) sock.pause();
  await once(sock, tls ? 'secureConnect' : 'connect');
  const chunks: Buffer[] = [];
  let received = 0;
  const all = new Promise<void>((resolve, reject) => {
    sock.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      if (received >= data.length) resolve();
    });
    sock.on('error', reject);
  });
  sock.write(data);
  if (paused !== undefined) void paused.then(() => sock.resume());
  await all;
  sock.destroy();
  return Buffer.concat(chunks);
}

// The servers run from the builds, bench/.build and dist/ (child processes
// cannot load TypeScript); these check the plumbing and the output's shape,
// never timings.
describe('echo and switch benchmarks (no timing assertions)', () => {
  it('runs the C, iomux and node:net servers and reports each point', { timeout: 60_000 }, async () => {
    const servers = ['c', 'iomux', 'iomux-coop', 'net'] as const;
    const results = await runEchoBench({
      points: [
        { size: 64, conns: 4, servers },
        { size: 4096, conns: 8, servers: servers.slice(0, 2) },
      ],
      runs: 1,
      warmupMs: 50,
      measureMs: 200,
      serverScript: fileURLToPath(new URL('../../bench/.build/echo-server.js', import.meta.url)),
    });
    expect(results.map((r) => `${r.server}/${r.size}/${r.conns}`)).toEqual([
      'c/64/4',
      'iomux/64/4',
      'iomux-coop/64/4',
      'net/64/4',
      'c/4096/8',
      'iomux/4096/8',
    ]);
    for (const r of results) {
      expect(r.perSecond).toBeGreaterThan(0);
      expect(r.serverCpuUs).toBeGreaterThanOrEqual(0);
      expect(r.runs).toHaveLength(1);
    }
    const table = formatEchoTable(results);
    expect(table).toContain('| 64 B | 4 | iomux loop, coroutines (owning) |');
    expect(table).toContain('| 64 B | 4 | node:net |');
    expect(table).toContain('| 64 B | 4 | iomux loop, coroutines (cooperative) |');
    expect(table).toMatch(
      /\| 4096 B \| 8 \| C epoll \(floor\) \| [\d,]+ \| \d+ \| \d+ \| [\d.]+ \| 1\.00x \| 1\.00x \| - \| - \| - \|/,
    );
    expect(table.split('\n')).toHaveLength(8);
  });

  it('runs the C OpenSSL floor and node:tls through the TLS load generator', { timeout: 60_000 }, async (ctx) => {
    const why = tlsUnavailable();
    if (why !== null) ctx.skip(why);
    const servers = ['c-tls', 'net-tls'] as const;
    const results = await runEchoBench({
      points: [
        { size: 64, conns: 4, servers },
        { size: 16384, conns: 4, servers },
      ],
      runs: 1,
      warmupMs: 50,
      measureMs: 200,
      serverScript: fileURLToPath(new URL('../../bench/.build/echo-server.js', import.meta.url)),
    });
    expect(results.map((r) => `${r.server}/${r.size}`)).toEqual([
      'c-tls/64',
      'net-tls/64',
      'c-tls/16384',
      'net-tls/16384',
    ]);
    for (const r of results) expect(r.perSecond).toBeGreaterThan(0);
    // The TLS rows' floor is the C OpenSSL server, their node:net node:tls; no io_uring or uvloop ratio.
    expect(formatEchoTable(results)).toMatch(
      /\| 16384 B \| 4 \| node:tls \| [\d,]+ \| \d+ \| \d+ \| [\d.]+ \| [\d.]+x \| [\d.]+x \| - \| 1\.00x \| - \|/,
    );
  });

  it('the suite runs every server at 64 B x the first count, the rest at 1,000 and at 16 KiB', () => {
    const points = echoPoints(ECHO_SERVER_KINDS, [100, 1000]);
    expect(points.map((p) => [p.size, p.conns, p.servers.length])).toEqual([
      [64, 100, 24],
      [64, 1000, 12],
      [16384, 100, 15],
    ]);
    // The loop's Protocol server at every point (its targets are at 64 B and 16 KiB x 100); the streams rows,
    // whose target is at 64 B x 100, and the UDP rows (64 B only) at the first point only.
    for (const p of points) expect(p.servers).toEqual(expect.arrayContaining(['iomux-protocol', 'iomux-buffered']));
    for (const kind of ['iomux-streams', 'uvloop-streams', 'asyncio-streams', 'c-udp', 'iomux-udp'] as const) {
      expect(points[0]?.servers).toContain(kind);
      expect(points[1]?.servers).not.toContain(kind);
      expect(points[2]?.servers).not.toContain(kind);
    }
    // TLS at the first count only, at 64 B and 16 KiB.
    expect(points[1]?.servers).not.toContain('c-tls');
    expect(points[2]?.servers).toContain('c-tls');
    expect(points[2]?.servers).toContain('net-tls');
    expect(points[2]?.servers).toContain('iomux-tls');
    expect(points[1]?.servers).not.toContain('iomux-coop');
    // The traced row is measured beside the plain one at the first point only.
    expect(points[0]?.servers).toContain('iomux-traced');
    expect(points[1]?.servers).not.toContain('iomux-traced');
    expect(points[2]?.servers).not.toContain('iomux-traced');
    expect(points[1]?.servers).not.toContain('uvloop');
    expect(points[1]?.servers).toContain('uvloop-protocol');
    expect(points[1]?.servers).toContain('c-uring');
    expect(points[1]?.servers).toContain('iomux-uring');
    expect(points[2]?.servers).toContain('c-uring');
    expect(points[2]?.servers).toContain('selectors-py');
    expect(echoPoints(['c', 'net'], [])).toEqual([]);
  });

  it('says what a traced event costs, from the traced and the plain row of one point', () => {
    const row = (server: 'iomux' | 'iomux-traced', perSecond: number, serverCpuUs: number): EchoResult => ({
      server,
      size: 64,
      conns: 100,
      perSecond,
      serverCpuUs,
      p50us: 1,
      p99us: 2,
      runs: [perSecond],
    });
    const traced = { ...row('iomux-traced', 45_000, 11), tracedEventsPerTrip: 5 };
    expect(tracingCost([row('iomux', 50_000, 10), traced])).toBe(
      '\n\nTracing at 64 B x 100: 5.0 events recorded per round trip (waits, Task steps, socket operations issued ' +
        'and completed), +1.00 us of server CPU per trip against the untraced row (1.10x): 200 ns per traced event; ' +
        'round trips 0.90x.',
    );
    // Without the plain row (or the count) there is nothing to say.
    expect(tracingCost([traced])).toBe('');
    expect(tracingCost([row('iomux', 50_000, 10), row('iomux-traced', 45_000, 11)])).toBe('');
  });

  // Every server the machine can run (the Python ones need python3, uvloop's
  // a python3 with uvloop: bench/setup; the io_uring floors a kernel that
  // allows io_uring), the variants outside the suite too. One client that
  // does not read: the server's send to it fills the socket buffers and
  // waits (a short send, the rest kept for writability). Meanwhile ten others echo through the
  // same server; the waiting send must not see their bytes -- the iomux
  // servers all receive into one buffer, the io_uring floor into buffers it
  // shares between connections. The C epoll floor has no such client: it
  // spins on a full send buffer (ping-pong never fills one), so it gets only
  // the ten. The TLS servers are spoken to over TLS.
  it.each(
    availableEchoServers([...ECHO_SERVER_KINDS, ...ECHO_EXTRA_KINDS])
      .servers.filter((kind) => !isUdpKind(kind))
      .map((kind) => [kind, ECHO_SERVER_NAMES[kind]]),
  )('the %s echo server (%s) gives every connection back its own bytes', { timeout: 60_000 }, async (kind) => {
    const script = fileURLToPath(new URL('../../bench/.build/echo-server.js', import.meta.url));
    const cServer = buildBenchC('echo-server');
    if ('error' in cServer) throw new Error(cServer.error);
    const { port, child } = await startEchoServer(kind, cServer.path, script);
    try {
      let release = (): void => {};
      const paused = new Promise<void>((resolve) => {
        release = resolve;
      });
      const big = randomBytes(8 << 20);
      const tls = isTlsKind(kind);
      const bigEcho = kind === 'c' ? Promise.resolve(big) : echo(port, big, paused, tls);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const small = [
        Buffer.from('a'),
        randomBytes(64),
        randomBytes(16 << 10),
        ...Array.from({ length: 7 }, () => randomBytes(256 << 10)),
      ];
      const smallEchoes = await Promise.all(small.map((data) => echo(port, data, undefined, tls)));
      release();
      expect(smallEchoes.every((got, i) => got.equals(small[i] as Buffer))).toBe(true);
      expect((await bigEcho).equals(big)).toBe(true);
    } finally {
      await stopServer(child);
    }
  });

  // The UDP servers (the C one needs a C compiler): ten sockets each
  // send datagrams of several sizes, one at a time, and each gets its own back.
  it.each(
    availableEchoServers(ECHO_UDP_KINDS)
      .servers.filter(isUdpKind)
      .map((kind) => [kind, ECHO_SERVER_NAMES[kind]]),
  )('the %s UDP echo server (%s) sends every datagram back to its sender', { timeout: 30_000 }, async (kind) => {
    const script = fileURLToPath(new URL('../../bench/.build/echo-server.js', import.meta.url));
    const cServer = buildBenchC('echo-server');
    if ('error' in cServer) throw new Error(cServer.error);
    const { port, child } = await startEchoServer(kind, cServer.path, script);
    try {
      const client = async (): Promise<boolean> => {
        const sock = createSocket('udp4');
        try {
          await new Promise<void>((resolve) => sock.connect(port, '127.0.0.1', resolve));
          for (const size of [1, 64, 1400, 9000]) {
            const data = randomBytes(size);
            const got = once(sock, 'message') as Promise<[Buffer]>;
            sock.send(data);
            const [echoed] = await got;
            if (!echoed.equals(data)) return false;
          }
          return true;
        } finally {
          sock.close();
        }
      };
      expect(await Promise.all(Array.from({ length: 10 }, client))).toEqual(Array(10).fill(true));
    } finally {
      await stopServer(child);
    }
  });

  it('runs the C UDP floor and the iomux UDP endpoint through the UDP load generator, which says what it resent', {
    timeout: 60_000,
  }, async (ctx) => {
    const why = udpUnavailable();
    if (why !== null) ctx.skip(why);
    const servers = ['c-udp', 'iomux-udp'] as const;
    const results = await runEchoBench({
      points: [{ size: 64, conns: 10, servers }],
      runs: 1,
      warmupMs: 50,
      measureMs: 300,
      serverScript: fileURLToPath(new URL('../../bench/.build/echo-server.js', import.meta.url)),
    });
    expect(results.map((r) => r.server)).toEqual(servers);
    for (const r of results) {
      expect(r.perSecond).toBeGreaterThan(0);
      expect(r.resent).toBeGreaterThanOrEqual(0);
    }
    // A UDP row's floor is the C UDP loop; it has no other ratio.
    expect(formatEchoTable(results)).toMatch(
      /\| 64 B \| 10 \| C recvfrom\/sendto loop, UDP \(floor\) \| [\d,]+ \| \d+ \| \d+ \| [\d.]+ \| 1\.00x \| 1\.00x \| - \| - \| - \|/,
    );
    expect(udpResends(results)).toMatch(
      /^\n\nUDP: datagrams resent after 200 ms .*C recvfrom\/sendto loop, UDP \(floor\) \d+/,
    );
  });

  it('pipe ping-pong: iomux on each backend and npm epoll, in one process', async (ctx) => {
    const mismatch = npmEpollAbiMismatch();
    if (mismatch !== null) {
      console.warn(`skipped: ${mismatch}`);
      ctx.skip(mismatch);
    }
    const results = await runPingPongBench(50, 1);
    expect(results.map((r) => r.name)).toEqual([
      'iomux cooperative, epoll',
      'iomux cooperative, poll',
      'iomux cooperative, select',
      'npm epoll (fivdi)',
    ]);
    for (const r of results) expect(r.eventsPerSecond).toBeGreaterThan(0);
    expect(formatPingPongTable(results)).toMatch(/\| npm epoll \(fivdi\) \| [\d,]+ \| 1\.0x \|/);
  });

  it('fetch: iomux, the C floor, the notes\u2019 Python fetcher, node:http and Node fetch against one server', {
    timeout: 60_000,
  }, async () => {
    const cli = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
    const { server, results } = await runFetchBench(20, 1, { cli, preferNginx: false, warmupRounds: 1 });
    expect(server).toBe('the embedded iomux server');
    const uring = (name: string): string[] => (IoUring.available() ? [name] : []);
    expect(results.map((r) => r.name)).toEqual([
      'iomux fetchCoroutine (epoll)',
      ...uring('iomux fetchCoroutine (io_uring)'),
      'C epoll fetcher (floor)',
      'Python selectors Fetcher (the notes)',
      'node:http, no keep-alive',
      'Node fetch (undici), no keep-alive',
      'iomux HttpPool (epoll)',
      ...uring('iomux HttpPool (io_uring)'),
      'node:http, keep-alive Agent',
      'undici.request',
    ]);
    for (const r of results) {
      expect(r.perSecond).toBeGreaterThan(0);
      // Every client's CPU per request: this process's around the in-process
      // ones, the C and Python fetchers' own (getrusage).
      expect(r.cpuUsPerRequest).toBeGreaterThan(0);
    }
    const table = formatFetchTable(results);
    expect(table).toMatch(/\| close \| iomux fetchCoroutine \(epoll\) \| [\d,]+ \| 1\.00x \| [\d.]+ \| 1\.00x \|/);
    expect(table).toMatch(/\| keep-alive \| iomux HttpPool \(epoll\) \| [\d,]+ \| 1\.00x \| [\d.]+ \| 1\.00x \|/);
    expect(table).toMatch(/\| keep-alive \| undici\.request \| [\d,]+ \| [\d.]+x \| [\d.]+ \| [\d.]+x \|/);
  });

  it('times the three kinds of resume', async () => {
    const results = await runSwitchBench(10, 1);
    expect(results.map((r) => r.name)).toEqual([
      'generator Task, yield* on a ready Future',
      'generator Task, suspended and resumed by the loop (bare yield)',
      'async function, await on a resolved promise',
    ]);
    for (const r of results) expect(r.ns).toBeGreaterThan(0);
    expect(formatSwitchTable(results)).toMatch(/\| async function, await on a resolved promise \| [\d.]+ \| 1\.00x \|/);
  });

  it('fetch prefers nginx when it is installed (bench/setup), and says which server it measured', {
    timeout: 60_000,
  }, async () => {
    const cli = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
    const { server, results } = await runFetchBench(20, 1, { cli, warmupRounds: 1 });
    if (findNginx() === null) expect(server).toBe('the embedded iomux server');
    // Its worker pinned to CPU 1, this process to CPU 0, on two cores or more (taskset).
    else expect(server).toMatch(/^nginx\/[\d.]+ \(1 worker(, pinned to CPU 1)?\)$/);
    // And the pinning is undone: this process may run on every CPU again.
    const all = availableParallelism() === 1 ? '0' : `0-${availableParallelism() - 1}`;
    expect(readFileSync('/proc/self/status', 'utf8')).toContain(`Cpus_allowed_list:\t${all}\n`);
    // And over https when nginx and openssl are there: 4 clients with keep-alive, 6 with a new connection per
    // request (iomux twice: full handshakes, and resuming).
    const https = findNginx() !== null && findOpenssl() !== null ? 10 : 0;
    expect(results).toHaveLength((IoUring.available() ? 10 : 8) + https);
    for (const r of results) {
      expect(r.perSecond).toBeGreaterThan(0);
      expect(r.cpuUsPerRequest).toBeGreaterThan(0);
    }
    const fresh = results.filter((r) => r.policy === 'https new connection');
    expect(fresh).toHaveLength(https === 0 ? 0 : 6);
    for (const r of fresh) {
      expect(r.handshakesPerCpuSecond).toBeCloseTo(1e6 / r.cpuUsPerRequest);
      // Each says whether its handshakes resumed a session.
      expect(r.name).toMatch(/, (full handshakes|all resumed|\d+ % resumed)$/);
    }
    // node:https with agent: false keeps no session.
    if (https > 0) expect(fresh.map((r) => r.name)).toContain('node:https, agent: false, full handshakes');
  });
});
