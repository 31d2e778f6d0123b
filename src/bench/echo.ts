/**
 * The echo ping-pong benchmark: the C load generator (bench/floor/
 * echo-client.c, its own process) against each server in turn, each in its
 * own process: the C epoll floor (bench/floor/echo-server.c), the iomux loop
 * (epoll, coroutines; owning and cooperative), node:net, and Python's
 * asyncio and uvloop in the same coroutine style (bench/peers/echo_asyncio.py)
 * when a python3 that has them is found.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { buildC } from './floor.js';
import { findPython, peerScript } from './peers.js';
import { formatRange, median } from './stats.js';

export type EchoServerKind = 'c' | 'iomux' | 'iomux-coop' | 'net' | 'asyncio' | 'uvloop';

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
}

export interface EchoOptions {
  sizes: readonly number[];
  conns: number;
  runs: number;
  warmupMs: number;
  measureMs: number;
  servers: readonly EchoServerKind[];
  onResult?: (result: EchoResult) => void;
  /** The compiled echo-server.js (default: the one beside this module). */
  serverScript?: string;
}

/**
 * Starts one echo server in its own process and waits for its port.
 * `prefix` runs it under another program (the instructions suite: valgrind).
 */
export async function startEchoServer(
  kind: EchoServerKind,
  cServer: string,
  script: string,
  prefix: readonly string[] = [],
): Promise<{ port: number; child: ChildProcess }> {
  let command: string;
  let args: string[];
  if (kind === 'c') {
    [command, args] = [cServer, ['0']];
  } else if (kind === 'asyncio' || kind === 'uvloop') {
    const python3 = findPython(kind);
    if (python3 === null) throw new Error(`no python3 can import ${kind}`);
    [command, args] = [python3, [peerScript('echo_asyncio.py'), kind]];
  } else {
    [command, args] = [process.execPath, [script, kind]];
  }
  const [file, ...rest] = [...prefix, command, ...args] as [string, ...string[]];
  const child = spawn(file, rest, { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const [line] = (await Promise.race([
    once(lines, 'line'),
    once(child, 'exit').then(() => {
      throw new Error(`the ${kind} echo server exited before listening`);
    }),
  ])) as [string];
  return { port: Number.parseInt(line.replace('listening ', ''), 10), child };
}

/** CPU time (user + system) of a process's main thread, in microseconds. */
export function mainThreadCpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1e6) / 100;
}

/** Runs the C load generator once: `conns` connections in ping-pong for `measureMs` after `warmupMs`. */
function runEchoClient(
  client: string,
  port: number,
  conns: number,
  size: number,
  warmupMs: number,
  measureMs: number,
): { roundTrips: number; perSecond: number; p50us: number; p99us: number } {
  const r = spawnSync(client, [String(port), String(conns), String(size), String(warmupMs), String(measureMs)], {
    encoding: 'utf8',
    timeout: warmupMs + measureMs + 30_000,
  });
  if (r.status !== 0) throw new Error(`echo client failed: ${r.stderr || r.error?.message}`);
  return JSON.parse(r.stdout) as { roundTrips: number; perSecond: number; p50us: number; p99us: number };
}

/** Kills a server started by startEchoServer and waits for it to exit. */
export async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

/**
 * The echo servers this machine can run: the C floor, iomux and node:net
 * always, the Python peers when a python3 has asyncio (and uvloop).
 */
export function availableEchoServers(): { servers: EchoServerKind[]; missing: string[] } {
  const servers: EchoServerKind[] = ['c', 'iomux', 'iomux-coop', 'net'];
  const missing: string[] = [];
  for (const peer of ['asyncio', 'uvloop'] as const) {
    if (findPython(peer) !== null) servers.push(peer);
    else missing.push(peer === 'uvloop' ? 'uvloop (bench/setup installs python3-uvloop)' : 'python3 with asyncio');
  }
  return { servers, missing };
}

/** Runs every server at every size; returns the medians. */
export async function runEchoBench(options: EchoOptions): Promise<EchoResult[]> {
  const server = buildC('echo-server');
  const client = buildC('echo-client');
  if ('error' in server) throw new Error(server.error);
  if ('error' in client) throw new Error(client.error);
  const results: EchoResult[] = [];
  for (const size of options.sizes) {
    const samples = new Map<EchoServerKind, { perSecond: number; p50us: number; p99us: number; cpuUs: number }[]>();
    // Interleave the servers run by run, so drift in the machine hits all alike.
    for (let run = 0; run < options.runs; run++) {
      for (const kind of options.servers) {
        const { port, child } = await startEchoServer(
          kind,
          server.path,
          options.serverScript ?? fileURLToPath(new URL('./echo-server.js', import.meta.url)),
        );
        try {
          // Warm up (JIT, connections), then measure with the server's CPU clock around it.
          runEchoClient(client.path, port, options.conns, size, 0, options.warmupMs);
          const pid = child.pid as number;
          const cpu0 = mainThreadCpuUs(pid);
          const measured = runEchoClient(client.path, port, options.conns, size, 0, options.measureMs);
          const cpuUs = (mainThreadCpuUs(pid) - cpu0) / Math.max(1, measured.roundTrips);
          samples.set(kind, [...(samples.get(kind) ?? []), { ...measured, cpuUs }]);
        } finally {
          await stopServer(child);
        }
      }
    }
    for (const kind of options.servers) {
      const s = samples.get(kind) ?? [];
      const result: EchoResult = {
        server: kind,
        size,
        conns: options.conns,
        perSecond: median(s.map((x) => x.perSecond)),
        serverCpuUs: median(s.map((x) => x.cpuUs)),
        p50us: median(s.map((x) => x.p50us)),
        p99us: median(s.map((x) => x.p99us)),
        runs: s.map((x) => x.perSecond),
      };
      results.push(result);
      options.onResult?.(result);
    }
  }
  return results;
}

/** How the tables name each server. */
export const ECHO_SERVER_NAMES: Readonly<Record<EchoServerKind, string>> = {
  c: 'C epoll (floor)',
  net: 'node:net',
  iomux: 'iomux (epoll, owning)',
  'iomux-coop': 'iomux (epoll, cooperative)',
  asyncio: 'Python asyncio (sock_*)',
  uvloop: 'Python uvloop (sock_*)',
};

/** A markdown table with ratios against node:net and the C floor. */
export function formatEchoTable(results: readonly EchoResult[]): string {
  const rows = [
    '| size | server | round trips/s | p50 us | p99 us | server CPU us/trip | vs node:net | vs C floor | CPU vs C floor | vs owning | runs (min-max) |',
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    const net = results.find((x) => x.size === r.size && x.server === 'net');
    const c = results.find((x) => x.size === r.size && x.server === 'c');
    const owning = results.find((x) => x.size === r.size && x.server === 'iomux');
    const ratio = (peer: EchoResult | undefined): string =>
      peer === undefined ? '-' : `${(r.perSecond / peer.perSecond).toFixed(2)}x`;
    const name = ECHO_SERVER_NAMES[r.server];
    const cpu = c === undefined ? '-' : `${(r.serverCpuUs / c.serverCpuUs).toFixed(2)}x`;
    rows.push(
      `| ${r.size} B | ${name} | ${Math.round(r.perSecond).toLocaleString('en-US')} | ${r.p50us.toFixed(0)} | ` +
        `${r.p99us.toFixed(0)} | ${r.serverCpuUs.toFixed(1)} | ${ratio(net)} | ${ratio(c)} | ${cpu} | ${ratio(owning)} | ${formatRange(r.runs)} |`,
    );
  }
  return rows.join('\n');
}
