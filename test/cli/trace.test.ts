/**
 * The CLI's traces: `iomux fetch --trace`, `iomux serve --trace` (Chrome
 * trace JSON, as Perfetto opens it) and the model `iomux demo --html`
 * embeds (read back from the page), run as a user runs them: the compiled
 * command in child processes, against `iomux serve` with a latency.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startServerProcess } from '../../src/cli/demo.js';
import { type DemoPage, PHASES } from '../../src/cli/html/model.js';
import { tracePage, waterfallFromTrace } from '../../src/cli/trace-pages.js';
import type { FetchResult } from '../../src/fetch/index.js';
import { type ChromeTrace, type ChromeTraceEvent, LoopTrace } from '../../src/loop/index.js';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
let dir = '';
let server: { port: number; stop: () => void };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'iomux-trace-'));
  server = await startServerProcess(CLI, 20);
}, 30_000);

afterAll(() => {
  server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function iomux(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function readTrace(file: string): ChromeTrace {
  return JSON.parse(readFileSync(file, 'utf8')) as ChromeTrace;
}

function lanes(trace: ChromeTrace): Map<string, number> {
  return new Map(
    trace.traceEvents.filter((e) => e.ph === 'M').map((e) => [String(e.args?.['name']), e.tid] as [string, number]),
  );
}

/** Each page span with the phase spans nested in it (same id), as Perfetto nests them. */
function pages(trace: ChromeTrace): Map<string, { name: string; cat: string; phases: ChromeTraceEvent[] }> {
  const byId = new Map<string, { name: string; cat: string; phases: ChromeTraceEvent[] }>();
  for (const e of trace.traceEvents) {
    if (e.ph !== 'b' || e.cat === undefined || !e.cat.startsWith('fetch') || e.id === undefined) continue;
    const page = byId.get(e.id);
    if (page === undefined) byId.set(e.id, { name: e.name, cat: e.cat, phases: [] });
    else page.phases.push(e);
  }
  return byId;
}

describe('iomux fetch --trace FILE', () => {
  it.each(['busy', 'callback', 'coroutine', 'async'])(
    '%s: the loop on its lane, each page with its phases in order, a failure by its code',
    (style) => {
      const file = join(dir, `fetch-${style}.json`);
      const urls = [1, 2, 3].map((i) => `http://127.0.0.1:${server.port}/goods/${i}/`);
      const r = iomux('fetch', '--style', style, '--trace', file, ...urls, 'http://127.0.0.1:1/refused');
      expect(r.status).toBe(1); // the refused URL
      expect(r.stderr).toContain(`trace of `);
      expect(r.stderr).toContain(`written to ${file}`);
      const trace = readTrace(file);
      expect(trace.displayTimeUnit).toBe('ms');
      const named = lanes(trace);
      const loopLane = named.get(style === 'busy' ? 'busy-poll (no loop)' : `${style} on epoll`);
      expect(loopLane).toBeDefined();
      const waits = trace.traceEvents.filter((e) => e.name === 'wait' && e.tid === loopLane);
      // Busy-polling has no loop to wait in; the others wait in the selector.
      if (style === 'busy') expect(waits).toHaveLength(0);
      else expect(waits.length).toBeGreaterThan(0);
      // The EventLoop styles record socket operations too: a connect, a send and a receive per page,
      // and the refused connect.
      const sockets = trace.traceEvents.filter((e) => e.cat === 'socket' && e.ph === 'b');
      if (style === 'coroutine' || style === 'async') expect(sockets.length).toBeGreaterThanOrEqual(3 * 3 + 1);
      const got = [...pages(trace).values()];
      expect(got.map((p) => p.name).sort()).toEqual([...urls, 'http://127.0.0.1:1/refused'].sort());
      for (const page of got) {
        if (page.name.endsWith('/refused')) {
          expect(page.cat).toBe('fetch error: ECONNREFUSED');
          continue;
        }
        const names = page.phases.map((p) => p.name);
        expect(names).toEqual(['connect', 'send', 'wait', 'receive']);
        const ts = page.phases.map((p) => p.ts as number);
        expect([...ts].sort((a, b) => a - b)).toEqual(ts);
        // The server held the page 20 ms: the wait phase shows it.
        const wait = page.phases[2] as ChromeTraceEvent;
        const waitEnd = trace.traceEvents.find((e) => e.ph === 'e' && e.id === wait.id && e.name === 'wait');
        expect((waitEnd?.ts as number) - (wait.ts as number)).toBeGreaterThanOrEqual(15_000);
      }
    },
  );

  it('refuses a file it cannot write before fetching anything', () => {
    const file = join(dir, 'no', 'such', 'dir', 'trace.json');
    const r = iomux('fetch', '--trace', file, 'http://127.0.0.1:1/refused');
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(`iomux: --trace: cannot write ${file} (ENOENT)\n`);
    expect(existsSync(file)).toBe(false);
  });
});

describe('iomux serve --trace FILE', () => {
  let child: ChildProcess | null = null;

  afterAll(() => child?.kill('SIGKILL'));

  async function get(port: number, path: string): Promise<number> {
    const req = request({ host: '127.0.0.1', port, path, agent: false });
    req.end();
    const [res] = (await once(req, 'response')) as [import('node:http').IncomingMessage];
    res.resume();
    await once(res, 'end');
    return res.statusCode ?? 0;
  }

  it.each(['SIGTERM', 'SIGINT'] as const)('writes the trace and the loop stats when stopped by %s', async (signal) => {
    const file = join(dir, `serve-${signal}.json`);
    child = spawn(process.execPath, [CLI, 'serve', '--trace', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    let port = 0;
    for await (const line of createInterface({ input: child.stdout as NodeJS.ReadableStream })) {
      port = Number(/:(\d+)$/.exec(line)?.[1]);
      break;
    }
    for (let i = 0; i < 3; i++) expect(await get(port, `/goods/${i}/`)).toBe(200);
    const exited = once(child, 'exit');
    child.kill(signal);
    const [code] = (await exited) as [number | null];
    expect(code).toBe(0);
    expect(stderr).toContain(`written to ${file}`);
    const stats = JSON.parse(/loop\.stats\(\) (\{.*\})/.exec(stderr)?.[1] ?? 'null') as { iterations: number } | null;
    expect(stats?.iterations).toBeGreaterThan(0);
    const trace = readTrace(file);
    const lane = lanes(trace).get('iomux serve');
    expect(lane).toBeDefined();
    // The server is a Protocol on the loop's transports: each request is a span on its lane.
    const requests = trace.traceEvents.filter((e) => e.cat === 'request' && e.ph === 'b' && e.tid === lane);
    expect(requests.map((e) => e.name)).toEqual(['GET /goods/0/', 'GET /goods/1/', 'GET /goods/2/']);
    expect(trace.traceEvents.some((e) => e.name === 'wait' && e.tid === lane)).toBe(true);
    expect(trace.traceEvents.some((e) => e.cat === 'callback' && e.tid === lane)).toBe(true);
    child = null;
  });

  it('refuses a file it cannot write, and does not start', () => {
    const file = join(dir, 'missing', 'serve.json');
    const r = iomux('serve', '--trace', file);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(`iomux: --trace: cannot write ${file} (ENOENT)\n`);
    expect(r.stdout).toBe('');
  });
});

/** The model a page embeds. */
function embedded(file: string): DemoPage {
  const html = readFileSync(file, 'utf8');
  const json = /<script type="application\/json" id="iomux-data">([\s\S]*?)<\/script>/.exec(html)?.[1];
  expect(json).toBeDefined();
  return JSON.parse(json as string) as DemoPage;
}

function expectPhasesInOrder(page: DemoPage['waterfalls'][number]['pages'][number]): void {
  expect(page.error).toBeNull();
  const names = page.phases.map((p) => p.phase);
  expect(names).toEqual(PHASES.filter((p) => names.includes(p)));
  expect(names).toEqual(['connect', 'send', 'wait', 'receive']);
  for (const ph of page.phases) {
    expect(ph.start).toBeGreaterThanOrEqual(page.start - 0.001);
    expect(ph.end).toBeLessThanOrEqual(page.end + 0.001);
    expect(ph.end).toBeGreaterThanOrEqual(ph.start);
  }
}

describe('iomux demo --html FILE', () => {
  it('writes one waterfall per style and backend: a bar per page, the loop under it', () => {
    const file = join(dir, 'demo.html');
    const r = iomux('demo', '--count', '6', '--latency', '20', '--html', file);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`wrote the page of waterfalls to ${file}`);
    expect(readFileSync(file, 'utf8').startsWith('<!doctype html>')).toBe(true);
    const page = embedded(file);
    expect(page.waterfalls.map((w) => w.title)).toEqual([
      'busy-polling (no loop)',
      ...['callback', 'coroutine', 'async'].flatMap((s) => ['select', 'poll', 'epoll'].map((b) => `${s} on ${b}`)),
    ]);
    for (const w of page.waterfalls) {
      expect(w.pages).toHaveLength(6);
      for (const p of w.pages) expectPhasesInOrder(p);
      if (w.style === 'busy') {
        expect(w.loop).toEqual({ kind: 'spin', waits: [], dropped: 0 });
        // One page after another: the staircase.
        for (let i = 1; i < w.pages.length; i++) {
          expect(w.pages[i]?.start).toBeGreaterThanOrEqual(w.pages[i - 1]?.end ?? 0);
        }
      } else {
        expect(w.loop?.kind).toBe('loop');
        // The loop slept in its selector (or in Node's loop) while the server held the pages (20 ms);
        // some of that time may go to a loaded machine's scheduler or the first run's compiling.
        const asleep = (w.loop?.waits ?? []).reduce((sum, [, blocked]) => sum + blocked, 0);
        expect(asleep).toBeGreaterThanOrEqual(5);
        // Every page in flight at once: each began before any ended.
        const firstEnd = Math.min(...w.pages.map((p) => p.end));
        for (const p of w.pages) expect(p.start).toBeLessThan(firstEnd);
      }
    }
  });

  it('with --models: one waterfall per I/O model', () => {
    const file = join(dir, 'models.html');
    const r = iomux('demo', '--models', '--count', '4', '--latency', '10', '--html', file);
    expect(r.status).toBe(0);
    const page = embedded(file);
    const byStyle = new Map(page.waterfalls.map((w) => [w.style, w]));
    expect([...byStyle.keys()]).toEqual(
      ['blocking', 'non-blocking', 'select', 'poll', 'epoll', 'signal-driven', 'io_uring'].filter(
        (m) => m !== 'io_uring' || page.waterfalls.length === 7,
      ),
    );
    expect(byStyle.get('blocking')?.loop).toBeNull();
    expect(byStyle.get('non-blocking')?.loop?.kind).toBe('spin');
    for (const model of ['select', 'poll', 'epoll', 'signal-driven']) {
      expect(byStyle.get(model)?.loop?.waits.length).toBeGreaterThan(0);
    }
    for (const w of page.waterfalls) {
      expect(w.pages).toHaveLength(4);
      for (const p of w.pages) expectPhasesInOrder(p);
    }
  });

  it('refuses a file it cannot write before starting the server', () => {
    const file = join(dir, 'nope', 'demo.html');
    const r = iomux('demo', '--count', '1', '--html', file);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(`iomux: --html: cannot write ${file} (ENOENT)\n`);
    expect(r.stdout).toBe('');
  });
});

describe('a waterfall read back from a trace (trace-pages)', () => {
  const INFO = { title: 't', style: 's', backend: 'epoll', wallMs: 1, cpuMs: 1, kind: 'loop' as const, t0: 0 };
  function result(url: string, t0: number): FetchResult {
    return {
      url,
      status: 200,
      headers: {},
      body: Buffer.alloc(0),
      timings: { start: t0, connected: t0 + 1, secured: null, sent: t0 + 2, firstByte: t0 + 3, end: t0 + 4 },
    };
  }

  it('drops the surviving phases of a page the ring overwrote, rather than making them pages', () => {
    const trace = new LoopTrace({ capacity: 16 });
    for (let i = 0; i < 4; i++) tracePage(trace, 0, `http://h/p${i}/`, result(`http://h/p${i}/`, i * 10), 0, 0);
    expect(trace.dropped).toBeGreaterThan(0);
    const pages = waterfallFromTrace(trace, 1, 0, INFO).pages;
    expect(pages.length).toBeGreaterThan(0);
    for (const p of pages) {
      expect(p.url.startsWith('http://h/p')).toBe(true);
      expect(p.phases.map((ph) => ph.phase)).toEqual(['connect', 'send', 'wait', 'receive']);
    }
  });

  it('keeps every URL of a 5,000-page run (a trace keeps as many names as its capacity)', () => {
    const trace = new LoopTrace({ capacity: 65_536 });
    for (let i = 0; i < 5000; i++) tracePage(trace, 0, `http://h/goods/${i}/`, result(`http://h/goods/${i}/`, i), 0, 0);
    const pages = waterfallFromTrace(trace, 1, 0, INFO).pages;
    expect(pages).toHaveLength(5000);
    expect(pages.filter((p) => p.url === '<other>')).toHaveLength(0);
  });
});
