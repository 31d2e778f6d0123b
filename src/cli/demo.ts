/**
 * `iomux demo`: the notes' fetch of the shop's pages, on this machine's
 * kernel. The embedded server (`iomux serve`) starts in a child process;
 * the pages are then fetched in each of the notes' four styles on each
 * backend, and a table compares them. With `tls` the server serves over
 * TLS and every page is fetched over https.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { LoopTrace, type SelectorName } from '../loop/index.js';
import { type FetchStyle, fetchMany } from './fetch-many.js';
import type { DemoPage, Waterfall } from './html/model.js';
import { demoPageHtml } from './html/page.js';
import { waterfallFromTrace } from './trace-pages.js';

/** The demo over TLS: the server's certificate and key files, and what the fetchers trust. */
export interface DemoTls {
  certFile: string;
  keyFile: string;
  /** PEM of the CA that signed `certFile` (else Node's bundled roots). */
  ca?: string;
  /** false: accept any certificate (`--insecure`). */
  rejectUnauthorized?: boolean;
}

/** The fetch options of the demo's TLS settings (none without TLS). */
export function demoFetchOptions(tls: DemoTls | undefined): { ca?: string; rejectUnauthorized?: boolean } {
  if (tls === undefined) return {};
  return {
    ...(tls.ca === undefined ? {} : { ca: tls.ca }),
    ...(tls.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: tls.rejectUnauthorized }),
  };
}

export interface DemoOptions {
  /** Pages to fetch per style and backend (the notes fetch 20). */
  count: number;
  /** Most requests in flight at once. */
  concurrency: number;
  /** How long the server holds each page, in ms (the notes' network round trip; 0: none). */
  latencyMs?: number;
  /** Print the rows as JSON instead of the table. */
  json?: boolean;
  /** Serve and fetch over TLS. */
  tls?: DemoTls;
  /**
   * Also write the page of waterfalls here (`--html FILE`): each row's
   * fetches traced -- every page's phases and the loop's waits -- and drawn.
   */
  html?: string;
  /** Where the table goes. */
  out: NodeJS.WritableStream;
}

/** One line of the demo's table. */
export interface Row {
  style: string;
  backend: string;
  wallMs: number;
  cpuMs: number;
  pages: number;
  failed: number;
  bytes: number;
}

/**
 * Starts `iomux serve` in a child process; resolves with its port and a stop function.
 *
 * @param cli - the compiled main.js (default: the one beside this module)
 * @param tls - serve over TLS with this certificate and key (`iomux serve --tls CERT KEY`)
 */
export async function startServerProcess(
  cli = fileURLToPath(new URL('./main.js', import.meta.url)),
  latencyMs = 0,
  tls?: { certFile: string; keyFile: string },
): Promise<{ port: number; stop: () => void }> {
  const args = [cli, 'serve', '--port', '0', '--latency', String(latencyMs)];
  if (tls !== undefined) args.push('--tls', tls.certFile, tls.keyFile);
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const [line] = (await Promise.race([
    once(lines, 'line'),
    once(child, 'exit').then(() => {
      throw new Error('the iomux server exited before listening');
    }),
  ])) as [string];
  const m = /:(\d+)$/.exec(line);
  if (m === null) throw new Error(`unexpected line from the server: ${line}`);
  return { port: Number(m[1]), stop: () => child.kill() };
}

/**
 * Events a row's trace keeps for the demo page: about 20 per page are
 * recorded (its spans, socket operations, Task steps, waits); 64 leave
 * room, within [65,536, 4,194,304] (48 bytes an event).
 */
export function pageTraceCapacity(pages: number): number {
  return Math.min(1 << 22, Math.max(1 << 16, pages * 64));
}

async function measure(
  style: FetchStyle,
  backend: SelectorName,
  urls: string[],
  concurrency: number,
  tls: DemoTls | undefined,
  page: Waterfall[] | null,
): Promise<Row> {
  const title = style === 'busy' ? 'busy-polling (no loop)' : `${style} on ${backend}`;
  const trace = page === null ? null : new LoopTrace({ capacity: pageTraceCapacity(urls.length) });
  const lanes = trace === null ? null : { loopLane: trace.addLane(title), pagesLane: trace.addLane('pages') };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const results = await fetchMany(urls, {
    style,
    backend,
    concurrency,
    timeoutMs: 30_000,
    ...demoFetchOptions(tls),
    ...(trace === null || lanes === null ? {} : { trace: { trace, ...lanes } }),
  });
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  if (page !== null && trace !== null && lanes !== null) {
    page.push(
      waterfallFromTrace(trace, lanes.loopLane, lanes.pagesLane, {
        title,
        style,
        backend: style === 'busy' ? '-' : backend,
        wallMs,
        cpuMs: (cpu.user + cpu.system) / 1000,
        kind: style === 'busy' ? 'spin' : 'loop',
        t0,
      }),
    );
  }
  let pages = 0;
  let failed = 0;
  let bytes = 0;
  for (const r of results) {
    if ('status' in r && r.status === 200) {
      pages++;
      bytes += r.body.length;
    } else {
      failed++;
    }
  }
  return {
    style,
    backend: style === 'busy' ? '-' : backend,
    wallMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    pages,
    failed,
    bytes,
  };
}

function table(rows: Row[]): string {
  const header = ['style', 'backend', 'wall ms', 'cpu ms', 'pages', 'failed', 'body bytes'];
  const cells = rows.map((r) => [
    r.style,
    r.backend,
    r.wallMs.toFixed(1),
    r.cpuMs.toFixed(1),
    String(r.pages),
    String(r.failed),
    String(r.bytes),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (c: string[]): string =>
    c.map((v, i) => (i < 2 ? v.padEnd(widths[i] ?? 0) : v.padStart(widths[i] ?? 0))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

/**
 * The notes' lesson in this run's numbers: busy-polling waits for each page
 * in turn and burns the CPU while it waits; select, poll and epoll wait for
 * all of them at once and sleep.
 */
export function lesson(rows: readonly Row[], count: number, concurrency: number, latencyMs: number): string {
  const busy = rows.find((r) => r.style === 'busy');
  const multiplexed = rows.filter((r) => r.style !== 'busy');
  if (busy === undefined || multiplexed.length === 0) return '';
  const slowest = Math.max(...multiplexed.map((r) => r.wallMs));
  const mostCpu = Math.max(...multiplexed.map((r) => r.cpuMs));
  const seconds = (ms: number): string => (ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(0)} ms`);
  const waits = Math.ceil(count / concurrency);
  const waited =
    latencyMs > 0
      ? `busy waited ${count} x ${latencyMs} ms one after another (${seconds(busy.wallMs)})`
      : `busy fetched ${count} pages one after another (${seconds(busy.wallMs)})`;
  const once = waits === 1 ? 'waited once' : `waited ${waits} times (${concurrency} pages at a time)`;
  return (
    `${waited} and burned ${seconds(busy.cpuMs)} of CPU; ` +
    `select, poll and epoll ${once}: ${seconds(slowest)} at most, with at most ${seconds(mostCpu)} of CPU.`
  );
}

/** Writes the page of waterfalls (`--html FILE`). */
export function writeDemoPage(file: string, page: DemoPage): void {
  writeFileSync(file, demoPageHtml(page));
}

/** Runs the demo; resolves when the table is printed. */
export async function runDemo(options: DemoOptions, cli?: string): Promise<Row[]> {
  const { count, concurrency, out } = options;
  const latencyMs = options.latencyMs ?? 0;
  const server = await startServerProcess(cli, latencyMs, options.tls);
  try {
    const scheme = options.tls === undefined ? 'http' : 'https';
    const urls = Array.from({ length: count }, (_, i) => `${scheme}://127.0.0.1:${server.port}/goods/${i}/`);
    const held = latencyMs > 0 ? `, each page held ${latencyMs} ms as a real shop's round trip` : '';
    if (options.json !== true) {
      out.write(
        `fetching ${count} pages from the iomux shop at ${scheme}://127.0.0.1:${server.port}/goods/<n>/ (${concurrency} at a time${held})\n\n`,
      );
    }
    const waterfalls: Waterfall[] | null = options.html === undefined ? null : [];
    const rows: Row[] = [await measure('busy', 'epoll', urls, 1, options.tls, waterfalls)];
    for (const style of ['callback', 'coroutine', 'async'] as FetchStyle[]) {
      for (const backend of ['select', 'poll', 'epoll'] as SelectorName[]) {
        rows.push(await measure(style, backend, urls, concurrency, options.tls, waterfalls));
      }
    }
    if (options.html !== undefined && waterfalls !== null) {
      writeDemoPage(options.html, {
        title: `iomux demo: ${count} pages, ${concurrency} at a time${held}`,
        intro: [
          `Fetched from the iomux shop at ${scheme}://127.0.0.1:${server.port}/goods/<n>/ in each of the notes' four styles, on each backend. ` +
            'One bar per page, from the moment its fetch began: connect, tls (https), send, wait (for the first byte), receive. ' +
            'Under each waterfall, what the thread did: asleep in the selector, or running callbacks.',
          `Recorded with a LoopTrace (the rows' figures include its cost). ${process.version}, ${new Date().toISOString()}.`,
        ],
        lesson: [
          lesson(rows, count, concurrency, latencyMs),
          'busy-polling draws a staircase: one page after another, the thread spinning all the while. ' +
            'The callback Fetcher and the coroutine and async fetchers draw the same overlapping bars over a loop that mostly sleeps.',
        ],
        waterfalls,
      });
      if (options.json !== true) out.write(`wrote the page of waterfalls to ${options.html}\n\n`);
    }
    if (options.json === true) {
      out.write(`${JSON.stringify({ count, concurrency, latencyMs, rows }, null, 2)}\n`);
      return rows;
    }
    out.write(`${table(rows)}\n\n`);
    out.write(
      'busy: one page at a time, spinning on BlockingIOError while it waits (cpu ms ~ wall ms).\n' +
        'callback: the notes\u2019 Fetcher -- select + callbacks + an event loop, every page in flight at once.\n' +
        'coroutine: the same on the iomux loop, written straight down with generators (yield*).\n' +
        'async: the same with async/await, the loop running inside Node (cooperative mode).\n',
    );
    out.write(`\n${lesson(rows, count, concurrency, latencyMs)}\n`);
    out.write(
      "\nRun 'iomux demo --models' for the notes' five I/O models side by side (blocking, non-blocking, select/poll/epoll, signal-driven, io_uring).\n",
    );
    return rows;
  } finally {
    server.stop();
  }
}
