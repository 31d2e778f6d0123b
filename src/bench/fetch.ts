/**
 * 1,000 GETs of a small page, all started at once, against the embedded
 * server (in its own process), Connection: close on every side, in one run:
 * iomux's fetchCoroutine on epoll against a C epoll fetcher (the floor:
 * bench/floor/fetch-client.c), the notes' own Python selectors fetcher
 * (bench/peers/selectors_fetcher.py), node:http without keep-alive,
 * and Node's built-in fetch with keep-alive off (an undici Agent with
 * pipelining 0; undici is a devDependency of the benchmarks).
 *
 * And with keep-alive, 100 connections each: iomux's HttpPool against
 * node:http with a keep-alive Agent and undici.request.
 */
import { spawnSync } from 'node:child_process';
import { get, Agent as HttpAgent } from 'node:http';
import { createRequire } from 'node:module';

import { startServerProcess } from '../cli/demo.js';
import { fetchMany } from '../cli/fetch-many.js';
import { buildC } from './floor.js';
import { startNginx } from './nginx.js';
import { findPython, peerScript } from './peers.js';
import { formatRange, median } from './stats.js';

export interface FetchBenchResult {
  /** 'close' or 'keep-alive'. */
  policy: 'close' | 'keep-alive';
  name: string;
  /** Median requests per second. */
  perSecond: number;
  runs: number[];
}

const KEEP_ALIVE_CONNECTIONS = 100;

/**
 * `count` GETs of /goods/<i>/ at once with iomux's fetchCoroutine on epoll
 * (or its HttpPool with `keepAlive`); resolves with requests per second.
 *
 * @throws when any request failed
 */
export async function iomuxCoroutine(port: number, count: number, keepAlive = false): Promise<number> {
  const urls = Array.from({ length: count }, (_, i) => `http://127.0.0.1:${port}/goods/${i}/`);
  const t0 = performance.now();
  const results = await fetchMany(urls, {
    style: 'coroutine',
    backend: 'epoll',
    concurrency: keepAlive ? KEEP_ALIVE_CONNECTIONS : count,
    timeoutMs: 60_000,
    keepAlive,
  });
  const seconds = (performance.now() - t0) / 1000;
  const failed = results.filter((r) => !('status' in r) || r.status !== 200).length;
  if (failed > 0) throw new Error(`iomux: ${failed} requests failed`);
  return count / seconds;
}

/**
 * Runs a fetcher process that prints `{"ok": N, "seconds": S}` (the Python
 * peer, the C floor); resolves with requests per second.
 *
 * @throws when it fails or any request failed
 */
function fetcherProcess(label: string, command: string, args: string[], count: number): number {
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${label} failed: ${r.stderr || r.error?.message}`);
  const out = JSON.parse(r.stdout) as { ok: number; seconds: number };
  if (out.ok !== count) throw new Error(`${label}: ${count - out.ok} requests failed`);
  return count / out.seconds;
}

function python(port: number, count: number): number {
  const python3 = findPython();
  if (python3 === null) throw new Error('python3 not found');
  return fetcherProcess(
    'python fetcher',
    python3,
    [peerScript('selectors_fetcher.py'), '127.0.0.1', String(port), String(count)],
    count,
  );
}

// The C floor (bench/floor/fetch-client.c); null without a C compiler.
function cFloor(port: number, count: number): number | null {
  const binary = buildC('fetch-client');
  if ('error' in binary) return null;
  return fetcherProcess('C fetch floor', binary.path, [String(port), String(count)], count);
}

function nodeHttp(port: number, count: number, keepAlive = false): Promise<number> {
  const agent = new HttpAgent({ keepAlive, maxSockets: keepAlive ? KEEP_ALIVE_CONNECTIONS : Number.POSITIVE_INFINITY });
  const t0 = performance.now();
  const headers = keepAlive ? {} : { connection: 'close' };
  const one = (i: number): Promise<void> =>
    new Promise((resolve, reject) => {
      get({ host: '127.0.0.1', port, path: `/goods/${i}/`, agent, headers }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
      }).on('error', reject);
    });
  return Promise.all(Array.from({ length: count }, (_, i) => one(i))).then(() => {
    agent.destroy();
    return count / ((performance.now() - t0) / 1000);
  });
}

async function nodeFetch(port: number, count: number): Promise<number | null> {
  let Agent: new (options: { pipelining: number; connections: null }) => { close(): Promise<void> };
  try {
    ({ Agent } = createRequire(import.meta.url)('undici') as { Agent: typeof Agent });
  } catch {
    return null;
  }
  const dispatcher = new Agent({ pipelining: 0, connections: null });
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const res = await fetch(`http://127.0.0.1:${port}/goods/${i}/`, { dispatcher } as RequestInit);
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
    }),
  );
  const rate = count / ((performance.now() - t0) / 1000);
  await dispatcher.close();
  return rate;
}

interface Undici {
  Agent: new (options: { pipelining?: number; connections: number | null }) => { close(): Promise<void> };
  request(
    url: string,
    options: { dispatcher: unknown },
  ): Promise<{ statusCode: number; body: { arrayBuffer(): Promise<ArrayBuffer> } }>;
}

function loadUndici(): Undici | null {
  try {
    return createRequire(import.meta.url)('undici') as Undici;
  } catch {
    return null;
  }
}

async function undiciRequest(port: number, count: number): Promise<number | null> {
  const undici = loadUndici();
  if (undici === null) return null;
  const dispatcher = new undici.Agent({ connections: KEEP_ALIVE_CONNECTIONS });
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const res = await undici.request(`http://127.0.0.1:${port}/goods/${i}/`, { dispatcher });
      await res.body.arrayBuffer();
      if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`);
    }),
  );
  const rate = count / ((performance.now() - t0) / 1000);
  await dispatcher.close();
  return rate;
}

/** Warm-up rounds per client before the measured ones. */
const WARMUP_ROUNDS = 3;

/**
 * The server of the run: nginx when installed (one worker), else the
 * embedded iomux server in its own process.
 */
export async function startPeerServer(
  cli: string | undefined,
  preferNginx: boolean,
): Promise<{ port: number; name: string; stop(): Promise<void> }> {
  const nginx = preferNginx ? await startNginx() : null;
  if (nginx !== null) return { port: nginx.port, name: `${nginx.version} (1 worker)`, stop: () => nginx.stop() };
  const embedded = await startServerProcess(cli);
  return {
    port: embedded.port,
    name: 'the embedded iomux server',
    stop: async () => embedded.stop(),
  };
}

/**
 * Runs every client `runs` times, interleaved, against one server process
 * (nginx when installed and `preferNginx`, else the embedded server).
 */
export async function runFetchBench(
  count: number,
  runs: number,
  options: { cli?: string; preferNginx?: boolean; warmupRounds?: number } = {},
): Promise<{ server: string; results: FetchBenchResult[] }> {
  const server = await startPeerServer(options.cli, options.preferNginx ?? true);
  try {
    const variants: [FetchBenchResult['policy'], string, () => Promise<number | null> | number | null][] = [
      ['close', 'iomux fetchCoroutine (epoll)', () => iomuxCoroutine(server.port, count)],
      ['close', 'C epoll fetcher (floor)', () => cFloor(server.port, count)],
      ['close', 'Python selectors Fetcher (the notes)', () => python(server.port, count)],
      ['close', 'node:http, no keep-alive', () => nodeHttp(server.port, count)],
      ['close', 'Node fetch (undici), no keep-alive', () => nodeFetch(server.port, count)],
      ['keep-alive', 'iomux HttpPool (epoll)', () => iomuxCoroutine(server.port, count, true)],
      ['keep-alive', 'node:http, keep-alive Agent', () => nodeHttp(server.port, count, true)],
      ['keep-alive', 'undici.request', () => undiciRequest(server.port, count)],
    ];
    // Uncounted rounds first: JIT warm-up for the JavaScript clients (V8
    // takes a few thousand requests to settle: its first rounds run half as
    // fast), caches for all.
    for (let round = 0; round < (options.warmupRounds ?? WARMUP_ROUNDS); round++) {
      for (const [, , measure] of variants) await measure();
    }
    const samples = new Map<string, number[]>();
    for (let run = 0; run < runs; run++) {
      for (const [, name, measure] of variants) {
        const rate = await measure();
        if (rate !== null) samples.set(name, [...(samples.get(name) ?? []), rate]);
      }
    }
    const results = variants.flatMap(([policy, name]) => {
      const s = samples.get(name);
      return s === undefined ? [] : [{ policy, name, perSecond: median(s), runs: s }];
    });
    return { server: server.name, results };
  } finally {
    await server.stop();
  }
}

/** A markdown table with ratios of iomux to each peer of the same policy. */
export function formatFetchTable(results: readonly FetchBenchResult[]): string {
  const rows = ['| policy | client | requests/s | iomux vs it | runs (min-max) |', '|---|---|---:|---:|---:|'];
  for (const r of results) {
    const iomux = results.find((x) => x.policy === r.policy && x.name.startsWith('iomux'));
    const ratio = iomux === undefined ? '-' : `${(iomux.perSecond / r.perSecond).toFixed(2)}x`;
    rows.push(
      `| ${r.policy} | ${r.name} | ${Math.round(r.perSecond).toLocaleString('en-US')} | ${ratio} | ${formatRange(r.runs)} |`,
    );
  }
  return rows.join('\n');
}
