/**
 * The echo ping-pong benchmark: the C load generator (native/floor/
 * echo-client.c, the one `iomux bench c10k` runs; its own process) against
 * each server in turn, each in its own process and each at its best:
 *
 * - the C epoll floor (bench/floor/echo-server.c) and the C io_uring floor
 *   (bench/floor/echo-uring.c: multishot accept and recv, provided buffers;
 *   its single-shot variant, 'c-uring-plain', only when asked for by name);
 * - the iomux loop with coroutines (owning and cooperative) and with
 *   callbacks (addReader + try*), in echo-server.ts;
 * - the loop's asyncio-style APIs (issue 19): a Protocol on
 *   loop.createServer, and streams (startServer, a coroutine per client);
 * - the notes' selectors program, on CPython (bench/peers/echo_selectors.py)
 *   and line for line on iomux/selectors (echo-selectors.ts);
 * - asyncio and uvloop with Protocols, their fastest API, in the sock_*
 *   coroutine style of the iomux server, and with streams
 *   (asyncio.start_server; bench/peers/echo_asyncio.py);
 * - node:net.
 *
 * And over TLS (ECDSA P-256 certificates made at run time with the openssl
 * command, OpenSSL's defaults: TLS 1.3), driven by the C TLS load generator
 * (bench/floor/echo-tls-client.c): the C OpenSSL floor
 * (bench/floor/echo-tls.c) and node:tls, at 64 B and 16 KiB over the first
 * connection count.
 *
 * And over UDP, driven by the C UDP load generator
 * (bench/floor/echo-udp-client.c: a socket per client, each ping-ponging
 * one datagram, resending after a timeout): the C floor, a blocking
 * recvfrom/sendto loop (bench/floor/echo-udp.c), and the loop's datagram
 * endpoint, at 64 B over the first count only.
 *
 * The Python rows need a python3 (and the uvloop rows one with uvloop); the
 * TLS rows the openssl command, a C compiler and OpenSSL's headers
 * (libssl-dev).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { buildC } from '#iomux/cli/bench/floor.js';
import { formatRange, mainThreadCpuUs, median } from '#iomux/cli/bench/stats.js';
import { IoUring } from '#iomux/sys/index.js';
import { buildBenchC, buildBenchTlsC, findPython, peerScript } from './peers.js';
import { type CertificateSet, findOpenssl, makeCertificates } from './tls-certs.js';

/** Every echo server the benchmark knows, in the order its tables list them. */
export const ECHO_SERVER_KINDS = [
  'c',
  'c-uring',
  'iomux',
  'iomux-traced',
  'iomux-uring',
  'iomux-coop',
  'iomux-callbacks',
  'iomux-protocol',
  'iomux-buffered',
  'iomux-streams',
  'selectors-iomux',
  'selectors-py',
  'uvloop-protocol',
  'asyncio-protocol',
  'uvloop',
  'asyncio',
  'uvloop-streams',
  'asyncio-streams',
  'net',
  'c-tls',
  'iomux-tls',
  'net-tls',
  'c-udp',
  'iomux-udp',
] as const;

/**
 * The servers that speak TLS: the C load generator drives them over TLS
 * (bench/floor/echo-tls-client.c), each serving the certificate of
 * {@link echoCertificates}, and the "vs C floor" ratios of their rows are
 * to the C OpenSSL floor ('c-tls').
 */
export const ECHO_TLS_KINDS = ['c-tls', 'net-tls', 'iomux-tls'] as const;

/**
 * The servers that echo UDP datagrams: the C UDP load generator drives them
 * (bench/floor/echo-udp-client.c), at 64 B over the first connection count
 * only (a "connection" is a client socket), and the "vs C floor" ratios of
 * their rows are to the C recvfrom/sendto loop ('c-udp').
 */
export const ECHO_UDP_KINDS = ['c-udp', 'iomux-udp'] as const;

/**
 * Variants the suite leaves out unless asked for by name (`--servers`):
 * the io_uring floor with single-shot recv into a per-connection buffer.
 */
export const ECHO_EXTRA_KINDS = ['c-uring-plain'] as const;

/** One echo server; {@link ECHO_SERVER_NAMES} says what each is. */
export type EchoServerKind = (typeof ECHO_SERVER_KINDS)[number] | (typeof ECHO_EXTRA_KINDS)[number];

/** True for the servers that speak TLS ({@link ECHO_TLS_KINDS}). */
export function isTlsKind(kind: EchoServerKind): boolean {
  return (ECHO_TLS_KINDS as readonly EchoServerKind[]).includes(kind);
}

/** True for the UDP servers ({@link ECHO_UDP_KINDS}). */
export function isUdpKind(kind: EchoServerKind): boolean {
  return (ECHO_UDP_KINDS as readonly EchoServerKind[]).includes(kind);
}

/** The servers' names in the tables. */
export const ECHO_SERVER_NAMES: Readonly<Record<EchoServerKind, string>> = {
  c: 'C epoll (floor)',
  'c-uring': 'C io_uring (floor)',
  'c-uring-plain': 'C io_uring, single-shot recv',
  iomux: 'iomux loop, coroutines (owning)',
  'iomux-traced': 'iomux loop, coroutines (owning), traced (LoopTrace)',
  'iomux-uring': 'iomux loop on io_uring (completions), coroutines (owning)',
  'iomux-coop': 'iomux loop, coroutines (cooperative)',
  'iomux-callbacks': 'iomux loop, callbacks (addReader + try*)',
  'iomux-protocol': 'iomux loop, Protocol (createServer)',
  'iomux-buffered': 'iomux loop, BufferedProtocol (createServer)',
  'iomux-streams': 'iomux streams (startServer), coroutines',
  'selectors-iomux': 'notes\u2019 selectors program, iomux',
  'selectors-py': 'notes\u2019 selectors program, CPython',
  'uvloop-protocol': 'uvloop, Protocol',
  'asyncio-protocol': 'asyncio, Protocol',
  uvloop: 'uvloop, sock_* coroutines',
  asyncio: 'asyncio, sock_* coroutines',
  'uvloop-streams': 'uvloop, streams (start_server)',
  'asyncio-streams': 'asyncio, streams (start_server)',
  net: 'node:net',
  'c-tls': 'C epoll + OpenSSL, TLS (floor)',
  'net-tls': 'node:tls',
  'iomux-tls': 'iomux loop, TLS',
  'c-udp': 'C recvfrom/sendto loop, UDP (floor)',
  'iomux-udp': 'iomux loop, UDP datagram endpoint',
};

export interface EchoResult {
  server: EchoServerKind;
  size: number;
  conns: number;
  /** Median round trips per second over the runs. */
  perSecond: number;
  /**
   * Median CPU time of the server's main thread per round trip, in
   * microseconds: steadier than throughput on a busy machine.
   */
  serverCpuUs: number;
  p50us: number;
  p99us: number;
  runs: number[];
  /** The traced row's: events its trace recorded per round trip (median over the runs). */
  tracedEventsPerTrip?: number;
  /** A UDP row's: datagrams the load generator sent again in the measured window (median over the runs). */
  resent?: number;
}

/** One point of the benchmark: a message size, a connection count and the servers run there. */
export interface EchoPoint {
  size: number;
  conns: number;
  servers: readonly EchoServerKind[];
}

export interface EchoOptions {
  points: readonly EchoPoint[];
  runs: number;
  warmupMs: number;
  measureMs: number;
  onResult?: (result: EchoResult) => void;
  /** The compiled echo-server.js (default: the one beside this module). */
  serverScript?: string;
}

// The Python servers: whether they need uvloop, their script (bench/peers) and its arguments.
const PYTHON_PEERS: Partial<Record<EchoServerKind, { uvloop: boolean; script: string; args: readonly string[] }>> = {
  'selectors-py': { uvloop: false, script: 'echo_selectors.py', args: [] },
  'uvloop-protocol': { uvloop: true, script: 'echo_asyncio.py', args: ['uvloop', 'protocol'] },
  'asyncio-protocol': { uvloop: false, script: 'echo_asyncio.py', args: ['asyncio', 'protocol'] },
  uvloop: { uvloop: true, script: 'echo_asyncio.py', args: ['uvloop', 'sock'] },
  asyncio: { uvloop: false, script: 'echo_asyncio.py', args: ['asyncio', 'sock'] },
  'uvloop-streams': { uvloop: true, script: 'echo_asyncio.py', args: ['uvloop', 'streams'] },
  'asyncio-streams': { uvloop: false, script: 'echo_asyncio.py', args: ['asyncio', 'streams'] },
};

// The io_uring floor's kinds: the arguments of bench/floor/echo-uring.c after the port.
const URING_ARGS: Partial<Record<EchoServerKind, readonly string[]>> = {
  'c-uring': [],
  'c-uring-plain': ['--plain'],
};

let uringProbe: string | null | undefined;
let tlsProbe: string | null | undefined;
let udpProbe: string | null | undefined;

/**
 * Why the UDP rows cannot run here (the C UDP floor or its load generator
 * does not build: no C compiler), or null when they can; once per process.
 */
export function udpUnavailable(): string | null {
  if (udpProbe !== undefined) return udpProbe;
  udpProbe = null;
  for (const name of ['echo-udp', 'echo-udp-client']) {
    const built = buildBenchC(name);
    if ('error' in built) {
      udpProbe = `${name}.c does not build: ${built.error}`;
      break;
    }
  }
  return udpProbe;
}

/**
 * The certificates the TLS echo servers serve (`server`, signed by `ca`),
 * made once per process with the openssl command.
 *
 * @throws when openssl is not installed or fails
 */
export function echoCertificates(): CertificateSet {
  return makeCertificates();
}

/**
 * Why the TLS rows cannot run here (no openssl command to make their
 * certificates, no C compiler, no OpenSSL headers for the C floor and the
 * TLS load generator), or null when they can; once per process.
 */
export function tlsUnavailable(): string | null {
  if (tlsProbe !== undefined) return tlsProbe;
  tlsProbe = null;
  if (findOpenssl() === null) {
    tlsProbe = 'no openssl command to make certificates (bench/setup installs openssl)';
    return tlsProbe;
  }
  try {
    echoCertificates();
  } catch (error) {
    tlsProbe = (error as Error).message;
    return tlsProbe;
  }
  for (const name of ['echo-tls', 'echo-tls-client']) {
    const built = buildBenchTlsC(name);
    if ('error' in built) {
      tlsProbe = `${name}.c does not build (bench/setup installs libssl-dev): ${built.error}`;
      break;
    }
  }
  return tlsProbe;
}

/**
 * Why the io_uring floor cannot run here (no C compiler, io_uring disabled
 * by sysctl or a seccomp filter, too old a kernel), or null when it can:
 * builds it and runs `echo-uring probe`, once per process.
 */
export function uringUnavailable(): string | null {
  if (uringProbe !== undefined) return uringProbe;
  const built = buildBenchC('echo-uring');
  if ('error' in built) {
    uringProbe = built.error;
  } else {
    const r = spawnSync(built.path, ['probe'], { encoding: 'utf8', timeout: 10_000 });
    uringProbe = r.status === 0 ? null : `io_uring: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`;
  }
  return uringProbe;
}

/**
 * The python3 that runs a Python echo server, or null when none can. Every
 * Python row runs on uvloop's interpreter when there is one, so asyncio,
 * uvloop and the notes' program are compared on one CPython (bench/setup
 * installs python3-uvloop for Debian's /usr/bin/python3, an optimized build
 * that a python3 earlier on PATH may not be).
 */
function echoPython(uvloop: boolean): string | null {
  const withUvloop = findPython('uvloop');
  return uvloop ? withUvloop : (withUvloop ?? findPython('asyncio'));
}

/**
 * Starts one echo server in its own process and waits for its port.
 * `prefix` runs it under another program (the instructions suite: valgrind).
 *
 * @throws when the server exits before it listens, or a Python server has no python3
 */
export async function startEchoServer(
  kind: EchoServerKind,
  cServer: string,
  script: string,
  prefix: readonly string[] = [],
): Promise<{ port: number; child: ChildProcess; lines: AsyncIterator<string> }> {
  let command: string;
  let args: string[];
  const python = PYTHON_PEERS[kind];
  const uring = URING_ARGS[kind];
  // The TLS servers' certificate and key, after their other arguments.
  const tls = isTlsKind(kind) ? [echoCertificates().server.certFile, echoCertificates().server.keyFile] : [];
  if (kind === 'c') {
    [command, args] = [cServer, ['0']];
  } else if (kind === 'c-udp') {
    const built = buildBenchC('echo-udp');
    if ('error' in built) throw new Error(built.error);
    [command, args] = [built.path, ['0']];
  } else if (kind === 'c-tls') {
    const built = buildBenchTlsC('echo-tls');
    if ('error' in built) throw new Error(built.error);
    [command, args] = [built.path, ['0', ...tls]];
  } else if (uring !== undefined) {
    const built = buildBenchC('echo-uring');
    if ('error' in built) throw new Error(built.error);
    [command, args] = [built.path, ['0', ...uring]];
  } else if (python !== undefined) {
    const python3 = echoPython(python.uvloop);
    if (python3 === null) throw new Error(`no python3 can run the ${kind} echo server`);
    [command, args] = [python3, [peerScript(python.script), ...python.args]];
  } else {
    [command, args] = [process.execPath, [script, kind, ...tls]];
  }
  const [file, ...rest] = [...prefix, command, ...args] as [string, ...string[]];
  const child = spawn(file, rest, { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
  const first = await Promise.race([
    lines.next(),
    once(child, 'exit').then(() => {
      throw new Error(`the ${kind} echo server exited before listening`);
    }),
  ]);
  const line = first.done === true ? '' : first.value;
  return { port: Number.parseInt(line.replace('listening ', ''), 10), child, lines };
}

/** What one run of a load generator measured (`resent`: the UDP one's). */
interface ClientRun {
  roundTrips: number;
  perSecond: number;
  p50us: number;
  p99us: number;
  resent?: number;
}

/** Runs the C load generator once: `conns` connections in ping-pong for `measureMs` after `warmupMs`. */
function runEchoClient(
  client: string,
  port: number,
  conns: number,
  size: number,
  warmupMs: number,
  measureMs: number,
  server: EchoServerKind,
): ClientRun {
  const r = spawnSync(client, [String(port), String(conns), String(size), String(warmupMs), String(measureMs)], {
    encoding: 'utf8',
    timeout: warmupMs + measureMs + 30_000,
  });
  if (r.status !== 0) {
    throw new Error(`echo client failed against ${server} at ${size} B x ${conns}: ${r.stderr || r.error?.message}`);
  }
  return JSON.parse(r.stdout) as ClientRun;
}

/** The traced server's count of recorded events: asked for with SIGUSR2, read from its next line. */
async function tracedEvents(child: ChildProcess, lines: AsyncIterator<string>): Promise<number> {
  child.kill('SIGUSR2');
  const next = await lines.next();
  const m = next.done === true ? null : /^traced (\d+)$/.exec(next.value);
  if (m === null) throw new Error(`the traced echo server said ${JSON.stringify(next.value)}, not its event count`);
  return Number(m[1]);
}

/** Kills a server started by startEchoServer and waits for it to exit. */
export async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

/**
 * The echo servers this machine can run: the C epoll floor, the iomux
 * servers and node:net always; the io_uring floor when the kernel lets it
 * (see {@link uringUnavailable}); the Python ones when a python3 has asyncio
 * (and uvloop). `kinds` (default the suite's) may name the extra variants.
 */
export function availableEchoServers(kinds: readonly EchoServerKind[] = ECHO_SERVER_KINDS): {
  servers: EchoServerKind[];
  missing: string[];
} {
  const missing: string[] = [];
  const needs = (test: (kind: EchoServerKind) => boolean): boolean => kinds.some(test);
  if (needs((k) => PYTHON_PEERS[k]?.uvloop === false) && echoPython(false) === null) {
    missing.push('python3 with asyncio');
  }
  if (needs((k) => PYTHON_PEERS[k]?.uvloop === true) && echoPython(true) === null) {
    missing.push('uvloop (bench/setup installs python3-uvloop)');
  }
  const uring = needs((k) => URING_ARGS[k] !== undefined) ? uringUnavailable() : null;
  if (uring !== null) missing.push(`the C io_uring floor (${uring})`);
  const tls = needs(isTlsKind) ? tlsUnavailable() : null;
  if (tls !== null) missing.push(`the TLS echo servers (${tls})`);
  const udp = needs(isUdpKind) ? udpUnavailable() : null;
  if (udp !== null) missing.push(`the UDP echo servers (${udp})`);
  const loopUring = !needs((k) => k === 'iomux-uring') || IoUring.available();
  if (!loopUring) missing.push('the iomux io_uring loop (io_uring is unavailable here)');
  const servers = kinds.filter((kind) => {
    const python = PYTHON_PEERS[kind];
    if (URING_ARGS[kind] !== undefined) return uring === null;
    if (isTlsKind(kind)) return tls === null;
    if (isUdpKind(kind)) return udp === null;
    if (kind === 'iomux-uring') return loopUring;
    return python === undefined || echoPython(python.uvloop) !== null;
  });
  return { servers, missing };
}

// Rows that restate another at the points after the first: cooperative mode
// (the owning row is the loop's own figure), and the sock_* styles of
// asyncio and uvloop (their Protocol rows are their best). And the streams
// rows, whose target is at the first point (64 B x 100): streams are a layer
// over the Protocol rows, which run at every point.
const RESTATED: readonly EchoServerKind[] = [
  'iomux-traced',
  'iomux-coop',
  'uvloop',
  'asyncio',
  'iomux-streams',
  'uvloop-streams',
  'asyncio-streams',
];

/**
 * The suite's points: 64 B at each connection count and 16 KiB at the
 * first; every server at the first point, and at the others all but the
 * rows that restate another, which keeps the suite's run time bounded. The
 * TLS servers run at the first count only (64 B and 16 KiB), where their
 * targets are; the UDP servers at the first point only.
 */
export function echoPoints(servers: readonly EchoServerKind[], conns: readonly number[]): EchoPoint[] {
  const [first, ...more] = conns;
  if (first === undefined) return [];
  const core = servers.filter((kind) => !RESTATED.includes(kind) && !isUdpKind(kind));
  const plain = core.filter((kind) => !isTlsKind(kind));
  return [
    { size: 64, conns: first, servers },
    ...more.map((n) => ({ size: 64, conns: n, servers: plain })),
    { size: 16384, conns: first, servers: core },
  ];
}

/** Runs each point's servers at that point; returns the medians, point by point. */
export async function runEchoBench(options: EchoOptions): Promise<EchoResult[]> {
  const server = buildBenchC('echo-server');
  const client = buildC('echo-client');
  if ('error' in server) throw new Error(server.error);
  if ('error' in client) throw new Error(client.error);
  // The TLS servers' load generator, built when a point has one.
  const tlsClient = options.points.some((p) => p.servers.some(isTlsKind)) ? buildBenchTlsC('echo-tls-client') : null;
  if (tlsClient !== null && 'error' in tlsClient) throw new Error(tlsClient.error);
  // The UDP servers' load generator, likewise.
  const udpClient = options.points.some((p) => p.servers.some(isUdpKind)) ? buildBenchC('echo-udp-client') : null;
  if (udpClient !== null && 'error' in udpClient) throw new Error(udpClient.error);
  const clientOf = (kind: EchoServerKind): string =>
    (isTlsKind(kind) ? (tlsClient ?? client) : isUdpKind(kind) ? (udpClient ?? client) : client).path;
  const script = options.serverScript ?? fileURLToPath(new URL('./echo-server.js', import.meta.url));
  const results: EchoResult[] = [];
  for (const { size, conns, servers } of options.points) {
    const samples = new Map<
      EchoServerKind,
      { perSecond: number; p50us: number; p99us: number; cpuUs: number; traced: number | null; resent?: number }[]
    >();
    // Interleave the servers run by run, so drift in the machine hits all alike.
    for (let run = 0; run < options.runs; run++) {
      for (const kind of servers) {
        const { port, child, lines } = await startEchoServer(kind, server.path, script);
        try {
          // Warm up (JIT, connections), then measure with the server's CPU clock around it.
          runEchoClient(clientOf(kind), port, conns, size, 0, options.warmupMs, kind);
          const pid = child.pid as number;
          const traced0 = kind === 'iomux-traced' ? await tracedEvents(child, lines) : 0;
          const cpu0 = mainThreadCpuUs(pid);
          const measured = runEchoClient(clientOf(kind), port, conns, size, 0, options.measureMs, kind);
          const cpuUs = (mainThreadCpuUs(pid) - cpu0) / Math.max(1, measured.roundTrips);
          const traced =
            kind === 'iomux-traced'
              ? ((await tracedEvents(child, lines)) - traced0) / Math.max(1, measured.roundTrips)
              : null;
          samples.set(kind, [...(samples.get(kind) ?? []), { ...measured, cpuUs, traced }]);
        } finally {
          await stopServer(child);
        }
      }
    }
    for (const kind of servers) {
      const s = samples.get(kind) ?? [];
      const result: EchoResult = {
        server: kind,
        size,
        conns,
        perSecond: median(s.map((x) => x.perSecond)),
        serverCpuUs: median(s.map((x) => x.cpuUs)),
        p50us: median(s.map((x) => x.p50us)),
        p99us: median(s.map((x) => x.p99us)),
        runs: s.map((x) => x.perSecond),
      };
      const traced = s.flatMap((x) => (x.traced === null ? [] : [x.traced]));
      if (traced.length > 0) result.tracedEventsPerTrip = median(traced);
      const resent = s.flatMap((x) => (x.resent === undefined ? [] : [x.resent]));
      if (resent.length > 0) result.resent = median(resent);
      results.push(result);
      options.onResult?.(result);
    }
  }
  return results;
}

/**
 * What tracing costs, from the traced row and the plain iomux row of the
 * same point (side by side in one run): the events recorded per round trip
 * and the server CPU each adds. A paragraph for under the table ('' when
 * either row is missing).
 */
export function tracingCost(results: readonly EchoResult[]): string {
  const lines: string[] = [];
  for (const traced of results) {
    if (traced.server !== 'iomux-traced' || traced.tracedEventsPerTrip === undefined) continue;
    const plain = results.find((r) => r.server === 'iomux' && r.size === traced.size && r.conns === traced.conns);
    if (plain === undefined) continue;
    const extraUs = traced.serverCpuUs - plain.serverCpuUs;
    const perEventNs = (extraUs * 1000) / Math.max(1e-9, traced.tracedEventsPerTrip);
    lines.push(
      `Tracing at ${traced.size} B x ${traced.conns}: ${traced.tracedEventsPerTrip.toFixed(1)} events recorded per round trip ` +
        `(waits, Task steps, socket operations issued and completed), ${extraUs >= 0 ? '+' : ''}${extraUs.toFixed(2)} us of server CPU ` +
        `per trip against the untraced row (${(traced.serverCpuUs / plain.serverCpuUs).toFixed(2)}x): ` +
        `${perEventNs.toFixed(0)} ns per traced event; round trips ${(traced.perSecond / plain.perSecond).toFixed(2)}x.`,
    );
  }
  return lines.length === 0 ? '' : `\n\n${lines.join('\n\n')}`;
}

/**
 * What UDP lost, from the UDP rows: the datagrams the load generator sent
 * again after its timeout in the measured window (median of the runs). A
 * paragraph for under the table ('' without UDP rows).
 */
export function udpResends(results: readonly EchoResult[]): string {
  const rows = results.filter((r) => r.resent !== undefined);
  if (rows.length === 0) return '';
  const each = rows.map(
    (r) => `${ECHO_SERVER_NAMES[r.server]} ${Math.round(r.resent as number).toLocaleString('en-US')}`,
  );
  return (
    `\n\nUDP: datagrams resent after 200 ms without their echo, in the measured window (median of the runs): ` +
    `${each.join('; ')}.`
  );
}

/**
 * A markdown table, a block of rows per point, with ratios to the C epoll
 * floor (round trips and the server's CPU per round trip), the C io_uring
 * floor, node:net and uvloop's Protocol server at the same point. A TLS row's
 * floor is the C OpenSSL floor and its node:net is node:tls; it has no
 * io_uring or uvloop ratio. A UDP row's floor is the C recvfrom/sendto loop;
 * it has no other ratio.
 */
export function formatEchoTable(results: readonly EchoResult[]): string {
  const rows = [
    '| size | conns | server | round trips/s | p50 us | p99 us | server CPU us/trip | vs C floor | CPU vs C floor | vs C io_uring | vs node:net | vs uvloop Protocol | runs (min-max) |',
    '|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    const at = (kind: EchoServerKind): EchoResult | undefined =>
      results.find((x) => x.size === r.size && x.conns === r.conns && x.server === kind);
    const ratio = (peer: EchoResult | undefined): string =>
      peer === undefined ? '-' : `${(r.perSecond / peer.perSecond).toFixed(2)}x`;
    const tls = isTlsKind(r.server);
    const udp = isUdpKind(r.server);
    // A TLS or UDP row is compared with its own floor only (and node:tls).
    const other = tls || udp;
    const c = at(tls ? 'c-tls' : udp ? 'c-udp' : 'c');
    const cpu = c === undefined ? '-' : `${(r.serverCpuUs / c.serverCpuUs).toFixed(2)}x`;
    rows.push(
      `| ${r.size} B | ${r.conns.toLocaleString('en-US')} | ${ECHO_SERVER_NAMES[r.server]} | ` +
        `${Math.round(r.perSecond).toLocaleString('en-US')} | ${r.p50us.toFixed(0)} | ${r.p99us.toFixed(0)} | ` +
        `${r.serverCpuUs.toFixed(1)} | ${ratio(c)} | ${cpu} | ${ratio(other ? undefined : at('c-uring'))} | ` +
        `${ratio(udp ? undefined : at(tls ? 'net-tls' : 'net'))} | ${ratio(other ? undefined : at('uvloop-protocol'))} | ` +
        `${formatRange(r.runs)} |`,
    );
  }
  return rows.join('\n');
}
