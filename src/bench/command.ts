/**
 * `iomux bench sys`: select vs poll vs epoll, TypeScript against the C floor.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { UsageError } from '../cli/usage.js';
import { formatEchoTable, runEchoBench } from './echo.js';
import { formatPingPongTable, runPingPongBench } from './pingpong.js';
import { formatSwitchTable, runSwitchBench } from './switch.js';
import { DEFAULT_POINTS, formatSyscallTable, runSyscallBench, VARIANTS } from './syscalls.js';

const USAGE = `usage: iomux bench <suite> [options]

suites:
  sys    select vs poll vs epoll against a C floor (iomux bench sys --help)
  echo   echo ping-pong: iomux vs node:net vs a C epoll server (iomux bench echo --help)
  switch coroutine switches: generator Tasks vs async functions (iomux bench switch --help)
  pingpong  readiness callbacks inside a Node app: iomux vs npm epoll (iomux bench pingpong --help)
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

const SYS_USAGE = `usage: iomux bench sys [--quick] [--samples N] [--sample-ms MS] [--json FILE]

Times one wait of select, poll and epoll over N eventfds of which K are ready
(N x K from DESIGN.md's table), through iomux/sys and through a C floor program
compiled on the fly, in one run, and prints each median with its ratio to the floor.

options:
  --quick          3 samples of 20 ms per figure (a smoke run, well under 20 s)
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
  if (suite !== 'sys') {
    process.stderr.write(`iomux bench: unknown suite '${suite}' (available: sys, echo, switch, pingpong)\n`);
    return 2;
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      quick: { type: 'boolean' },
      samples: { type: 'string' },
      'sample-ms': { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help === true) {
    process.stdout.write(SYS_USAGE);
    return 0;
  }
  const quick = values.quick === true;
  const samples = intOption(values.samples, '--samples', quick ? 3 : 7);
  const sampleMs = intOption(values['sample-ms'], '--sample-ms', quick ? 20 : 100);
  const tty = process.stderr.isTTY === true;
  const result = runSyscallBench({
    points: DEFAULT_POINTS,
    variants: VARIANTS,
    samples,
    sampleMs,
    onCell: (cell, done, total) => {
      if (tty) process.stderr.write(`\r${done}/${total} ${cell.variant} N=${cell.n} K=${cell.k}      `);
    },
  });
  if (tty) process.stderr.write('\r\x1b[K');
  process.stdout.write(
    `# select vs poll vs epoll: ns per wait (median of ${samples} x ${sampleMs} ms), node ${process.version}\n\n`,
  );
  process.stdout.write(`${formatSyscallTable(result.cells)}\n`);
  if (result.floorError !== undefined) process.stdout.write(`\nno C floor: ${result.floorError}\n`);
  if (values.json !== undefined) {
    writeFileSync(
      values.json,
      `${JSON.stringify({ node: process.version, date: new Date().toISOString(), samples, sampleMs, ...result }, null, 2)}\n`,
    );
  }
  return 0;
}

async function runEcho(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: 'boolean' },
      runs: { type: 'string' },
      conns: { type: 'string' },
      'measure-ms': { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help === true) {
    process.stdout.write(ECHO_USAGE);
    return 0;
  }
  const quick = values.quick === true;
  const runs = intOption(values.runs, '--runs', quick ? 1 : 3);
  const conns = intOption(values.conns, '--conns', 100);
  const measureMs = intOption(values['measure-ms'], '--measure-ms', quick ? 1000 : 3000);
  const results = await runEchoBench({
    sizes: [64, 16384],
    conns,
    runs,
    warmupMs: quick ? 200 : 500,
    measureMs,
    servers: ['c', 'iomux', 'iomux-coop', 'net'],
    onResult: (r) => {
      if (process.stderr.isTTY === true)
        process.stderr.write(`${r.server} ${r.size} B: ${Math.round(r.perSecond)}/s\n`);
    },
  });
  process.stdout.write(
    `# echo ping-pong, ${conns} connections (median of ${runs} x ${measureMs} ms), node ${process.version}\n\n`,
  );
  process.stdout.write(`${formatEchoTable(results)}\n`);
  if (values.json !== undefined) {
    writeFileSync(
      values.json,
      `${JSON.stringify({ node: process.version, date: new Date().toISOString(), conns, runs, measureMs, results }, null, 2)}\n`,
    );
  }
  return 0;
}

async function runSwitch(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: 'boolean' },
      runs: { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help === true) {
    process.stdout.write(SWITCH_USAGE);
    return 0;
  }
  const quick = values.quick === true;
  const runs = intOption(values.runs, '--runs', quick ? 3 : 7);
  const rounds = quick ? 100 : 1000;
  const results = await runSwitchBench(rounds, runs);
  process.stdout.write(
    `# coroutine switches, 1,000 coroutines x ${rounds} resumes (median of ${runs}), node ${process.version}\n\n`,
  );
  process.stdout.write(`${formatSwitchTable(results)}\n`);
  if (values.json !== undefined) {
    writeFileSync(
      values.json,
      `${JSON.stringify({ node: process.version, date: new Date().toISOString(), rounds, runs, results }, null, 2)}\n`,
    );
  }
  return 0;
}

async function runPingPong(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: 'boolean' },
      runs: { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help === true) {
    process.stdout.write(PINGPONG_USAGE);
    return 0;
  }
  const quick = values.quick === true;
  const runs = intOption(values.runs, '--runs', quick ? 1 : 5);
  const durationMs = quick ? 300 : 1000;
  const results = await runPingPongBench(durationMs, runs);
  process.stdout.write(
    `# pipe ping-pong inside a Node app (median of ${runs} x ${durationMs} ms), node ${process.version}\n\n`,
  );
  process.stdout.write(`${formatPingPongTable(results)}\n`);
  if (values.json !== undefined) {
    writeFileSync(
      values.json,
      `${JSON.stringify({ node: process.version, date: new Date().toISOString(), runs, durationMs, results }, null, 2)}\n`,
    );
  }
  return 0;
}
