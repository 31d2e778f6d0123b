/**
 * `iomux demo --models`: the same pages fetched under each of the notes'
 * five I/O models (11.2.2) -- blocking, non-blocking, I/O multiplexing
 * (select, poll, epoll), signal-driven, asynchronous (io_uring) -- with
 * what each costs: wall time, CPU time, syscalls per page (counted by the
 * addon) and context switches.
 */
import {
  type FetchError,
  type FetchResult,
  fetchWithModel,
  IO_MODELS,
  type IoModel,
  modelFamily,
} from '../fetch/index.js';
import { LoopTrace } from '../loop/index.js';
import { IoUring, syscallCount } from '../sys/index.js';
import { type DemoTls, demoFetchOptions, pageTraceCapacity, startServerProcess, writeDemoPage } from './demo.js';
import type { Waterfall } from './html/model.js';
import { tracePage, waterfallFromTrace } from './trace-pages.js';

export interface ModelsOptions {
  /** Pages to fetch under each model. */
  count: number;
  /** Most pages in flight at once for the models that overlap them (multiplexing, signal-driven, io_uring). */
  concurrency: number;
  /** How long the server holds each page, in ms (0: none). */
  latencyMs?: number;
  /** Print the rows as JSON instead of the table. */
  json?: boolean;
  /** Serve and fetch over TLS. */
  tls?: DemoTls;
  /** Also write a page with a waterfall per model here (`--html FILE`), each model's fetches traced. */
  html?: string;
  /** Where the output goes. */
  out: NodeJS.WritableStream;
}

/** One model's measurements. Counts are for the whole run of `pages + failed` URLs. */
export interface ModelRow {
  model: IoModel;
  /** The notes' name: blocking, non-blocking, I/O multiplexing, signal-driven, asynchronous. */
  family: string;
  /** Pages in flight at once (1 for blocking and non-blocking). */
  inFlight: number;
  /** Why the model did not run here (io_uring unavailable); the numbers are then null. */
  unavailable: string | null;
  wallMs: number | null;
  /** User + system CPU time of the process, in ms. */
  cpuMs: number | null;
  pages: number;
  failed: number;
  /** Syscalls made by the addon on this thread (syscallCount), in all. */
  syscalls: number | null;
  /** syscalls / URLs. */
  syscallsPerPage: number | null;
  /** Voluntary context switches of the process (it slept in the kernel). */
  voluntarySwitches: number | null;
  /** Involuntary context switches (the scheduler took the CPU away). */
  involuntarySwitches: number | null;
}

/** What each model does, one line each, for the text under the table. */
export const MODEL_NOTES: Readonly<Record<IoModel, string>> = {
  blocking: 'a blocking socket per page, one page at a time: connect, sendAll, recv until complete, asleep in each',
  'non-blocking': 'fetchBusyPoll, one page at a time: ask the non-blocking socket again and again, never asleep',
  select: 'the coroutine fetcher on an EventLoop over select(2), every page in flight',
  poll: 'the same over poll(2)',
  epoll: 'the same over epoll_wait(2)',
  'signal-driven':
    'O_ASYNC + F_SETSIG on every socket; asleep in poll(2) on the SignalWatch eventfd alone, then act on (fd, band)',
  io_uring: 'the coroutine fetcher on an EventLoop with backend io_uring: connect/send/recv completed by the kernel',
};

function inFlight(model: IoModel, count: number, concurrency: number): number {
  return model === 'blocking' || model === 'non-blocking' ? 1 : Math.min(count, concurrency);
}

async function measureModel(
  model: IoModel,
  urls: readonly string[],
  concurrency: number,
  fetchOptions: { ca?: string; rejectUnauthorized?: boolean },
  page: Waterfall[] | null,
): Promise<ModelRow> {
  const row: ModelRow = {
    model,
    family: modelFamily(model),
    inFlight: inFlight(model, urls.length, concurrency),
    unavailable: null,
    wallMs: null,
    cpuMs: null,
    pages: 0,
    failed: 0,
    syscalls: null,
    syscallsPerPage: null,
    voluntarySwitches: null,
    involuntarySwitches: null,
  };
  if (model === 'io_uring' && !IoUring.available()) {
    row.unavailable = 'io_uring unavailable on this kernel';
    return row;
  }
  const wave = row.inFlight;
  const trace = page === null ? null : new LoopTrace({ capacity: pageTraceCapacity(urls.length) });
  const lanes = trace === null ? null : { loopLane: trace.addLane(model), pagesLane: trace.addLane('pages') };
  const traced = trace === null || lanes === null ? {} : { trace: { trace, lane: lanes.loopLane } };
  const usage0 = process.resourceUsage();
  const cpu0 = process.cpuUsage();
  const calls0 = syscallCount();
  const t0 = performance.now();
  const results: (FetchResult | FetchError)[] = [];
  for (let start = 0; start < urls.length; start += wave) {
    const waveStart = performance.now();
    const got = await fetchWithModel(model, urls.slice(start, start + wave), {
      timeoutMs: 30_000,
      ...fetchOptions,
      ...traced,
    });
    // A failure has no timings of its own: its bar spans its wave.
    if (trace !== null && lanes !== null) {
      const waveEnd = performance.now();
      got.forEach((r, k) => {
        tracePage(trace, lanes.pagesLane, urls[start + k] as string, r, waveStart, waveEnd);
      });
    }
    results.push(...got);
  }
  row.wallMs = performance.now() - t0;
  row.syscalls = syscallCount() - calls0;
  const cpu = process.cpuUsage(cpu0);
  const usage = process.resourceUsage();
  row.cpuMs = (cpu.user + cpu.system) / 1000;
  row.voluntarySwitches = usage.voluntaryContextSwitches - usage0.voluntaryContextSwitches;
  row.involuntarySwitches = usage.involuntaryContextSwitches - usage0.involuntaryContextSwitches;
  row.syscallsPerPage = row.syscalls / urls.length;
  if (page !== null && trace !== null && lanes !== null) {
    page.push(
      waterfallFromTrace(trace, lanes.loopLane, lanes.pagesLane, {
        title: row.family === model ? model : `${model} (${row.family})`,
        style: model,
        backend: row.family,
        wallMs: row.wallMs,
        cpuMs: row.cpuMs,
        // Blocking sleeps inside each call, nothing to trace; non-blocking spins.
        kind: model === 'non-blocking' ? 'spin' : 'loop',
        t0,
      }),
    );
    if (model === 'blocking') (page.at(-1) as Waterfall).loop = null;
  }
  for (const r of results) {
    if ('status' in r && r.status === 200) row.pages++;
    else row.failed++;
  }
  return row;
}

/** The rows as a text table, one line per model. */
export function modelsTable(rows: readonly ModelRow[]): string {
  const header = [
    'model',
    'I/O model',
    'in flight',
    'wall ms',
    'cpu ms',
    'syscalls/page',
    'vol cs',
    'invol cs',
    'pages',
    'failed',
  ];
  const fixed = (v: number | null, digits: number): string => (v === null ? '-' : v.toFixed(digits));
  const cells = rows.map((r) =>
    r.unavailable !== null
      ? [r.model, r.family, String(r.inFlight), `n/a (${r.unavailable})`, '', '', '', '', '', '']
      : [
          r.model,
          r.family,
          String(r.inFlight),
          fixed(r.wallMs, 1),
          fixed(r.cpuMs, 1),
          fixed(r.syscallsPerPage, 1),
          String(r.voluntarySwitches),
          String(r.involuntarySwitches),
          String(r.pages),
          String(r.failed),
        ],
  );
  // An "n/a" cell spans the numeric columns: it does not widen the wall column.
  const widths = header.map((h, i) =>
    Math.max(
      h.length,
      ...cells.filter((_c, k) => i !== 3 || rows[k]?.unavailable === null).map((c) => (c[i] ?? '').length),
    ),
  );
  const line = (c: readonly string[]): string =>
    c
      .map((v, i) => (i < 2 || v.startsWith('n/a') ? v.padEnd(widths[i] ?? 0) : v.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

/**
 * Runs `iomux demo --models`: starts the embedded server, fetches the same
 * `count` pages under each model in turn, prints the table (or JSON).
 *
 * @param cli - the compiled main.js that serves (default: the one beside this module)
 * @returns the rows, in {@link IO_MODELS} order
 * @throws when the server cannot start
 */
export async function runModels(options: ModelsOptions, cli?: string): Promise<ModelRow[]> {
  const { count, concurrency, out } = options;
  const latencyMs = options.latencyMs ?? 0;
  const server = await startServerProcess(cli, latencyMs, options.tls);
  try {
    const scheme = options.tls === undefined ? 'http' : 'https';
    const urls = Array.from({ length: count }, (_, i) => `${scheme}://127.0.0.1:${server.port}/goods/${i}/`);
    if (options.json !== true) {
      const held = latencyMs > 0 ? `, each page held ${latencyMs} ms` : '';
      out.write(
        `fetching ${count} pages from ${scheme}://127.0.0.1:${server.port}/goods/<n>/ under each of the notes' five I/O models${held}\n\n`,
      );
    }
    const rows: ModelRow[] = [];
    const fetchOptions = demoFetchOptions(options.tls);
    const waterfalls: Waterfall[] | null = options.html === undefined ? null : [];
    for (const model of IO_MODELS) rows.push(await measureModel(model, urls, concurrency, fetchOptions, waterfalls));
    if (options.html !== undefined && waterfalls !== null) {
      writeDemoPage(options.html, {
        title: `iomux demo --models: ${count} pages under the five I/O models`,
        intro: [
          `Fetched from ${scheme}://127.0.0.1:${server.port}/goods/<n>/ under each of the notes' five I/O models (11.2.2), ` +
            'one waterfall each: blocking and non-blocking one page at a time, the others every page in flight.',
          'Under each waterfall, what the thread did: for select, poll, epoll and io_uring the loop\u2019s waits, ' +
            'for signal-driven its waits in poll(2) on the SignalWatch eventfd; non-blocking spins; blocking sleeps inside each call.',
        ],
        lesson: IO_MODELS.map((m) => `${m}: ${MODEL_NOTES[m]}`),
        waterfalls,
      });
      if (options.json !== true) out.write(`wrote the page of waterfalls to ${options.html}\n\n`);
    }
    if (options.json === true) {
      out.write(`${JSON.stringify({ count, concurrency, latencyMs, rows }, null, 2)}\n`);
      return rows;
    }
    out.write(`${modelsTable(rows)}\n\n`);
    const width = Math.max(...IO_MODELS.map((m) => m.length));
    for (const model of IO_MODELS) out.write(`${model.padEnd(width)}  ${MODEL_NOTES[model]}\n`);
    out.write(
      '\nsyscalls/page: syscalls the iomux addon made on this thread per page (syscallCount()); ' +
        'vol cs / invol cs: the process\u2019s voluntary / involuntary context switches.\n',
    );
    return rows;
  } finally {
    server.stop();
  }
}
