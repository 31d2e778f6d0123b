/**
 * `iomux bench`: the benchmarks users run -- `sys` (select vs poll vs epoll
 * against the C floor, the notes' claim in numbers) and `c10k` (10,000
 * connections on each backend). The project's comparisons with its peers
 * (CPython, uvloop, node:net, nginx, undici...) and its report are not in
 * the package: they live in the repository's bench/ folder (`npm run bench`),
 * which reuses the option parsing and the two suites exported here.
 *
 * The measurements themselves are in ./bench/, which knows nothing of the
 * command line.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { IoUring } from '../sys/index.js';
import { formatC10kTable, runC10k } from './bench/c10k.js';
import { syscallChartSvg } from './bench/chart.js';
import { buildC } from './bench/floor.js';
import {
  DEFAULT_POINTS,
  formatSyscallTable,
  GRID_POINTS,
  runSyscallBench,
  SELECTOR_VARIANTS,
  VARIANTS,
  verdicts,
} from './bench/syscalls.js';
import { sysPageHtml } from './html/sys-page.js';
import { Progress } from './progress.js';
import { UsageError, writableFile } from './usage.js';

/** What one suite measured: a title, its markdown (tables, verdicts) and its figures. */
export interface BenchOutput {
  title: string;
  body: string;
  figures: object;
}

/** A suite's parsed options: --quick and --json, and the suite's own string options. */
export interface SuiteOptions {
  quick: boolean;
  json: string | undefined;
  get(name: string): string | undefined;
}

/**
 * An integer option from 1 to 100,000, or `fallback` when it is absent.
 *
 * @throws UsageError when the value is not such an integer
 */
export function intOption(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 100_000) throw new UsageError(`${name} must be an integer from 1 to 100000`);
  return n;
}

/**
 * Parses a suite's options: --quick, --json, --help and `extra` (string
 * options such as --runs). Returns null after printing `usage` for --help.
 */
export function parseSuite(args: string[], usage: string, extra: readonly string[]): SuiteOptions | null {
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

/**
 * Prints a suite's title and tables (and `extra` markdown after them);
 * writes the figures as JSON, with Node's version and the date, when `json`
 * names a file.
 */
export function printOutput(out: BenchOutput, json: string | undefined, extra = ''): void {
  process.stdout.write(`${out.title}, node ${process.version}\n\n${out.body}\n${extra}`);
  if (json !== undefined) {
    writeFileSync(
      json,
      `${JSON.stringify({ node: process.version, date: new Date().toISOString(), ...out.figures }, null, 2)}\n`,
    );
  }
}

const USAGE = `usage: iomux bench <suite> [options]

suites:
  sys    select vs poll vs epoll against a C floor (iomux bench sys --help)
  c10k   10,000 connections, 1 % active, on each backend (iomux bench c10k --help)
  (syscalls is another name for sys)

The project's comparisons with its peers (CPython, asyncio, uvloop, node:net,
nginx, undici...) and its report are not part of the package: they live in the
bench/ folder of iomux's repository (npm run bench).
`;

/** The suites of the project's own benchmarks (bench/ in the repository), for a helpful error. */
const PROJECT_SUITES: readonly string[] = ['calls', 'echo', 'switch', 'pingpong', 'fetch', 'instr', 'report'];

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

const SYS_USAGE = `usage: iomux bench sys [--quick] [--grid] [--samples N] [--sample-ms MS] [--json FILE] [--svg FILE]
                       [--html FILE]

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
  --svg FILE       also draw them: a log-log chart of ns per wait vs N, per backend and activity
  --html FILE      also write one self-contained page: the chart, what the C floor says, the table
  --help           this text
`;

/** Runs `iomux bench <suite> ...`; resolves with the exit code. */
export async function runBenchCommand(args: string[]): Promise<number> {
  const [suite, ...rest] = args;
  if (suite === undefined || suite === '--help' || suite === '-h') {
    process.stdout.write(USAGE);
    return suite === undefined ? 2 : 0;
  }
  if (suite === 'c10k') return runC10kCommand(rest);
  if (suite === 'sys' || suite === 'syscalls') return runSys(rest);
  const where = PROJECT_SUITES.includes(suite)
    ? `'${suite}' is one of the project's comparisons with its peers, which are not in the package: run it from a clone of iomux's repository with 'npm run bench -- ${suite}'`
    : `unknown suite '${suite}'`;
  process.stderr.write(`iomux bench: ${where} (available: sys (or syscalls), c10k)\n`);
  return 2;
}

function runSys(args: string[]): number {
  const grid = args.includes('--grid');
  const opts = parseSuite(
    args.filter((a) => a !== '--grid'),
    SYS_USAGE,
    ['samples', 'sample-ms', 'svg', 'html'],
  );
  if (opts === null) return 0;
  const out = sysSuite({
    grid,
    samples: intOption(opts.get('samples'), '--samples', opts.quick ? 3 : 7),
    sampleMs: intOption(opts.get('sample-ms'), '--sample-ms', opts.quick ? 20 : 100),
    // Checked before the run, which takes a while: its output would be lost.
    svg: writableFile(opts.get('svg'), '--svg'),
    html: writableFile(opts.get('html'), '--html'),
  });
  printOutput(out, opts.json);
  return 0;
}

/** What `iomux bench sys` measures: the points and variants, the samples, where to draw the chart. */
export interface SysParams {
  /** Every point of the grid and the selectors too, or DESIGN.md's 5 points through iomux/sys. */
  grid: boolean;
  samples: number;
  sampleMs: number;
  /** Where to write the SVG chart, if anywhere. */
  svg?: string | undefined;
  /** Where to write the HTML page (chart, verdicts, table), if anywhere. */
  html?: string | undefined;
}

/** Runs the syscall suite (with a progress line on a terminal); its figures are `{ samples, sampleMs, cells, ... }`. */
export function sysSuite({ grid, samples, sampleMs, svg, html }: SysParams): BenchOutput {
  const points = grid ? GRID_POINTS : DEFAULT_POINTS;
  const variants = grid ? [...VARIANTS, ...SELECTOR_VARIANTS] : VARIANTS;
  const progress = new Progress(points.length * variants.length);
  const result = runSyscallBench({ points, variants, samples, sampleMs, onCell: () => progress.tick(false) });
  progress.finish();
  const chart =
    svg === undefined && html === undefined
      ? ''
      : syscallChartSvg(result.cells, `ns per wait vs N watched fds, node ${process.version}`);
  if (svg !== undefined) writeFileSync(svg, chart);
  // Without a C compiler (an install from the prebuilt package on a machine
  // with no toolchain) the TypeScript figures stand alone, and the verdicts,
  // drawn from the floor's figures only, are left out with the reason.
  const lines = result.floorError === undefined ? verdicts(result.cells) : [];
  const unavailable =
    result.floorError === undefined
      ? undefined
      : `C floor unavailable: ${result.floorError}; the TypeScript figures stand alone (install a C compiler for the floor and its verdicts).`;
  const verdictText =
    unavailable === undefined
      ? `\n\nWhat the C floor of this run says:\n${lines.map((line) => `- ${line}`).join('\n')}`
      : `\n\n${unavailable}`;
  const title = `select vs poll vs epoll: ns per wait (median of ${samples} x ${sampleMs} ms)`;
  const table = formatSyscallTable(result.cells);
  if (html !== undefined) {
    writeFileSync(
      html,
      sysPageHtml({
        title: `${title}, node ${process.version}`,
        svg: chart,
        verdicts: lines,
        table,
        ...(unavailable === undefined ? {} : { note: unavailable }),
      }),
    );
  }
  return {
    title: `# ${title}`,
    body: `${table}${verdictText}`,
    figures: { samples, sampleMs, ...result },
  };
}

async function runC10kCommand(args: string[]): Promise<number> {
  const opts = parseSuite(args, C10K_USAGE, ['measure-ms']);
  if (opts === null) return 0;
  // The 10,000 clients are one C program; without a compiler (an install
  // from the prebuilt package) there is nothing to measure with: say so
  // rather than end in a stack trace.
  const client = buildC('echo-client');
  if ('error' in client) {
    process.stderr.write(`iomux bench c10k: its load generator (echo-client.c) cannot be built: ${client.error}\n`);
    return 1;
  }
  const out = await c10kSuite(
    intOption(opts.get('measure-ms'), '--measure-ms', opts.quick ? 1000 : 3000),
    opts.quick ? 300 : 500,
  );
  printOutput(out, opts.json);
  return 0;
}

/**
 * Runs the C10K suite on epoll, poll and select (and io_uring where the
 * kernel offers it) at 100 and 10,000 connections; its figures are
 * `{ measureMs, results }`.
 */
export async function c10kSuite(measureMs: number, warmupMs: number): Promise<BenchOutput> {
  const results = await runC10k({
    backends: IoUring.available() ? ['epoll', 'poll', 'select', 'io_uring'] : ['epoll', 'poll', 'select'],
    conns: [100, 10_000],
    warmupMs,
    measureMs,
    onResult: (r) => {
      if (process.stderr.isTTY === true)
        process.stderr.write(`${r.backend} ${r.conns}: ${Math.round(r.perSecond ?? 0)}/s\n`);
    },
  });
  return {
    title: `# C10K: 1 % of the connections active, 64 B ping-pong (${measureMs} ms per point)`,
    body: formatC10kTable(results),
    figures: { measureMs, results },
  };
}
