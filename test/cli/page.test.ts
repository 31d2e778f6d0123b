import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { syscallChartSvg } from '../../src/cli/bench/chart.js';
import { type Cell, formatSyscallTable } from '../../src/cli/bench/syscalls.js';
import { type DemoPage, type PageBar, PHASES, type Phase, type Waterfall } from '../../src/cli/html/model.js';
import { demoPageHtml, type PageLayout } from '../../src/cli/html/page.js';
import { PAGE_COLOURS, type RowLayout } from '../../src/cli/html/page-script.js';
import { sysPageHtml } from '../../src/cli/html/sys-page.js';

// The HTML pages of the CLI, rendered in a real headless Chromium: no
// console error, and the pixels where a reader looks are what the model says.

const SEED = Number(process.env['IOMUX_PAGE_SEED'] ?? 0x10c0ffee);
const ARTIFACTS = new URL('../.artifacts/', import.meta.url);

/** The Chromium the tests drive: $IOMUX_CHROMIUM, else Debian's. Never skipped: a missing browser fails. */
function chromiumPath(): string {
  const env = process.env['IOMUX_CHROMIUM'];
  const candidates = env === undefined ? ['/usr/bin/chromium', '/usr/bin/chromium-browser'] : [env];
  const found = candidates.find((p) => existsSync(p));
  if (found === undefined) {
    throw new Error(
      `no Chromium for the page tests at ${candidates.join(' or ')}: run \`bash bench/setup\` (it installs Debian's chromium), or set IOMUX_CHROMIUM to a Chromium binary`,
    );
  }
  return found;
}

/** mulberry32: a small seeded PRNG, so every run draws the same models. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HOSTILE = '?q=</script><b>bold</b>&x="\'';

/** A page's phases from `start`, each several ms long, so at 20 pages each is some px wide. */
function bar(rand: () => number, url: string, start: number, error: string | null): PageBar {
  const ms: Record<Phase, [number, number]> = {
    connect: [4, 8],
    tls: [5, 10],
    send: [3, 5],
    wait: [10, 25],
    receive: [6, 12],
  };
  const phases: PageBar['phases'] = [];
  let t = start;
  // A failed fetch stops where it failed: after its connect here.
  for (const phase of error === null ? PHASES : (['connect'] as const)) {
    const [lo, hi] = ms[phase];
    const d = lo + rand() * (hi - lo);
    phases.push({ phase, start: t, end: t + d });
    t += d;
  }
  return { url, start, end: t, phases, error };
}

function busyWaterfall(rand: () => number, n: number, failed: number | null): Waterfall {
  const pages: PageBar[] = [];
  let t = 0.5;
  for (let i = 0; i < n; i++) {
    const p = bar(
      rand,
      `http://127.0.0.1:8080/busy/${i}${i % 3 === 0 ? HOSTILE : ''}`,
      t,
      i === failed ? 'ECONNREFUSED' : null,
    );
    pages.push(p);
    t = p.end + 0.3;
  }
  return {
    title: 'busy-polling <b>no loop</b>',
    style: 'busy',
    backend: 'none',
    wallMs: t,
    cpuMs: t * 0.98,
    pages,
    loop: { kind: 'spin', waits: [], dropped: 0 },
  };
}

function coroutineWaterfall(rand: () => number, n: number, failed: number | null): Waterfall {
  const pages: PageBar[] = [];
  for (let i = 0; i < n; i++) {
    const url = `http://127.0.0.1:8080/coro/${i}${i % 4 === 1 ? HOSTILE : ''}`;
    pages.push(bar(rand, url, rand() * 2, i === failed ? 'ERR_TIMEOUT' : null));
  }
  const end = Math.max(...pages.map((p) => p.end));
  // Waits of a few ms with a ms or two of callbacks between them.
  const waits: [number, number, number][] = [];
  for (let t = 0.4; t < end; ) {
    const blocked = 3 + rand() * 2;
    waits.push([t, blocked, 1 + Math.floor(rand() * 4)]);
    t += blocked + 2 + rand();
  }
  return {
    title: 'coroutine on epoll',
    style: 'coroutine',
    backend: 'epoll',
    wallMs: end,
    cpuMs: end * 0.2,
    pages,
    loop: { kind: 'loop', waits, dropped: 0 },
  };
}

function model(waterfalls: Waterfall[]): DemoPage {
  return {
    title: 'iomux demo: the same pages </title><b>three ways</b>',
    intro: ['Fetched from a local server.'],
    lesson: ['One thread, many sockets: the loop sleeps until one is ready.'],
    waterfalls,
  };
}

/** The browser's globals as the page.evaluate callbacks use them (the project compiles without DOM types). */
interface InBrowser {
  document: {
    readyState: string;
    body: { dataset: Record<string, string | undefined>; scrollHeight: number } | null;
    getElementById(id: string): {
      getBoundingClientRect(): { top: number };
      scrollIntoView(): void;
      getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } };
    };
  };
  innerHeight: number;
  scrollY: number;
  performance: { now(): number };
  MutationObserver: new (
    callback: () => void,
  ) => { observe(target: unknown, options: { attributes: boolean; subtree: boolean }): void };
  /** When each flag of the body appeared, ms from the navigation's start (set by open). */
  __marks: Record<string, number | undefined>;
  scrollBy(x: number, y: number): void;
  getComputedStyle(element: unknown): { textAlign: string };
  __iomuxLayout: PageLayout;
  /** The page's idle callbacks held back by open(..., holdIdle): runs them and stops holding. */
  __releaseIdle: () => void;
  requestIdleCallback?: ((callback: () => void, options: { timeout: number }) => number) | undefined;
}

let browser: Browser;
let dir: string;

beforeAll(async () => {
  // The browser is not under test: under the sanitizers (.ci/sanitize) it
  // must not inherit their preloaded runtime.
  const { LD_PRELOAD: _preload, ASAN_OPTIONS: _asan, UBSAN_OPTIONS: _ubsan, ...env } = process.env;
  browser = await chromium.launch({
    executablePath: chromiumPath(),
    args: ['--no-sandbox'],
    timeout: 60_000,
    env: env as Record<string, string>,
  });
  dir = mkdtempSync(join(tmpdir(), 'iomux-page-'));
}, 60_000);

afterAll(async () => {
  await browser?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

interface Opened {
  page: Page;
  errors: string[];
  /** ms from page.goto to the flag waited for: renderedMs, or allDrawnMs with `all`. */
  loadMs: number;
}

/**
 * Opens `html` from a file, collecting console errors and uncaught
 * exceptions, and waits until every waterfall is drawn -- or with `all`
 * false only those near the viewport at load (the page draws the others
 * after them).
 */
/**
 * Opens `html` in a fresh context and waits for its first screen (or, with
 * `all`, every waterfall). With `holdIdle`, the browser is never idle for the
 * page until the test calls `__releaseIdle()`: what the page draws only when
 * idle stays undrawn however slow the machine is.
 */
async function open(html: string, name: string, deviceScaleFactor = 1, all = true, holdIdle = false): Promise<Opened> {
  const file = join(dir, `${name}.html`);
  writeFileSync(file, html);
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  // No network: a request for anything but the file itself is a bug.
  await context.route(/^(?!file:)/, (route) => {
    errors.push(`network request: ${route.request().url()}`);
    return route.abort();
  });
  // When each flag appears, in ms from the navigation's start: read by the
  // page's own clock, as the test's polling may wait for the drawing that
  // follows the flag.
  await page.addInitScript((hold) => {
    const win = globalThis as unknown as InBrowser;
    const marks: Record<string, number> = {};
    win.__marks = marks;
    new win.MutationObserver(() => {
      for (const flag of ['renderedMs', 'allDrawnMs']) {
        if (marks[flag] === undefined && win.document.body?.dataset[flag] !== undefined) {
          marks[flag] = win.performance.now();
        }
      }
    }).observe(win.document, { attributes: true, subtree: true });
    if (!hold) return;
    const held: (() => void)[] = [];
    const real = win.requestIdleCallback;
    win.requestIdleCallback = (callback) => held.push(callback);
    win.__releaseIdle = () => {
      win.requestIdleCallback = real;
      for (const callback of held.splice(0)) callback();
    };
  }, holdIdle);
  const t0 = performance.now();
  // Not waiting for the load event: the flag may come first.
  await page.goto(pathToFileURL(file).href, { waitUntil: 'commit' });
  const noScript = !html.includes('<script>');
  await page.waitForFunction(
    ({ noScript, flag }) => {
      const { document } = globalThis as unknown as InBrowser;
      // The sys page has no script: loaded is drawn.
      return document.body?.dataset[flag] !== undefined || (noScript && document.readyState === 'complete');
    },
    { noScript, flag: all ? 'allDrawnMs' : 'renderedMs' },
    { polling: 10, timeout: 30_000 },
  );
  return { page, errors, loadMs: performance.now() - t0 };
}

async function layoutOf(page: Page): Promise<PageLayout> {
  return page.evaluate(() => (globalThis as unknown as InBrowser).__iomuxLayout);
}

/** The layout once every waterfall is drawn on `axis` (after the toggle, drawn anew). */
async function completeLayout(page: Page, axis: PageLayout['axis']): Promise<PageLayout> {
  await page.waitForFunction(
    (axis) => {
      const layout = (globalThis as unknown as InBrowser).__iomuxLayout;
      return layout.axis === axis && layout.complete;
    },
    axis,
    { polling: 10 },
  );
  return layoutOf(page);
}

/** Run-length colours (#rrggbb) along device-pixel row `y` of a canvas, from device x0 to x1. */
async function runsAlong(
  page: Page,
  canvasId: string,
  y: number,
  x0: number,
  x1: number,
): Promise<{ colour: string; x: number; len: number }[]> {
  return page.evaluate(
    ({ canvasId, y, x0, x1 }) => {
      const { document } = globalThis as unknown as InBrowser;
      const data = document
        .getElementById(canvasId)
        .getContext('2d')
        .getImageData(x0, y, x1 - x0, 1).data;
      const runs: { colour: string; x: number; len: number }[] = [];
      for (let i = 0; i < x1 - x0; i++) {
        const hex = `#${[data[i * 4], data[i * 4 + 1], data[i * 4 + 2]].map((v) => (v ?? 0).toString(16).padStart(2, '0')).join('')}`;
        const last = runs.at(-1);
        if (last !== undefined && last.colour === hex) last.len++;
        else runs.push({ colour: hex, x: x0 + i, len: 1 });
      }
      return runs;
    },
    { canvasId, y, x0, x1 },
  );
}

const PHASE_BY_COLOUR = new Map<string, Phase>(PHASES.map((p) => [PAGE_COLOURS.phases[p], p]));
const EMPTY = new Set<string>([PAGE_COLOURS.background, PAGE_COLOURS.grid]);

/**
 * Checks one drawn row along its centre line: background (or grid) from the
 * plot's start to x0, coloured from x0 to x1, background again past it to the
 * plot's end; its phase colours in PHASES order, every phase at least 3 px
 * wide present. Returns the colours seen on the bar.
 */
async function checkRow(
  page: Page,
  canvasId: string,
  row: RowLayout,
  plot: { x0: number; x1: number },
  dpr: number,
  what: string,
): Promise<Set<string>> {
  const d = (css: number): number => Math.round(css * dpr);
  const runs = await runsAlong(page, canvasId, Math.floor(row.y * dpr), d(plot.x0), d(plot.x1));
  const before = runs.filter((r) => r.x < d(row.x0));
  const onBar = runs.filter((r) => r.x >= d(row.x0) && r.x < d(row.x1));
  const past = runs.filter((r) => r.x >= d(row.x1));
  expect(onBar[0]?.x, `${what}: bar starts at x0`).toBe(d(row.x0));
  const lastOnBar = onBar.at(-1);
  expect(lastOnBar && lastOnBar.x + lastOnBar.len, `${what}: bar ends at x1`).toBeGreaterThanOrEqual(d(row.x1));
  for (const r of onBar) expect(EMPTY.has(r.colour), `${what}: hole in the bar at ${r.x}`).toBe(false);
  for (const r of [...before, ...past]) {
    expect(EMPTY.has(r.colour), `${what}: ${r.colour} off the bar at ${r.x}`).toBe(true);
  }
  const order = onBar.flatMap((r) => {
    const p = PHASE_BY_COLOUR.get(r.colour);
    return p === undefined ? [] : [PHASES.indexOf(p)];
  });
  for (let i = 1; i < order.length; i++) {
    expect(order[i], `${what}: phase colours out of PHASES order: ${order.join(',')}`).toBeGreaterThan(
      order[i - 1] ?? -1,
    );
  }
  const seen = new Set(onBar.map((r) => r.colour));
  for (const ph of row.phases) {
    if (ph.x1 - ph.x0 >= 3)
      expect(seen.has(PAGE_COLOURS.phases[ph.phase]), `${what}: ${ph.phase} not visible`).toBe(true);
  }
  return seen;
}

/** Scrolls so that CSS point (x, y) of a canvas is mid-viewport and moves the mouse there. */
async function hover(page: Page, canvasId: string, x: number, y: number): Promise<void> {
  await page.evaluate(
    ({ canvasId, y }) => {
      const win = globalThis as unknown as InBrowser;
      const r = win.document.getElementById(canvasId).getBoundingClientRect();
      win.scrollBy(0, r.top + y - win.innerHeight / 2);
    },
    { canvasId, y },
  );
  const box = await page.locator(`#${canvasId}`).boundingBox();
  if (box === null) throw new Error(`${canvasId} not laid out`);
  await page.mouse.move(box.x + x, box.y + y);
}

describe('the demo page (headless Chromium)', () => {
  const rand = prng(SEED);
  const busy = busyWaterfall(rand, 20, 7);
  const coro = coroutineWaterfall(rand, 20, null);
  const demo = model([busy, coro]);

  for (const dpr of [1, 2]) {
    it(`draws each page's bar, its phases in order, and the loop lane (device pixel ratio ${dpr})`, async () => {
      const { page, errors } = await open(demoPageHtml(demo), `demo-${dpr}`, dpr);
      const seed = `seed ${SEED}`;
      expect(errors, seed).toEqual([]);
      // The text is escaped: no <b> from a title or URL became an element.
      expect(await page.locator('b').count(), seed).toBe(0);
      expect(await page.locator('h1').textContent()).toBe(demo.title);
      const figures = page.locator('figure.waterfall');
      expect(await figures.count()).toBe(2);
      expect(await figures.nth(0).locator('figcaption .title').textContent()).toBe(busy.title);
      expect(await figures.nth(1).locator('figcaption .title').textContent()).toBe(coro.title);
      expect(await figures.nth(0).locator('figcaption').textContent()).toContain('20 pages: 19 ok, 1 failed');

      const layout = await layoutOf(page);
      expect(layout.devicePixelRatio).toBe(dpr);
      expect(layout.axis).toBe('shared');
      expect(layout.waterfalls.map((w) => w.rows.length)).toEqual([20, 20]);
      for (const [wi, w] of layout.waterfalls.entries()) {
        const id = w.canvasId as string;
        for (const [ri, row] of w.rows.entries()) {
          const what = `${seed}: waterfall ${wi} row ${ri}`;
          const seen = await checkRow(page, id, row, w.plot, dpr, what);
          const failed = (wi === 0 ? busy : coro).pages[ri]?.error !== null;
          expect(seen.has(PAGE_COLOURS.failed), `${what}: red frame iff failed`).toBe(failed);
        }
      }
      // Busy-polling fetches one page after another: a staircase. The
      // coroutines fetch them all at once: every bar overlaps every other.
      const [busyRows, coroRows] = layout.waterfalls.map((w) => w.rows) as [RowLayout[], RowLayout[]];
      for (let i = 1; i < busyRows.length; i++) {
        expect((busyRows[i]?.x0 ?? 0) >= (busyRows[i - 1]?.x1 ?? 0) - 1, `${seed}: busy row ${i} overlaps`).toBe(true);
      }
      expect(Math.max(...coroRows.map((r) => r.x0)), seed).toBeLessThan(Math.min(...coroRows.map((r) => r.x1)));

      // The lanes: spinning all along for busy-polling; asleep and running for the loop.
      const lanes = layout.waterfalls.map((w) => w.lane);
      const spin = lanes[0];
      const loop = lanes[1];
      if (spin === null || spin === undefined || loop === null || loop === undefined) throw new Error('no lane drawn');
      expect(spin.kind).toBe('spin');
      expect(loop.kind).toBe('loop');
      const d = (css: number): number => Math.round(css * dpr);
      const spinColours = new Set(
        (await runsAlong(page, layout.waterfalls[0]?.canvasId as string, d(spin.y), d(spin.x0), d(spin.x1))).map(
          (r) => r.colour,
        ),
      );
      expect([...spinColours]).toEqual([PAGE_COLOURS.busy]);
      const loopColours = new Set(
        (await runsAlong(page, layout.waterfalls[1]?.canvasId as string, d(loop.y), d(loop.x0), d(loop.x1))).map(
          (r) => r.colour,
        ),
      );
      expect(loopColours.has(PAGE_COLOURS.asleep) && loopColours.has(PAGE_COLOURS.running), seed).toBe(true);

      if (dpr === 1) {
        mkdirSync(ARTIFACTS, { recursive: true });
        const png = new URL('demo-page.png', ARTIFACTS);
        await page.screenshot({ path: png.pathname, fullPage: true });
        expect(statSync(png).size).toBeGreaterThan(1000);
      }
      await page.context().close();
    });
  }

  it('shows a tooltip with the URL as text, the phases and the error of a failed page', async () => {
    const { page, errors } = await open(demoPageHtml(demo), 'demo-tip');
    const layout = await layoutOf(page);
    const busyLayout = layout.waterfalls[0];
    if (busyLayout === undefined) throw new Error('no layout');
    const id = busyLayout.canvasId as string;
    const tip = page.locator('#tip');
    for (const i of [0, 3, 7]) {
      const row = busyLayout.rows[i];
      const bar = busy.pages[i];
      if (row === undefined || bar === undefined) throw new Error(`no row ${i}`);
      await hover(page, id, (row.x0 + row.x1) / 2, row.y);
      await expect.poll(() => tip.isVisible(), { timeout: 2000 }).toBe(true);
      expect(await tip.locator('.tip-url').textContent(), `seed ${SEED}: row ${i}`).toBe(bar.url);
      const text = (await tip.textContent()) ?? '';
      for (const ph of bar.phases) expect(text).toContain(`${ph.phase}: `);
      if (bar.error === null) expect(await tip.locator('.tip-error').count()).toBe(0);
      else expect(await tip.locator('.tip-error').textContent()).toBe(`failed: ${bar.error}`);
    }
    // The loop lane tells what the loop was doing and the events a wait returned.
    const loopLayout = layout.waterfalls[1];
    const lane = loopLayout?.lane;
    const firstWait = coro.loop?.waits[0];
    if (loopLayout === undefined || lane === null || lane === undefined || firstWait === undefined) {
      throw new Error('no loop lane or no wait');
    }
    // The middle of the first wait, on the plot's time axis.
    const { plot, axisMs } = loopLayout;
    const x = plot.x0 + ((firstWait[0] + firstWait[1] / 2) / axisMs) * (plot.x1 - plot.x0);
    await hover(page, loopLayout.canvasId as string, x, lane.y);
    await expect.poll(() => tip.textContent(), { timeout: 2000 }).toContain('asleep in the selector');
    expect(await tip.locator('.tip-events').textContent()).toContain(`woke with ${firstWait[2]} event`);
    // Off every bar, the tooltip goes.
    await page.mouse.move(2, 2);
    await expect.poll(() => tip.isVisible(), { timeout: 2000 }).toBe(false);
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it('fits each waterfall to its own axis on request, and back', async () => {
    const { page, errors } = await open(demoPageHtml(demo), 'demo-fit');
    const shared = await layoutOf(page);
    expect(shared.complete).toBe(true);
    await page.locator('#axis-fit').check();
    const fitted = await completeLayout(page, 'fit');
    expect(fitted.axis).toBe('fit');
    // The coroutines end far sooner than busy-polling: fitted, their bars widen.
    const coroEnd = (l: PageLayout): number => Math.max(...(l.waterfalls[1]?.rows.map((r) => r.x1) ?? [0]));
    expect(coroEnd(fitted)).toBeGreaterThan(coroEnd(shared) * 2);
    expect(fitted.waterfalls[0]?.rows).toEqual(shared.waterfalls[0]?.rows);
    await page.locator('#axis-shared').check();
    expect(await completeLayout(page, 'shared')).toEqual(shared);
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it('says so when there is nothing to draw', async () => {
    const none = await open(demoPageHtml(model([])), 'demo-none');
    expect(none.errors).toEqual([]);
    expect(await none.page.locator('main').textContent()).toContain('No waterfalls to show');
    expect((await layoutOf(none.page)).waterfalls).toEqual([]);
    await none.page.context().close();

    const empty: Waterfall = { ...coroutineWaterfall(prng(SEED), 0, null), title: 'nothing fetched' };
    const some = await open(demoPageHtml(model([empty, busyWaterfall(prng(SEED), 2, null)])), 'demo-empty');
    expect(some.errors).toEqual([]);
    expect(await some.page.locator('figure.waterfall').first().textContent()).toContain('No pages in this waterfall');
    const layout = await layoutOf(some.page);
    expect(layout.waterfalls[0]).toMatchObject({ canvasId: null, rows: [], lane: null });
    expect(layout.waterfalls[1]?.rows).toHaveLength(2);
    await some.page.context().close();
  });

  it('draws 1,000 pages x 10 waterfalls: those in view first, the rest after (timings printed, not asserted)', async () => {
    const rand = prng(SEED + 1);
    const waterfalls = Array.from({ length: 10 }, (_, i) =>
      i % 2 === 0 ? busyWaterfall(rand, 1000, 500) : coroutineWaterfall(rand, 1000, 500),
    );
    const t0 = performance.now();
    const { page, errors, loadMs } = await open(demoPageHtml(model(waterfalls)), 'demo-big', 1, false);
    expect(errors, `seed ${SEED + 1}`).toEqual([]);
    const first = await page.evaluate(() => {
      const { document, __iomuxLayout, __marks } = globalThis as unknown as InBrowser;
      return {
        navMs: __marks['renderedMs'],
        renderedMs: document.body?.dataset['renderedMs'],
        height: document.body?.scrollHeight,
        drawn: __iomuxLayout.waterfalls.filter((w) => w.drawn).length,
      };
    });
    // The waterfalls in view at load are drawn; the page has its full height already.
    expect(first.drawn).toBeGreaterThan(0);
    const layoutAtLoad = await layoutOf(page);
    expect(layoutAtLoad.waterfalls[0]?.drawn).toBe(true);
    // The rest come without scrolling.
    await page.waitForFunction(
      () => (globalThis as unknown as InBrowser).document.body?.dataset['allDrawnMs'] !== undefined,
      null,
      { polling: 10, timeout: 30_000 },
    );
    const allWallMs = performance.now() - t0;
    const last = await page.evaluate(() => {
      const { document, __marks } = globalThis as unknown as InBrowser;
      return {
        navMs: __marks['allDrawnMs'],
        allDrawnMs: document.body?.dataset['allDrawnMs'],
        height: document.body?.scrollHeight,
      };
    });
    const ms = (v: number | undefined): string => (v === undefined ? '?' : v.toFixed(0));
    console.log(
      `page render 1000x10: first screen at ${ms(first.navMs)} ms from navigation (script ${first.renderedMs} ms; goto to flag seen ${loadMs.toFixed(0)} ms, ${first.drawn} of 10 drawn by then); ` +
        `all 10 drawn at ${ms(last.navMs)} ms (script ${last.allDrawnMs} ms; goto to flag seen ${allWallMs.toFixed(0)} ms)`,
    );
    expect(last.height, 'the page height never changes while drawing').toBe(first.height);
    const layout = await layoutOf(page);
    expect(layout.complete).toBe(true);
    expect(layout.waterfalls.map((w) => w.drawn)).toEqual(Array(10).fill(true));
    expect(layout.waterfalls.map((w) => w.rows.length)).toEqual(Array(10).fill(1000));
    for (const w of layout.waterfalls) {
      const id = w.canvasId as string;
      await page.evaluate(
        (id) => (globalThis as unknown as InBrowser).document.getElementById(id).scrollIntoView(),
        id,
      );
      for (const row of [w.rows[0], w.rows.at(-1)]) {
        if (row === undefined) throw new Error('no row');
        const runs = await runsAlong(page, id, Math.floor(row.y), row.x0, row.x1);
        expect(runs.length).toBeGreaterThan(0);
        for (const r of runs) expect(EMPTY.has(r.colour), `seed ${SEED + 1}: hole at ${r.x}`).toBe(false);
      }
    }
    await page.context().close();
  }, 60_000);

  it('draws a waterfall far down the page as soon as the reader scrolls to it, and all anew after the toggle or a resize', async () => {
    const rand = prng(SEED + 2);
    const waterfalls = Array.from({ length: 10 }, (_, i) =>
      i % 2 === 0 ? busyWaterfall(rand, 1000, null) : coroutineWaterfall(rand, 1000, null),
    );
    // The browser is never idle until released: only scrolling can draw the far waterfalls.
    const { page, errors } = await open(demoPageHtml(model(waterfalls)), 'demo-scroll', 1, false, true);
    expect(errors).toEqual([]);
    const atLoad = await layoutOf(page);
    expect(atLoad.waterfalls[0]?.drawn, 'the first screen is drawn').toBe(true);
    expect(atLoad.waterfalls[9]?.drawn, 'the last waterfall waits its turn').toBe(false);
    const y = await page.evaluate(() => {
      const win = globalThis as unknown as InBrowser;
      win.document.getElementById('wf-canvas-9').scrollIntoView();
      return win.scrollY;
    });
    await page.waitForFunction(
      () => (globalThis as unknown as InBrowser).__iomuxLayout.waterfalls[9]?.drawn === true,
      null,
      {
        polling: 10,
      },
    );
    // Drawing it did not move the page under the reader.
    expect(await page.evaluate(() => (globalThis as unknown as InBrowser).scrollY)).toBe(y);
    const w = (await layoutOf(page)).waterfalls[9];
    const row = w?.rows[0];
    if (w === undefined || row === undefined) throw new Error('no row');
    const runs = await runsAlong(page, w.canvasId as string, Math.floor(row.y), row.x0, row.x1);
    for (const r of runs) expect(EMPTY.has(r.colour), `seed ${SEED + 2}: hole at ${r.x}`).toBe(false);
    await page.evaluate(() => (globalThis as unknown as InBrowser).__releaseIdle());

    // Fitted, every waterfall is drawn anew on its own axis, the far ones too.
    await page.locator('#axis-fit').check();
    const fitted = await completeLayout(page, 'fit');
    expect(fitted.waterfalls.map((f) => f.drawn)).toEqual(Array(10).fill(true));
    for (const [i, f] of fitted.waterfalls.entries()) {
      // Each axis ends at its own waterfall's last page (or last wait), at most one tick later.
      const ends = waterfalls[i]?.pages.map((p) => p.end) ?? [];
      expect(f.axisMs, `waterfall ${i}`).toBeGreaterThanOrEqual(Math.max(...ends) - 0.01);
      const fRow = f.rows.at(-1);
      if (fRow === undefined) throw new Error('no row');
      const fRuns = await runsAlong(page, f.canvasId as string, Math.floor(fRow.y), fRow.x0, fRow.x1);
      for (const r of fRuns) expect(EMPTY.has(r.colour), `fit, waterfall ${i}: hole at ${r.x}`).toBe(false);
    }
    // The coroutines' waterfalls end far sooner than busy-polling's: fitted, they are drawn wider.
    const widest = (l: PageLayout, i: number): number => Math.max(...(l.waterfalls[i]?.rows.map((r) => r.x1) ?? [0]));
    expect(widest(fitted, 1)).toBeGreaterThan(widest(atLoad, 1) * 2);

    // Narrower, the page draws them all again at its new width.
    await page.setViewportSize({ width: 900, height: 800 });
    await page.waitForFunction(
      (x1) => {
        const layout = (globalThis as unknown as InBrowser).__iomuxLayout;
        return layout.complete && (layout.waterfalls[0]?.plot.x1 ?? x1) < x1;
      },
      fitted.waterfalls[0]?.plot.x1 ?? 0,
      { polling: 10, timeout: 30_000 },
    );
    const narrow = await layoutOf(page);
    expect(narrow.axis).toBe('fit');
    expect(narrow.waterfalls.map((f) => f.drawn)).toEqual(Array(10).fill(true));
    for (const f of narrow.waterfalls) expect(f.plot.x1).toBe(narrow.waterfalls[0]?.plot.x1);
    await page.context().close();
  }, 60_000);
});

describe('the sys page (headless Chromium)', () => {
  const cell = (variant: Cell['variant'], n: number, k: number, tsNs: number, floorNs: number): Cell => ({
    variant,
    n,
    k,
    tsNs,
    floorNs,
    floorMtNs: floorNs * 1.1,
    ratio: tsNs / floorNs,
    ratioMt: tsNs / (floorNs * 1.1),
  });
  const cells: Cell[] = [
    cell('select', 10, 1, 1500, 970),
    cell('poll', 10, 1, 1200, 630),
    cell('epoll', 10, 1, 900, 516),
    cell('select', 1000, 1, 40_000, 33_489),
    cell('poll', 1000, 1, 38_000, 32_010),
    cell('epoll', 1000, 1, 1100, 522),
  ];
  const verdictLines = ['few ready (K = 1): epoll beats poll at every N measured <b>61x</b> cheaper.', 'second line'];

  it('shows the chart, the verdicts as a list and the table', async () => {
    const html = sysPageHtml({
      title: 'select vs poll vs epoll <b>ns</b>',
      svg: syscallChartSvg(cells, 'ns per wait'),
      verdicts: verdictLines,
      table: formatSyscallTable(cells),
    });
    const { page, errors } = await open(html, 'sys');
    expect(errors).toEqual([]);
    expect(await page.locator('b').count()).toBe(0);
    const box = await page.locator('figure.chart svg').boundingBox();
    expect(box !== null && box.width > 100 && box.height > 100).toBe(true);
    expect(await page.locator('ul.verdicts li').allTextContents()).toEqual(verdictLines);
    expect(await page.locator('table thead th').allTextContents()).toEqual([
      'N fds',
      'K ready',
      'variant',
      'TypeScript ns',
      'C floor ns',
      'C floor-mt ns',
      'TS / floor',
      'TS / floor-mt',
    ]);
    const rows = page.locator('table tbody tr');
    expect(await rows.count()).toBe(cells.length);
    expect(await rows.nth(5).locator('td').allTextContents()).toEqual([
      '1,000',
      '1',
      'epoll',
      '1,100',
      '522',
      '574',
      '2.11x',
      '1.92x',
    ]);
    expect(
      await page
        .locator('table td')
        .first()
        .evaluate((td) => (globalThis as unknown as InBrowser).getComputedStyle(td).textAlign),
    ).toBe('right');
    await page.context().close();
  });

  it('gives the note instead of verdicts when the C floor did not run', async () => {
    const html = sysPageHtml({
      title: 'no floor',
      svg: syscallChartSvg(cells, 'ns per wait'),
      verdicts: [],
      table: formatSyscallTable(cells),
      note: 'C floor unavailable: no cc',
    });
    const { page, errors } = await open(html, 'sys-note');
    expect(errors).toEqual([]);
    expect(await page.locator('ul.verdicts').count()).toBe(0);
    expect(await page.locator('p.note').textContent()).toBe('C floor unavailable: no cc');
    await page.context().close();
  });
});

describe('the page `iomux demo --html` writes from a real run (headless Chromium)', () => {
  const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

  /** Runs the command in a child process, as a user does; returns the page it wrote. */
  function demoHtml(name: string, ...args: string[]): string {
    const file = join(dir, `${name}.html`);
    const r = spawnSync(process.execPath, [CLI, 'demo', ...args, '--html', file], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.status, r.stderr).toBe(0);
    return readFileSync(file, 'utf8');
  }

  it('draws a bar per fetched page with its phases in order, in each style, and the thread under them', async () => {
    const { page, errors } = await open(demoHtml('demo-run', '--count', '8', '--latency', '20'), 'demo-run-page');
    expect(errors).toEqual([]);
    const layout = await completeLayout(page, 'shared');
    expect(layout.waterfalls).toHaveLength(10);
    const titles = await page.locator('figure.waterfall .title').allTextContents();
    expect(titles).toEqual([
      'busy-polling (no loop)',
      ...['callback', 'coroutine', 'async'].flatMap((s) => ['select', 'poll', 'epoll'].map((b) => `${s} on ${b}`)),
    ]);
    for (const [k, w] of layout.waterfalls.entries()) {
      const what = titles[k] ?? String(k);
      expect(w.canvasId, what).not.toBeNull();
      // One bar per page fetched: 8 in every waterfall.
      expect(w.rows, what).toHaveLength(8);
      for (const [i, row] of w.rows.entries()) {
        await checkRow(page, w.canvasId as string, row, w.plot, 1, `${what}, page ${i + 1}`);
      }
      expect(w.lane?.kind, what).toBe(k === 0 ? 'spin' : 'loop');
      if (k === 0) {
        // Busy-polling: one page after another, the staircase.
        for (let i = 1; i < w.rows.length; i++) {
          expect(w.rows[i]?.x0, `${what}: page ${i + 1} starts after page ${i} ends`).toBeGreaterThanOrEqual(
            (w.rows[i - 1]?.x1 ?? 0) - 1,
          );
        }
      } else {
        // Every page in flight at once: each began before the first one ended.
        const firstEnd = Math.min(...w.rows.map((r) => r.x1));
        for (const r of w.rows) expect(r.x0, what).toBeLessThan(firstEnd);
      }
    }
    mkdirSync(ARTIFACTS, { recursive: true });
    const png = new URL('demo-run.png', ARTIFACTS);
    await page.screenshot({ path: png.pathname, fullPage: true });
    expect(statSync(png).size).toBeGreaterThan(10_000);
    await page.context().close();
  });

  it('with --models: a waterfall per I/O model', async () => {
    const { page, errors } = await open(
      demoHtml('models-run', '--models', '--count', '4', '--latency', '10'),
      'models-run-page',
    );
    expect(errors).toEqual([]);
    const layout = await completeLayout(page, 'shared');
    const titles = await page.locator('figure.waterfall .title').allTextContents();
    expect(titles.slice(0, 6)).toEqual([
      'blocking',
      'non-blocking',
      'select (I/O multiplexing)',
      'poll (I/O multiplexing)',
      'epoll (I/O multiplexing)',
      'signal-driven',
    ]);
    for (const [k, w] of layout.waterfalls.entries()) {
      expect(w.rows).toHaveLength(4);
      for (const [i, row] of w.rows.entries()) {
        await checkRow(page, w.canvasId as string, row, w.plot, 1, `${titles[k]}, page ${i + 1}`);
      }
    }
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: new URL('models-run.png', ARTIFACTS).pathname, fullPage: true });
    await page.context().close();
  });
});
