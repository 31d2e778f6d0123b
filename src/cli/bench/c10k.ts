/**
 * C10K: one server process on the iomux loop holds N concurrent TCP
 * connections from a C client in another process (native/floor/
 * echo-client.c), 1 % of them active in 64-byte ping-pong, the rest idle.
 * Per backend and N: round trips per second, p50/p99 latency, what one
 * loop iteration costs (the server's CPU time over its iterations), the CPU
 * per round trip, and the server's memory per connection (JavaScript heap
 * plus buffers). select cannot hold fds >= 1024:
 * it is reported as FD_SETSIZE from N = 1,000 on.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import type { BackendName } from '../../loop/index.js';
import { buildC } from './floor.js';
import { mainThreadCpuUs } from './stats.js';

export interface C10kResult {
  backend: BackendName;
  conns: number;
  active: number;
  perSecond: number | null;
  p50us: number | null;
  p99us: number | null;
  /** Server CPU per loop iteration, in microseconds (it grows with the events each iteration handles). */
  iterationUs: number | null;
  /** Server CPU per round trip, in microseconds: the per-event cost, comparable across N. */
  tripUs: number | null;
  /** Growth of the server's JavaScript heap plus buffers per connection, in bytes. */
  bytesPerConnection: number | null;
  note?: string;
}

export interface C10kOptions {
  backends: readonly BackendName[];
  conns: readonly number[];
  warmupMs: number;
  measureMs: number;
  /** The compiled c10k-server.js (default: the one beside this module). */
  serverScript?: string;
  onResult?: (r: C10kResult) => void;
}

interface Stats {
  iterations: number;
  /** heapUsed + external, in bytes. */
  memory: number;
}

async function startServer(
  script: string,
  backend: BackendName,
): Promise<{ child: ChildProcess; port: number; stats: () => Stats }> {
  const child = spawn(process.execPath, [script, backend], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, IOMUX_STATS: '1' },
  });
  let latest: Stats = { iterations: 0, memory: 0 };
  let resolvePort: (port: number) => void = () => {};
  const port = new Promise<number>((resolve) => {
    resolvePort = resolve;
  });
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    const [kind, a, b] = line.split(' ');
    if (kind === 'listening') resolvePort(Number(a));
    else if (kind === 'stats') latest = { iterations: Number(a), memory: Number(b) };
  });
  const exited = once(child, 'exit').then(() => {
    throw new Error(`the ${backend} server exited`);
  });
  const p = await Promise.race([port, exited]);
  // Wait for a first stats line: the baseline before any connection.
  while (latest.iterations === 0) await new Promise((r) => setTimeout(r, 20));
  return { child, port: p, stats: () => latest };
}

/** Runs every backend at every N. */
export async function runC10k(options: C10kOptions): Promise<C10kResult[]> {
  const client = buildC('echo-client');
  if ('error' in client) throw new Error(client.error);
  const script = options.serverScript ?? fileURLToPath(new URL('./c10k-server.js', import.meta.url));
  const results: C10kResult[] = [];
  for (const backend of options.backends) {
    for (const conns of options.conns) {
      const active = Math.max(1, Math.floor(conns / 100));
      if (backend === 'select' && conns >= 1000) {
        const r: C10kResult = {
          backend,
          conns,
          active,
          perSecond: null,
          p50us: null,
          p99us: null,
          iterationUs: null,
          tripUs: null,
          bytesPerConnection: null,
          note: 'FD_SETSIZE: select cannot watch fds >= 1024',
        };
        results.push(r);
        options.onResult?.(r);
        continue;
      }
      const server = await startServer(script, backend);
      try {
        const base = server.stats();
        const pid = server.child.pid as number;
        const proc = spawn(
          client.path,
          [
            String(server.port),
            String(conns),
            '64',
            String(options.warmupMs),
            String(options.measureMs),
            String(active),
          ],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        );
        let out = '';
        proc.stdout.on('data', (d) => {
          out += d;
        });
        let start: { cpu: number; stats: Stats } | null = null;
        createInterface({ input: proc.stderr }).on('line', (line) => {
          if (line === 'measuring') start = { cpu: mainThreadCpuUs(pid), stats: server.stats() };
        });
        const [code] = (await once(proc, 'exit')) as [number | null];
        const endCpu = mainThreadCpuUs(pid);
        const end = server.stats();
        if (code !== 0 || start === null) throw new Error(`C10K client failed at ${backend}/${conns} (exit ${code})`);
        const s = start as { cpu: number; stats: Stats };
        const parsed = JSON.parse(out) as { roundTrips: number; perSecond: number; p50us: number; p99us: number };
        const iterations = Math.max(1, end.iterations - s.stats.iterations);
        const r: C10kResult = {
          backend,
          conns,
          active,
          perSecond: parsed.perSecond,
          p50us: parsed.p50us,
          p99us: parsed.p99us,
          iterationUs: (endCpu - s.cpu) / iterations,
          tripUs: (endCpu - s.cpu) / Math.max(1, parsed.roundTrips),
          // The last figure the server printed before the client left: all
          // connections open, after the measured traffic.
          bytesPerConnection: Math.max(0, end.memory - base.memory) / conns,
        };
        results.push(r);
        options.onResult?.(r);
      } finally {
        server.child.kill('SIGKILL');
        await once(server.child, 'exit');
      }
    }
  }
  return results;
}

/**
 * A markdown table; the ratio compares the CPU per round trip with the same
 * backend at the smallest N (epoll's should stay flat as N grows; poll's grows).
 */
export function formatC10kTable(results: readonly C10kResult[]): string {
  const rows = [
    '| backend | connections | active | round trips/s | p50 us | p99 us | iteration us | CPU us/trip | vs smallest N | bytes/conn |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    if (r.perSecond === null) {
      rows.push(`| ${r.backend} | ${r.conns.toLocaleString('en-US')} | ${r.active} | ${r.note ?? '-'} | | | | | | |`);
      continue;
    }
    const first = results.find((x) => x.backend === r.backend && x.tripUs !== null);
    const ratio = first?.tripUs ? `${((r.tripUs as number) / first.tripUs).toFixed(2)}x` : '-';
    rows.push(
      `| ${r.backend} | ${r.conns.toLocaleString('en-US')} | ${r.active} | ${Math.round(r.perSecond).toLocaleString('en-US')} | ` +
        `${(r.p50us as number).toFixed(0)} | ${(r.p99us as number).toFixed(0)} | ${(r.iterationUs as number).toFixed(1)} | ` +
        `${(r.tripUs as number).toFixed(1)} | ${ratio} | ` +
        `${Math.round(r.bytesPerConnection as number).toLocaleString('en-US')} |`,
    );
  }
  return rows.join('\n');
}
