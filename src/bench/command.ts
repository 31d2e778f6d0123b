/**
 * `iomux bench sys`: select vs poll vs epoll, TypeScript against the C floor.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { UsageError } from '../cli/usage.js';
import { formatC10kTable, runC10k } from './c10k.js';
import { formatEchoTable, runEchoBench } from './echo.js';
import { formatFetchTable, runFetchBench } from './fetch.js';
import { formatPingPongTable, runPingPongBench } from './pingpong.js';
import { formatSwitchTable, runSwitchBench } from './switch.js';
import {
  DEFAULT_POINTS,
  formatSyscallTable,
  GRID_POINTS,
  runSyscallBench,
  SELECTOR_VARIANTS,
  VARIANTS,
  verdicts,
} from './syscalls.js';

const USAGE = `usage: iomux bench <suite> [options]

suites:
  sys    select vs poll vs epoll against a C floor (iomux bench sys --help)
  echo   echo ping-pong: iomux vs node:net vs a C epoll server (iomux bench echo --help)
  switch coroutine switches: generator Tasks vs async functions (iomux bench switch --help)
  pingpong  readiness callbacks inside a Node app: iomux vs npm epoll (iomux bench pingpong --help)
  fetch  1,000 GETs at once: iomux vs the notes' Python fetcher, node:http, Node fetch (iomux bench fetch --help)
  c10k   10,000 connections, 1 % active, on each backend (iomux bench c10k --help)
  (syscalls is another name for sys)
`;

const C10K_USAGE = `usage: iomux bench c10k [--quick] [--measure-ms MS] [--json FILE]

One server process on the iomux loop (owning mode) holds 100 and then 10,000
connections from a C client in another process; 1 % of them ping-pong 64 bytes,
the rest stay idle. Per backend: round trips/s, p50/p99, server CPU per loop
iteration and per round trip, and server memory per connection. select stops at
its FD_SETSIZE limit.

options:
  --quick          1 s of measurement per point
  --measure-ms MS  measured time per point (default 3000, after 500 ms of warm-up)
  --json FILE      also write the figures as JSON
  --help           this text
`;

const FETCH_USAGE = `usage: iomux bench fetch [--quick] [--runs N] [--count N] [--json FILE]

GETs of a small page, all started at once, against the embedded server (its own
process). Connection: close everywhere: iomux fetchCoroutine on epoll, the notes'
Python selectors Fetcher, node:http and Node's fetch without keep-alive. Keep-alive,
100 connections each: iomux HttpPool, node:http with a keep-alive Agent, undici.request.

options:
  --quick      100 requests, 1 run (a smoke run)
  --runs N     runs per client, interleaved (default 5)
  --count N    requests per run (default 1000)
  --json FILE  also write the figures as JSON
  --help       this text
`;

const PINGPONG_USAGE = `usage: iomux bench pingpong [--quick] [--runs N] [--json FILE]

Two pipes; each readiness callback reads one byte and writes one byte back.
iomux in cooperative mode (epoll, poll, select) against npm epoll (fivdi's
binding, installed as a devDependency of the benchmarks) in the same process.

options:
  --quick      1 run of 300 ms each (a smoke run)
  --runs N     runs per variant, interleaved (default 5, 1 s each)
  --json FILE  also write the figures as JSON
  --help       this text
`;

const SWITCH_USAGE = `usage: iomux bench switch [--quick] [--runs N] [--json FILE]

1,000 coroutines each resume 1,000 times: generator Tasks on the iomux loop
(yield* on a ready Future; a bare yield the loop resumes) against async
functions awaiting a resolved promise. Prints ns per resume (median of the runs).

options:
  --quick      100 resumes each, 3 runs (a smoke run)
  --runs N     runs per variant (default 7)
  --json FILE  also write the figures as JSON
  --help       this text
`;

const SYS_USAGE = `usage: iomux bench sys [--quick] [--grid] [--samples N] [--sample-ms MS] [--json FILE]

Times one wait of select, poll and epoll over N eventfds of which K are ready
(N x K from DESIGN.md's table), through iomux/sys and through a C floor program
compiled on the fly, in one run, and prints each median with its ratio to the floor.

options:
  --quick          3 samples of 20 ms per figure, DESIGN.md's 5 points (a smoke run, well under 20 s)
  --grid           every N in {10, 100, 1,000, 10,000} with K in {1, 1 %, 100 %}, and the
                   same waits through iomux/selectors
  --samples N      samples per figure (default 7); the median is reported
  --sample-ms MS   length of one sample (default 100)
  --json FILE      also write the figures as JSON
  --help           this text
`;

const ECHO_USAGE = `usage: iomux bench echo [--quick] [--runs N] [--conns N] [--measure-ms MS] [--json FILE]

A C load generator (its own process) keeps <conns> connections in ping-pong with
an echo server -- the C epoll floor, the iomux loop (epoll, coroutines) in owning
and in cooperative mode, node:net, each in its own process -- at 64 B and 16 KiB messages,
and prints round trips per second (median of the runs) with ratios.

options:
  --quick          1 run of 1 s per server and size (a smoke run)
  --runs N         runs per server and size, interleaved (default 3)
  --conns N        connections (default 100)
  --measure-ms MS  measured time per run after a 500 ms warm-up (default 3000)
  --json FILE      also write the figures as JSON
  --help           this text
`;

function intOption(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 100_000) throw new UsageError(`${name} must be an integer from 1 to 100000`);
  return n;
}

/** A suite's parsed options: --quick and --json, and the suite's own string options. */
interface SuiteOptions {
  quick: boolean;
  json: string | undefined;
  get(name: string): string | undefined;
}

/**
 * Parses a suite's options: --quick, --json, --help and `extra` (string
 * options such as --runs). Returns null after printing `usage` for --help.
 */
function parseSuite(args: string[], usage: string, extra: readonly string[]): SuiteOptions | null {
  const options: Record<string, { type: 'string' | 'boolean' }> = {
    quick: { type: 'boolean' },
    json: { type: 'string' },
    help: { type: 'boolean' },
  };
  for (const name of extra) options[name] = { type: 'string' };
  const { values } = parseArgs({ args, options, strict: true, allowPositionals: false });
  if (values['help'] === true) {
    process.stdout.write(usage);
    return null;
  }
  const json = values['json'];
  return {
    quick: values['quick'] === true,
    json: typeof json === 'string' ? json : undefined,
    get: (name) => {
      const v = values[name];
      return typeof v === 'string' ? v : undefined;
    },
  };
}

/** Prints a suite's title and table; writes the figures as JSON when asked. */
function report(title: string, table: string, json: string | undefined, figures: object): void {
  process.stdout.write(`${title}, node ${process.version}\n\n${table}\n`);
  if (json !== undefined) {
    writeFileSync(
      json,
      `${JSON.stringify({ node: process.version, date: new Date().toISOString(), ...figures }, null, 2)}\n`,
    );
  }
}

/** Runs `iomux bench <suite> ...`; resolves with the exit code. */
export async function runBenchCommand(args: string[]): Promise<number> {
  const [suite, ...rest] = args;
  if (suite === undefined || suite === '--help' || suite === '-h') {
    process.stdout.write(USAGE);
    return suite === undefined ? 2 : 0;
  }
  if (suite === 'echo') return runEcho(rest);
  if (suite === 'switch') return runSwitch(rest);
  if (suite === 'pingpong') return runPingPong(rest);
  if (suite === 'fetch') return runFetch(rest);
  if (suite === 'c10k') return runC10kCommand(rest);
  if (suite !== 'sys' && suite !== 'syscalls') {
    process.stderr.write(
      `iomux bench: unknown suite '${suite}' (available: sys (or syscalls), echo, switch, pingpong, fetch, c10k)\n`,
    );
    return 2;
  }
  const grid = rest.includes('--grid');
  const opts = parseSuite(
    rest.filter((a) => a !== '--grid'),
    SYS_USAGE,
    ['samples', 'sample-ms'],
  );
  if (opts === null) return 0;
  const samples = intOption(opts.get('samples'), '--samples', opts.quick ? 3 : 7);
  const sampleMs = intOption(opts.get('sample-ms'), '--sample-ms', opts.quick ? 20 : 100);
  const tty = process.stderr.isTTY === true;
  const result = runSyscallBench({
    points: grid ? GRID_POINTS : DEFAULT_POINTS,
    variants: grid ? [...VARIANTS, ...SELECTOR_VARIANTS] : VARIANTS,
    samples,
    sampleMs,
    onCell: (cell, done, total) => {
      if (tty) process.stderr.write(`\r${done}/${total} ${cell.variant} N=${cell.n} K=${cell.k}      `);
    },
  });
  if (tty) process.stderr.write('\r\x1b[K');
  const floorNote = result.floorError === undefined ? '' : `\nno C floor: ${result.floorError}`;
  const verdictText = verdicts(result.cells)
    .map((line) => `- ${line}`)
    .join('\n');
  report(
    `# select vs poll vs epoll: ns per wait (median of ${samples} x ${sampleMs} ms)`,
    `${formatSyscallTable(result.cells)}${floorNote}\n\nWhat the C floor of this run says:\n${verdictText}`,
    opts.json,
    { samples, sampleMs, ...result },
  );
  return 0;
}

async function runEcho(args: string[]): Promise<number> {
  const opts = parseSuite(args, ECHO_USAGE, ['runs', 'conns', 'measure-ms']);
  if (opts === null) return 0;
  const runs = intOption(opts.get('runs'), '--runs', opts.quick ? 1 : 3);
  const conns = intOption(opts.get('conns'), '--conns', 100);
  const measureMs = intOption(opts.get('measure-ms'), '--measure-ms', opts.quick ? 1000 : 3000);
  const results = await runEchoBench({
    sizes: [64, 16384],
    conns,
    runs,
    warmupMs: opts.quick ? 200 : 500,
    measureMs,
    servers: ['c', 'iomux', 'iomux-coop', 'net'],
    onResult: (r) => {
      if (process.stderr.isTTY === true)
        process.stderr.write(`${r.server} ${r.size} B: ${Math.round(r.perSecond)}/s\n`);
    },
  });
  report(
    `# echo ping-pong, ${conns} connections (median of ${runs} x ${measureMs} ms)`,
    formatEchoTable(results),
    opts.json,
    {
      conns,
      runs,
      measureMs,
      results,
    },
  );
  return 0;
}

async function runSwitch(args: string[]): Promise<number> {
  const opts = parseSuite(args, SWITCH_USAGE, ['runs']);
  if (opts === null) return 0;
  const runs = intOption(opts.get('runs'), '--runs', opts.quick ? 3 : 7);
  const rounds = opts.quick ? 100 : 1000;
  const results = await runSwitchBench(rounds, runs);
  report(
    `# coroutine switches, 1,000 coroutines x ${rounds} resumes (median of ${runs})`,
    formatSwitchTable(results),
    opts.json,
    {
      rounds,
      runs,
      results,
    },
  );
  return 0;
}

async function runPingPong(args: string[]): Promise<number> {
  const opts = parseSuite(args, PINGPONG_USAGE, ['runs']);
  if (opts === null) return 0;
  const runs = intOption(opts.get('runs'), '--runs', opts.quick ? 1 : 5);
  const durationMs = opts.quick ? 300 : 1000;
  const results = await runPingPongBench(durationMs, runs);
  report(
    `# pipe ping-pong inside a Node app (median of ${runs} x ${durationMs} ms)`,
    formatPingPongTable(results),
    opts.json,
    {
      runs,
      durationMs,
      results,
    },
  );
  return 0;
}

async function runFetch(args: string[]): Promise<number> {
  const opts = parseSuite(args, FETCH_USAGE, ['runs', 'count']);
  if (opts === null) return 0;
  const runs = intOption(opts.get('runs'), '--runs', opts.quick ? 1 : 5);
  const count = intOption(opts.get('count'), '--count', opts.quick ? 100 : 1000);
  const results = await runFetchBench(count, runs);
  report(`# ${count} GETs at once (median of ${runs})`, formatFetchTable(results), opts.json, {
    count,
    runs,
    results,
  });
  return 0;
}

async function runC10kCommand(args: string[]): Promise<number> {
  const opts = parseSuite(args, C10K_USAGE, ['measure-ms']);
  if (opts === null) return 0;
  const measureMs = intOption(opts.get('measure-ms'), '--measure-ms', opts.quick ? 1000 : 3000);
  const results = await runC10k({
    backends: ['epoll', 'poll', 'select'],
    conns: [100, 10_000],
    warmupMs: opts.quick ? 300 : 500,
    measureMs,
    onResult: (r) => {
      if (process.stderr.isTTY === true)
        process.stderr.write(`${r.backend} ${r.conns}: ${Math.round(r.perSecond ?? 0)}/s\n`);
    },
  });
  report(
    `# C10K: 1 % of the connections active, 64 B ping-pong (${measureMs} ms per point)`,
    formatC10kTable(results),
    opts.json,
    {
      measureMs,
      results,
    },
  );
  return 0;
}
