/**
 * User-mode instructions per unit of work, counted by callgrind (valgrind),
 * for the main thread and for every thread of the process: figures steadier
 * than timings on a shared VM (those swing by a third from run to run), so
 * that a change of a few per cent shows. The kernel's share -- most of the
 * time of a round trip or a request -- is not counted.
 *
 * - echo: each echo server runs under callgrind with one run of the C load
 *   generator; its warm-up settles the server's JIT, the counters are zeroed
 *   when its measured window starts, and dumped when it ends: instructions
 *   per round trip.
 * - fetch: iomux's client runs its rounds under callgrind, counted one by
 *   one after uncounted warm-up rounds: instructions per request of the
 *   median round. The Python fetcher runs twice, with fewer and with more
 *   requests: the difference per request leaves start-up out.
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { buildC } from '#iomux/cli/bench/floor.js';
import { median } from '#iomux/cli/bench/stats.js';
import { ECHO_SERVER_NAMES, type EchoServerKind, startEchoServer, stopServer } from './echo.js';
import { startPeerServer } from './fetch.js';
import { buildBenchC, findPython, peerScript } from './peers.js';

export interface InstrResult {
  work: 'echo' | 'fetch';
  name: string;
  /** Instructions of the main thread per round trip (echo) or per request (fetch). */
  perUnit: number;
  /** The same, every thread of the process (V8's GC and compiler threads too). */
  perUnitAll: number;
  /** Round trips or requests counted. */
  units: number;
}

export interface InstrOptions {
  /** What to count (default both). */
  works?: readonly InstrResult['work'][];
  /** Echo: load before the count (JIT warm-up under valgrind is slow), and the counted time, in ms. */
  echoWarmupMs: number;
  echoMeasureMs: number;
  /** Fetch: iomux's rounds of 1,000 GETs, uncounted then counted one by one; requests of Python's two runs. */
  iomuxRounds: { warmup: number; counted: number };
  pythonRequests: readonly [number, number];
  onResult?: (result: InstrResult) => void;
}

const ECHO_CONNS = 100;
const ECHO_SIZE = 64;
const FETCH_COUNT = 1000;

let unavailable: string | null | undefined;

/**
 * Why the suite cannot run here, or null when valgrind and callgrind_control
 * are installed. Asked once per process.
 */
export function instrUnavailable(): string | null {
  if (unavailable !== undefined) return unavailable;
  unavailable = null;
  for (const tool of ['valgrind', 'callgrind_control']) {
    const r = spawnSync(tool, ['--version'], { stdio: 'ignore', timeout: 10_000 });
    if (r.error !== undefined || r.status !== 0) {
      unavailable = `${tool} not found (bench/setup installs valgrind)`;
      break;
    }
  }
  return unavailable;
}

/** Instructions of the main thread and of every thread. */
interface Counts {
  main: number;
  all: number;
}

/** The instruction count of a callgrind output file: its `summary:` line. */
export function callgrindSummary(text: string): number {
  const m = /^summary: (\d+)$/m.exec(text);
  if (m === null) throw new Error('callgrind output without a summary line');
  return Number(m[1]);
}

function callgrindPrefix(outFile: string): string[] {
  return ['valgrind', '--tool=callgrind', '--quiet', '--separate-threads=yes', `--callgrind-out-file=${outFile}`];
}

/**
 * The counts of one dump, one file per thread (`<name>-01` is the main
 * thread): `name` is the output file, or `<output file>.<n>` for the n-th
 * dump asked for with callgrind_control.
 */
function readCounts(dir: string, name: string): Counts {
  const files = readdirSync(dir).filter((f) => /^-\d+$/.test(f.slice(name.length)) && f.startsWith(name));
  if (!files.includes(`${name}-01`)) throw new Error(`no callgrind output for ${name}'s main thread`);
  let all = 0;
  for (const f of files) all += callgrindSummary(readFileSync(join(dir, f), 'utf8'));
  return { main: callgrindSummary(readFileSync(join(dir, `${name}-01`), 'utf8')), all };
}

function callgrindControl(option: '-z' | '-d', pid: number): void {
  const r = spawnSync('callgrind_control', [option, String(pid)], { encoding: 'utf8', timeout: 60_000 });
  if (r.error !== undefined || r.status !== 0) throw new Error(`callgrind_control ${option} failed: ${r.stderr}`);
}

async function countEcho(
  kind: EchoServerKind,
  dir: string,
  cServer: string,
  client: string,
  options: InstrOptions,
): Promise<InstrResult> {
  const name = `echo-${kind}.out`;
  const script = fileURLToPath(new URL('./echo-server.js', import.meta.url));
  const { port, child } = await startEchoServer(kind, cServer, script, callgrindPrefix(join(dir, name)));
  try {
    const pid = child.pid as number;
    // One client run: its warm-up settles the server's JIT, and the counters
    // are zeroed when it says its measured window starts.
    const load = spawn(client, [port, ECHO_CONNS, ECHO_SIZE, options.echoWarmupMs, options.echoMeasureMs].map(String), {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    (load.stdout as NodeJS.ReadableStream).on('data', (b: Buffer) => out.push(b));
    const lines = createInterface({ input: load.stderr as NodeJS.ReadableStream });
    let zeroed: unknown = new Error('the echo client never started its measured window');
    lines.on('line', (line) => {
      if (line !== 'measuring') return;
      try {
        callgrindControl('-z', pid);
        zeroed = true;
      } catch (error) {
        zeroed = error;
      }
    });
    // 'close': the client exited and its output is all read.
    const [code] = (await once(load, 'close')) as [number | null];
    if (code !== 0) throw new Error(`echo client failed against the ${kind} server (exit ${code})`);
    if (zeroed !== true) throw zeroed;
    const { roundTrips } = JSON.parse(Buffer.concat(out).toString('utf8')) as { roundTrips: number };
    // The first dump: what ran since the zeroing (the server idles after the client).
    callgrindControl('-d', pid);
    const counts = readCounts(dir, `${name}.1`);
    return {
      work: 'echo',
      name: ECHO_SERVER_NAMES[kind],
      perUnit: counts.main / roundTrips,
      perUnitAll: counts.all / roundTrips,
      units: roundTrips,
    };
  } finally {
    await stopServer(child);
  }
}

// Instructions of one whole run of `command` under callgrind.
function countRun(dir: string, label: string, command: string, args: readonly string[]): Counts {
  const outFile = join(dir, `${label}.out`);
  const [valgrind, ...options] = callgrindPrefix(outFile) as [string, ...string[]];
  const r = spawnSync(valgrind, [...options, command, ...args], { encoding: 'utf8', timeout: 600_000 });
  if (r.error !== undefined || r.status !== 0) {
    throw new Error(`${label} under callgrind failed: ${r.error?.message ?? r.stderr}`);
  }
  return readCounts(dir, `${label}.out`);
}

// Instructions per request between two runs of different sizes.
function perUnitBetween(
  dir: string,
  label: string,
  run: (requests: number) => [string, string[]],
  sizes: readonly [number, number],
): { perUnit: number; perUnitAll: number; units: number } {
  const [small, large] = sizes;
  const a = countRun(dir, `${label}-small`, ...run(small));
  const b = countRun(dir, `${label}-large`, ...run(large));
  const units = large - small;
  return { perUnit: (b.main - a.main) / units, perUnitAll: (b.all - a.all) / units, units };
}

/**
 * Instructions per unit of the median round: fetch-client.js runs its rounds
 * under callgrind, and the counters are zeroed after the warm-up rounds and
 * dumped after each counted one. The median leaves out rounds unlike the
 * rest, such as one in which V8 runs a major GC (the difference of two runs
 * of 8 and 16 rounds, which took in whatever fell there, swung by 15 %).
 */
async function perRoundMedian(
  dir: string,
  label: string,
  command: readonly string[],
  rounds: { warmup: number; counted: number },
  unitsPerRound: number,
): Promise<{ perUnit: number; perUnitAll: number; units: number }> {
  const name = `${label}.out`;
  const [valgrind, ...options] = callgrindPrefix(join(dir, name)) as [string, ...string[]];
  const child = spawn(valgrind, [...options, ...command], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  // A client that died leaves EPIPE here; its exit code below says why.
  child.stdin?.on('error', () => {});
  let failure: unknown = null;
  lines.on('line', (line) => {
    const round = Number(line.replace('round ', ''));
    try {
      if (round === rounds.warmup) callgrindControl('-z', child.pid as number);
      else if (round > rounds.warmup) callgrindControl('-d', child.pid as number);
    } catch (error) {
      failure ??= error;
    }
    child.stdin?.write('\n');
  });
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`${label} under callgrind failed (exit ${code})`);
  if (failure !== null) throw failure;
  // Dump k (name.k) holds counted round k.
  const counts = Array.from({ length: rounds.counted }, (_, k) => readCounts(dir, `${name}.${k + 1}`));
  return {
    perUnit: median(counts.map((c) => c.main)) / unitsPerRound,
    perUnitAll: median(counts.map((c) => c.all)) / unitsPerRound,
    units: rounds.counted * unitsPerRound,
  };
}

/** The interpreter itself: python3 may be a shim script that valgrind would follow no further than its exec. */
function pythonExecutable(): string | null {
  const python = findPython();
  if (python === null) return null;
  const r = spawnSync(python, ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? r.stdout.trim() : null;
}

async function countFetch(dir: string, options: InstrOptions, onResult: (r: InstrResult) => void): Promise<string> {
  const server = await startPeerServer(undefined, true);
  try {
    const python = pythonExecutable();
    if (python !== null) {
      const script = peerScript('selectors_fetcher.py');
      const counted = perUnitBetween(
        dir,
        'fetch-python',
        (count) => [python, [script, '127.0.0.1', String(server.port), String(count)]],
        options.pythonRequests,
      );
      onResult({ work: 'fetch', name: 'Python selectors Fetcher (the notes)', ...counted });
    }
    const client = fileURLToPath(new URL('./fetch-client.js', import.meta.url));
    const counted = await perRoundMedian(
      dir,
      'fetch-iomux',
      [
        process.execPath,
        client,
        String(server.port),
        String(options.iomuxRounds.warmup + options.iomuxRounds.counted),
        String(FETCH_COUNT),
      ],
      options.iomuxRounds,
      FETCH_COUNT,
    );
    onResult({ work: 'fetch', name: 'iomux fetchCoroutine (epoll)', ...counted });
    return server.name;
  } finally {
    await server.stop();
  }
}

/**
 * Counts every program (of the works asked for); results in table order.
 * `fetchServer` names the server the fetches went to ('' when none ran).
 *
 * @throws when valgrind is missing (see instrUnavailable) or a program fails
 */
export async function runInstrBench(options: InstrOptions): Promise<{ fetchServer: string; results: InstrResult[] }> {
  const unavailable = instrUnavailable();
  if (unavailable !== null) throw new Error(unavailable);
  const cServer = buildBenchC('echo-server');
  const client = buildC('echo-client');
  if ('error' in cServer) throw new Error(cServer.error);
  if ('error' in client) throw new Error(client.error);
  const dir = mkdtempSync(join(tmpdir(), 'iomux-instr-'));
  const results: InstrResult[] = [];
  const add = (r: InstrResult): void => {
    results.push(r);
    options.onResult?.(r);
  };
  try {
    const works = options.works ?? ['echo', 'fetch'];
    if (works.includes('echo')) {
      for (const kind of ['c', 'iomux', 'net'] as const)
        add(await countEcho(kind, dir, cServer.path, client.path, options));
    }
    const fetchServer = works.includes('fetch') ? await countFetch(dir, options, add) : '';
    return { fetchServer, results };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A markdown table: per unit of work, each program's count (main thread,
 * and every thread) with the main thread's ratio to the first program (the
 * floor or the peer).
 */
export function formatInstrTable(results: readonly InstrResult[], fetchServer: string): string {
  const rows = ['| work | program | main thread | vs the first | every thread |', '|---|---|---:|---:|---:|'];
  const label = {
    echo: `echo round trip, ${ECHO_SIZE} B, ${ECHO_CONNS} connections (server)`,
    fetch: `fetch, Connection: close, against ${fetchServer} (client)`,
  };
  const count = (n: number): string => Math.round(n).toLocaleString('en-US');
  for (const r of results) {
    const first = results.find((x) => x.work === r.work) as InstrResult;
    rows.push(
      `| ${label[r.work]} | ${r.name} | ${count(r.perUnit)} | ${(r.perUnit / first.perUnit).toFixed(2)}x | ${count(r.perUnitAll)} |`,
    );
  }
  return rows.join('\n');
}
