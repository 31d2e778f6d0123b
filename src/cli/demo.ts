/**
 * `iomux demo`: the notes' fetch of 20 shop pages, run on this machine's
 * kernel. A local shop server starts in a child process; the pages are then
 * fetched one at a time by busy-polling, and all at once through select,
 * poll and epoll with callbacks, and a table compares them.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { fetchAllMultiplexed, fetchBusyPollRaw, type RawBackend, type RawPage } from './raw-fetch.js';

export interface DemoOptions {
  /** Pages to fetch per style (the notes fetch 20). */
  count: number;
  /** Where the table goes. */
  out: NodeJS.WritableStream;
}

interface Row {
  style: string;
  backend: string;
  wallMs: number;
  cpuMs: number;
  pages: number;
  bytes: number;
}

/**
 * Starts the shop server in a child process; resolves with its port and a
 * stop function.
 *
 * @param script - the compiled shop-server.js (default: the one beside this module)
 */
export async function startShop(
  script = fileURLToPath(new URL('./shop-server.js', import.meta.url)),
): Promise<{ port: number; stop: () => void }> {
  const child = spawn(process.execPath, [script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const [line] = (await Promise.race([
    once(lines, 'line'),
    once(child, 'exit').then(() => {
      throw new Error('the shop server exited before listening');
    }),
  ])) as [string];
  const port = Number.parseInt(line.replace('listening ', ''), 10);
  return {
    port,
    stop: () => {
      child.stdin.end();
      child.kill();
    },
  };
}

function measure(style: string, backend: string, run: () => RawPage[]): Row {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const pages = run();
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  for (const page of pages) {
    if (page.status !== 200) throw new Error(`${page.path}: HTTP ${page.status}`);
  }
  return {
    style,
    backend,
    wallMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    pages: pages.length,
    bytes: pages.reduce((sum, p) => sum + p.bytes, 0),
  };
}

function table(rows: Row[]): string {
  const header = ['style', 'backend', 'wall ms', 'cpu ms', 'pages', 'body bytes'];
  const cells = rows.map((r) => [
    r.style,
    r.backend,
    r.wallMs.toFixed(1),
    r.cpuMs.toFixed(1),
    String(r.pages),
    String(r.bytes),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (c: string[]): string =>
    c.map((v, i) => (i < 2 ? v.padEnd(widths[i] ?? 0) : v.padStart(widths[i] ?? 0))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

/** Runs the demo; resolves when the table is printed. */
export async function runDemo(options: DemoOptions): Promise<void> {
  const { count, out } = options;
  const shop = await startShop();
  try {
    const paths = Array.from({ length: count }, (_, i) => `/goods/${i}/`);
    out.write(`fetching ${count} pages from the shop at http://127.0.0.1:${shop.port}/goods/<n>/\n\n`);
    const rows: Row[] = [];
    rows.push(measure('busy-poll', 'none', () => paths.map((p) => fetchBusyPollRaw(shop.port, p))));
    for (const backend of ['select', 'poll', 'epoll'] as RawBackend[]) {
      rows.push(measure('callbacks', backend, () => fetchAllMultiplexed(backend, shop.port, paths)));
    }
    out.write(`${table(rows)}\n\n`);
    out.write(
      'busy-poll fetches one page at a time and spins on BlockingIOError while it waits (cpu ms ~ wall ms);\n' +
        'select, poll and epoll keep every connection in flight in one thread and sleep in the kernel until\n' +
        'a socket is ready, then run its callback: the "select + callback + event loop" of the notes.\n',
    );
  } finally {
    shop.stop();
  }
}
