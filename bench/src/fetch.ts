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
 *
 * Beside requests/s, each client's CPU time (user + system) per request: of
 * this process around an in-process client, as the C and Python clients
 * report their own. With keep-alive one nginx worker bounds every client to
 * about the same requests/s on 2 cores, so there the CPU a client spends per
 * request is what tells them apart.
 */
import { spawnSync } from 'node:child_process';
import { get, Agent as HttpAgent } from 'node:http';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { formatRange, median } from '#iomux/cli/bench/stats.js';
import { startServerProcess } from '#iomux/cli/demo.js';
import { fetchMany } from '#iomux/cli/fetch-many.js';
import type { BackendName } from '#iomux/loop/index.js';
import { IoUring } from '#iomux/sys/index.js';
import { startNginx } from './nginx.js';
import { buildBenchC, findPython, peerScript } from './peers.js';

export interface FetchBenchResult {
  /** 'close' or 'keep-alive'. */
  policy: 'close' | 'keep-alive';
  name: string;
  /** Median requests per second. */
  perSecond: number;
  /** Median CPU time (user + system) of the client per request, in microseconds. */
  cpuUsPerRequest: number;
  runs: number[];
}

/** One run of one client: requests per second and its CPU time per request (us). */
interface FetchSample {
  perSecond: number;
  cpuUs: number;
}

/**
 * Runs an in-process client, `count` requests, with this process's CPU clock
 * around it (every thread: V8's compiler and GC threads work for the client).
 */
async function inProcess(count: number, run: () => Promise<number | null>): Promise<FetchSample | null> {
  const cpu0 = process.cpuUsage();
  const perSecond = await run();
  const cpu = process.cpuUsage(cpu0);
  return perSecond === null ? null : { perSecond, cpuUs: (cpu.user + cpu.system) / count };
}

const KEEP_ALIVE_CONNECTIONS = 100;

type Variant = [FetchBenchResult['policy'], string, () => Promise<FetchSample | null> | FetchSample | null];

// A row on the io_uring loop, where the kernel offers io_uring (else none).
function uringVariant(policy: FetchBenchResult['policy'], name: string, measure: Variant[2]): Variant[] {
  return IoUring.available() ? [[policy, name, measure]] : [];
}

/**
 * `count` GETs of /goods/<i>/ at once with iomux's fetchCoroutine on epoll
 * or another backend (or its HttpPool with `keepAlive`); resolves with
 * requests per second.
 *
 * @throws when any request failed
 */
export async function iomuxCoroutine(
  port: number,
  count: number,
  keepAlive = false,
  backend: BackendName = 'epoll',
): Promise<number> {
  const urls = Array.from({ length: count }, (_, i) => `http://127.0.0.1:${port}/goods/${i}/`);
  const t0 = performance.now();
  const results = await fetchMany(urls, {
    style: 'coroutine',
    backend,
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
 * Runs a fetcher process that prints `{"ok": N, "seconds": S, "cpuUs": U}`
 * (the Python peer, the C floor); returns its requests per second and CPU
 * time per request.
 *
 * @throws when it fails or any request failed
 */
function fetcherProcess(label: string, command: string, args: string[], count: number): FetchSample {
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${label} failed: ${r.stderr || r.error?.message}`);
  const out = JSON.parse(r.stdout) as { ok: number; seconds: number; cpuUs: number };
  if (out.ok !== count) throw new Error(`${label}: ${count - out.ok} requests failed`);
  return { perSecond: count / out.seconds, cpuUs: out.cpuUs / count };
}

function python(port: number, count: number): FetchSample {
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
function cFloor(port: number, count: number): FetchSample | null {
  const binary = buildBenchC('fetch-client');
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

/**
 * Pins this process, every thread of it, to `cpu` (with taskset); false when
 * taskset failed and nothing changed.
 */
function pinToCpu(cpu: number): boolean {
  const r = spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(process.pid)], { encoding: 'utf8' });
  return r.error === undefined && r.status === 0;
}

/** Lets this process run on every CPU again. */
function unpin(): void {
  spawnSync('taskset', ['-a', '-p', '-c', `0-${availableParallelism() - 1}`, String(process.pid)], {
    encoding: 'utf8',
  });
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
  serverCpu?: number,
): Promise<{ port: number; name: string; stop(): Promise<void> }> {
  const nginx = preferNginx ? await startNginx({}, serverCpu) : null;
  if (nginx !== null) {
    const where = serverCpu === undefined ? '' : `, pinned to CPU ${serverCpu}`;
    return { port: nginx.port, name: `${nginx.version} (1 worker${where})`, stop: () => nginx.stop() };
  }
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
  // On two cores or more, nginx's worker gets CPU 1 and this process (and
  // the C and Python clients it starts) CPU 0, as MEASUREMENTS.md measured:
  // unpinned, the clients and the server take turns on both cores, and every
  // client reads nginx's pace and a share of its scheduling.
  // (The server starts first: a child started after the pinning would share CPU 0.)
  const canPin = availableParallelism() >= 2 && spawnSync('taskset', ['-V']).status === 0;
  const server = await startPeerServer(options.cli, options.preferNginx ?? true, canPin ? 1 : undefined);
  const pinned = canPin && pinToCpu(0);
  try {
    const port = server.port;
    const variants: Variant[] = [
      ['close', 'iomux fetchCoroutine (epoll)', () => inProcess(count, () => iomuxCoroutine(port, count))],
      ...uringVariant('close', 'iomux fetchCoroutine (io_uring)', () =>
        inProcess(count, () => iomuxCoroutine(port, count, false, 'io_uring')),
      ),
      ['close', 'C epoll fetcher (floor)', () => cFloor(port, count)],
      ['close', 'Python selectors Fetcher (the notes)', () => python(port, count)],
      ['close', 'node:http, no keep-alive', () => inProcess(count, () => nodeHttp(port, count))],
      ['close', 'Node fetch (undici), no keep-alive', () => inProcess(count, () => nodeFetch(port, count))],
      ['keep-alive', 'iomux HttpPool (epoll)', () => inProcess(count, () => iomuxCoroutine(port, count, true))],
      ...uringVariant('keep-alive', 'iomux HttpPool (io_uring)', () =>
        inProcess(count, () => iomuxCoroutine(port, count, true, 'io_uring')),
      ),
      ['keep-alive', 'node:http, keep-alive Agent', () => inProcess(count, () => nodeHttp(port, count, true))],
      ['keep-alive', 'undici.request', () => inProcess(count, () => undiciRequest(port, count))],
    ];
    // Uncounted rounds first: JIT warm-up for the JavaScript clients (V8
    // takes a few thousand requests to settle: its first rounds run half as
    // fast), caches for all.
    for (let round = 0; round < (options.warmupRounds ?? WARMUP_ROUNDS); round++) {
      for (const [, , measure] of variants) await measure();
    }
    const samples = new Map<string, FetchSample[]>();
    for (let run = 0; run < runs; run++) {
      for (const [, name, measure] of variants) {
        const sample = await measure();
        if (sample !== null) samples.set(name, [...(samples.get(name) ?? []), sample]);
      }
    }
    const results = variants.flatMap(([policy, name]) => {
      const s = samples.get(name);
      if (s === undefined) return [];
      const perSecond = median(s.map((x) => x.perSecond));
      return [
        { policy, name, perSecond, cpuUsPerRequest: median(s.map((x) => x.cpuUs)), runs: s.map((x) => x.perSecond) },
      ];
    });
    return { server: server.name, results };
  } finally {
    await server.stop();
    if (pinned) unpin();
  }
}

/**
 * A markdown table with ratios of iomux to each client of the same policy:
 * requests/s (iomux's over the client's) and the client's CPU per request
 * (iomux's over the client's: below 1 is iomux spending less).
 */
export function formatFetchTable(results: readonly FetchBenchResult[]): string {
  const rows = [
    '| policy | client | requests/s | iomux vs it | client CPU us/request | iomux CPU vs it | runs (min-max) |',
    '|---|---|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    const iomux = results.find((x) => x.policy === r.policy && x.name.startsWith('iomux'));
    const ratio = iomux === undefined ? '-' : `${(iomux.perSecond / r.perSecond).toFixed(2)}x`;
    const cpu = iomux === undefined ? '-' : `${(iomux.cpuUsPerRequest / r.cpuUsPerRequest).toFixed(2)}x`;
    rows.push(
      `| ${r.policy} | ${r.name} | ${Math.round(r.perSecond).toLocaleString('en-US')} | ${ratio} | ` +
        `${r.cpuUsPerRequest.toFixed(1)} | ${cpu} | ${formatRange(r.runs)} |`,
    );
  }
  return rows.join('\n');
}
