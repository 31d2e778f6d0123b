/**
 * The demo page's drawing code. It runs in the reader's browser, not in
 * Node: page.ts inlines `renderDemoPage.toString()` into the page, so the
 * function is type-checked here but must stand alone -- no imports, no
 * closure over this module (its setup arrives as an argument, its data from
 * the page's JSON element). The project compiles without the DOM's types
 * (it is a Node library), so the few browser objects it touches are typed
 * below, just as far as it uses them.
 *
 * It draws on one `<canvas>` per waterfall, not SVG: 1,000 pages x 10
 * waterfalls is 60,000 rectangles, which a canvas fills in milliseconds and
 * the DOM would not lay out smoothly.
 *
 * @module
 */
import type { DemoPage, Phase } from './model.js';

/** The colours of the page, one per thing drawn (CSS colours, `#rrggbb`). */
export const PAGE_COLOURS = {
  phases: { connect: '#f28e2b', tls: '#b07aa1', send: '#76b7b2', wait: '#59a14f', receive: '#4e79a7' },
  /** A fetch's time outside any of its phases. */
  bar: '#9aa0a6',
  /** The frame of a failed fetch. */
  failed: '#d62728',
  /** The loop asleep in its selector. */
  asleep: '#d9d9d9',
  /** The loop running callbacks between two waits. */
  running: '#3c4043',
  /** A busy-polling thread, spinning. */
  busy: '#8c564b',
  grid: '#ececec',
  text: '#5f6368',
  background: '#ffffff',
} as const;

/** Where one phase of a page was drawn, in CSS px from the canvas's left edge. */
export interface PhaseLayout {
  phase: Phase;
  x0: number;
  x1: number;
}

/** Where one page's bar was drawn, in CSS px of its canvas. */
export interface RowLayout {
  /** The vertical centre of the bar. */
  y: number;
  /** The bar's first column and the column just past its end: it covers [x0, x1). */
  x0: number;
  x1: number;
  /** Its phases drawn at least one px wide, in the model's order. */
  phases: PhaseLayout[];
}

/** Where the loop lane was drawn, in CSS px: it covers [x0, x1) at height y. */
export interface LaneLayout {
  kind: 'loop' | 'spin';
  y: number;
  x0: number;
  x1: number;
}

/**
 * Where one waterfall was drawn; `canvasId` is null for a waterfall with no
 * pages (nothing to draw). A waterfall not drawn yet at the current axis and
 * width (far from the viewport: see renderDemoPage) has `drawn` false, no
 * rows and no lane.
 */
export interface WaterfallLayout {
  canvasId: string | null;
  drawn: boolean;
  /** The time at the right end of the axis, ms. */
  axisMs: number;
  /** The plot's columns, CSS px: time 0 at x0, axisMs at x1. */
  plot: { x0: number; x1: number };
  rows: RowLayout[];
  lane: LaneLayout | null;
}

/** What the page exposes as `window.__iomuxLayout` for tests: where each thing was drawn. */
export interface PageLayout {
  /** 'shared': one time axis for all waterfalls; 'fit': each fits its own. */
  axis: 'shared' | 'fit';
  devicePixelRatio: number;
  /** One per waterfall of the model, in its order. */
  waterfalls: WaterfallLayout[];
  /** Every waterfall is drawn at this axis and width. */
  complete: boolean;
}

/** What page.ts hands the script besides the data. */
export interface ScriptSetup {
  colours: typeof PAGE_COLOURS;
  /** The id of the `<script type="application/json">` holding the DemoPage. */
  dataId: string;
  /** The ids of the axis radio buttons: one time axis for all waterfalls, or each fitting its own. */
  sharedId: string;
  fitId: string;
  tipId: string;
}

// The browser objects the script uses, no further.
interface Box {
  left: number;
  top: number;
  bottom: number;
}
interface Intersection {
  target: Element;
  isIntersecting: boolean;
}
interface Observer {
  observe(element: Element): void;
}
interface Listenable {
  addEventListener(type: string, listener: (event: PointerLike) => void): void;
}
interface PointerLike {
  offsetX: number;
  offsetY: number;
  clientX: number;
  clientY: number;
}
interface Element extends Listenable {
  className: string;
  textContent: string | null;
  hidden: boolean;
  clientWidth: number;
  offsetWidth: number;
  offsetHeight: number;
  parentElement: Element | null;
  style: { width: string; height: string; left: string; top: string };
  dataset: Record<string, string | undefined>;
  append(...nodes: Element[]): void;
  replaceChildren(...nodes: Element[]): void;
  getBoundingClientRect(): Box;
}
interface Context2D {
  fillStyle: string;
  font: string;
  textAlign: string;
  textBaseline: string;
  fillRect(x: number, y: number, w: number, h: number): void;
  fillText(text: string, x: number, y: number): void;
  fill(path: Path2DLike): void;
}
interface Path2DLike {
  rect(x: number, y: number, w: number, h: number): void;
}
interface Canvas extends Element {
  width: number;
  height: number;
  getContext(kind: '2d', options: { alpha: boolean }): Context2D | null;
}
interface Input extends Element {
  checked: boolean;
}
interface Document {
  body: Element;
  getElementById(id: string): Element | null;
  createElement(tag: string): Element;
}
/** The parts of the browser's `window` that renderDemoPage uses. */
export interface PageWindow extends Listenable {
  document: Document;
  devicePixelRatio: number;
  innerWidth: number;
  innerHeight: number;
  performance: { now(): number };
  requestAnimationFrame(callback: () => void): number;
  setTimeout(callback: () => void, ms: number): number;
  /** Absent from some browsers (Safari): setTimeout stands in. */
  requestIdleCallback?: (callback: () => void, options: { timeout: number }) => number;
  IntersectionObserver?: new (callback: (entries: Intersection[]) => void, options: { rootMargin: string }) => Observer;
  Path2D: new () => Path2DLike;
  __iomuxLayout?: PageLayout;
}

/**
 * Draws every waterfall of the page's model on its canvas, wires the axis
 * toggle and the tooltips. Every canvas gets its size at once, so the page
 * never changes height; the waterfalls within a viewport of the visible
 * part are drawn first, and once they are it sets
 * `document.body.dataset.renderedMs` (ms from the script's start). The
 * others are drawn as the reader scrolls near them, or when the browser is
 * idle, one at a time; once all are it sets `document.body.dataset.allDrawnMs`.
 * `window.__iomuxLayout` says where each drawn waterfall was drawn (and
 * which are not yet). Runs in the browser only (see the module's note).
 */
export function renderDemoPage(win: PageWindow, setup: ScriptSetup): void {
  const started = win.performance.now();
  const doc = win.document;
  const C = setup.colours;
  // CSS px: the gutter for row numbers and the lane's label, the axes' height,
  // the lane's height and its gap below the last bar.
  const PAD_L = 56;
  const PAD_R = 20;
  const AXIS_H = 22;
  const LANE_GAP = 8;
  const LANE_H = 14;

  const dataText = doc.getElementById(setup.dataId)?.textContent ?? '{"waterfalls":[]}';
  const model = JSON.parse(dataText) as DemoPage;
  const tip = doc.getElementById(setup.tipId);
  const fitInput = doc.getElementById(setup.fitId) as Input | null;

  const finite = (v: number): number => (Number.isFinite(v) ? v : 0);
  const fmtMs = (ms: number): string =>
    `${ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2).replace(/\.?0+$/, '')} ms`;

  /** The last moment a waterfall shows: its wall time, its last page's end, its last wait's end. */
  const extentOf = (w: DemoPage['waterfalls'][number]): number => {
    let end = finite(w.wallMs);
    for (const p of w.pages) end = Math.max(end, finite(p.end));
    for (const [start, blocked] of w.loop?.waits ?? []) end = Math.max(end, finite(start) + finite(blocked));
    return end;
  };
  const sharedMs = model.waterfalls.reduce((end, w) => Math.max(end, extentOf(w)), 0);

  /** A step of 1, 2 or 5 times a power of ten giving ticks about 90 CSS px apart. */
  const tickStep = (axisMs: number, plotW: number): number => {
    const raw = axisMs / Math.max(1, plotW / 90);
    const decade = 10 ** Math.floor(Math.log10(raw));
    for (const m of [1, 2, 5]) if (m * decade >= raw) return m * decade;
    return 10 * decade;
  };

  interface Drawn {
    canvas: Canvas;
    index: number;
    layout: WaterfallLayout;
    rowTop: number;
    rowH: number;
    laneTop: number;
    axisMs: number;
    plotW: number;
  }
  // The waterfalls drawn so far, by index, for the tooltips.
  const drawn = new Map<number, Drawn>();

  /** A waterfall's canvas and its size in CSS px, null when it has no pages (no canvas). */
  const geometry = (w: DemoPage['waterfalls'][number], index: number) => {
    const canvas = doc.getElementById(`wf-canvas-${index}`) as Canvas | null;
    if (canvas === null || w.pages.length === 0) return null;
    const n = w.pages.length;
    // 14 px rows for a few pages, down to 2 px so 1,000 fit in about 2,000 px.
    const rowH = Math.max(2, Math.min(14, Math.floor(600 / n)));
    const barH = rowH >= 8 ? rowH - 3 : rowH >= 4 ? rowH - 1 : rowH;
    const cssW = Math.max(320, canvas.parentElement?.clientWidth ?? 0);
    const rowTop = AXIS_H;
    const laneTop = rowTop + n * rowH + LANE_GAP;
    const cssH = laneTop + (w.loop === null ? 0 : LANE_H) + AXIS_H;
    return { canvas, n, rowH, barH, cssW, cssH, rowTop, laneTop };
  };

  /**
   * Gives every canvas its CSS size before anything is drawn on it, so
   * the page has its final height at once: drawing a waterfall later never
   * moves what the reader is looking at.
   */
  const sizeAll = (): void => {
    model.waterfalls.forEach((w, index) => {
      const g = geometry(w, index);
      if (g === null) return;
      g.canvas.style.width = `${g.cssW}px`;
      g.canvas.style.height = `${g.cssH}px`;
    });
  };

  /** A waterfall's layout before it is drawn (or with nothing to draw: no canvas). */
  const undrawn = (index: number, hasCanvas: boolean): WaterfallLayout => ({
    canvasId: hasCanvas ? `wf-canvas-${index}` : null,
    drawn: !hasCanvas,
    axisMs: 0,
    plot: { x0: 0, x1: 0 },
    rows: [],
    lane: null,
  });

  /** Draws waterfall `index` on its canvas and says where; canvasId is null when there was nothing to draw. */
  const drawWaterfall = (
    w: DemoPage['waterfalls'][number],
    index: number,
    fit: boolean,
    dpr: number,
  ): WaterfallLayout => {
    const g = geometry(w, index);
    if (g === null) return undrawn(index, false);
    const { canvas, rowH, barH, cssW, cssH, rowTop, laneTop } = g;
    canvas.width = Math.round(cssW * dpr);
    canvas.height = Math.round(cssH * dpr);
    canvas.style.width = `${cssW}px`;
    canvas.style.height = `${cssH}px`;
    const ctx = canvas.getContext('2d', { alpha: false });
    if (ctx === null) throw new Error('iomux page: no 2D canvas context');
    const plotW = cssW - PAD_L - PAD_R;
    const axisMs = (fit ? extentOf(w) : sharedMs) || 1;
    // Every rectangle lands on whole device pixels: CSS px are rounded,
    // then scaled, then rounded again, so edges stay crisp at any ratio.
    const X = (ms: number): number => PAD_L + Math.round((Math.max(0, finite(ms)) / axisMs) * plotW);
    const dev = (css: number): number => Math.round(css * dpr);
    // Rectangles are gathered into one path per colour and each path
    // filled once, in this order (later layers over earlier ones): a
    // fillRect per rectangle, switching colour each time, costs several
    // times as much at 60,000 rectangles.
    const layers = new Map<string, Path2DLike>();
    for (const colour of [C.grid, C.bar, ...Object.values(C.phases), C.failed, C.running, C.busy, C.asleep]) {
      layers.set(colour, new win.Path2D());
    }
    const rect = (x0: number, y0: number, x1: number, y1: number, colour: string): void => {
      if (x1 <= x0 || y1 <= y0) return;
      layers.get(colour)?.rect(dev(x0), dev(y0), dev(x1) - dev(x0), dev(y1) - dev(y0));
    };
    const texts: [string, number, number, string, string][] = [];
    const text = (s: string, x: number, y: number, align: string, baseline: string): void => {
      texts.push([s, dev(x), dev(y), align, baseline]);
    };

    // The time axis: gridlines under everything, labels above and below.
    const step = tickStep(axisMs, plotW);
    const decimals = Math.max(0, -Math.floor(Math.log10(step)));
    const gridBottom = laneTop + (w.loop === null ? 0 : LANE_H);
    for (let t = 0; t <= axisMs + step / 1000; t += step) {
      const x = X(t);
      rect(x, rowTop - 4, x + 1, gridBottom + 4, C.grid);
      const label = `${t.toFixed(decimals)} ms`;
      text(label, x, rowTop - 6, 'center', 'bottom');
      text(label, x, gridBottom + 6, 'center', 'top');
    }

    // Row numbers, every 1, 2, 5, 10... rows so that they stay 14 px apart.
    const every = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000].find((k) => k * rowH >= 14) ?? 10000;
    const rows: RowLayout[] = [];
    w.pages.forEach((p, i) => {
      const top = rowTop + i * rowH + Math.floor((rowH - barH) / 2);
      const x0 = X(p.start);
      const x1 = Math.max(x0 + 1, X(p.end));
      rect(x0, top, x1, top + barH, C.bar);
      const phaseRects: PhaseLayout[] = [];
      for (const ph of p.phases) {
        const px0 = Math.min(x1, Math.max(x0, X(ph.start)));
        const px1 = Math.min(x1, Math.max(px0, X(ph.end)));
        if (px1 <= px0) continue;
        rect(px0, top, px1, top + barH, C.phases[ph.phase] ?? C.bar);
        phaseRects.push({ phase: ph.phase, x0: px0, x1: px1 });
      }
      if (p.error !== null) {
        // A failed fetch keeps its phases inside a red frame; a row too
        // thin for a frame is all red, failure being the news there.
        if (barH >= 4) {
          rect(x0, top, x1, top + 1, C.failed);
          rect(x0, top + barH - 1, x1, top + barH, C.failed);
          rect(x0, top, x0 + 1, top + barH, C.failed);
          rect(x1 - 1, top, x1, top + barH, C.failed);
        } else {
          rect(x0, top, x1, top + barH, C.failed);
        }
      }
      if (i === 0 || (i + 1) % every === 0) text(String(i + 1), PAD_L - 6, top + barH / 2, 'right', 'middle');
      rows.push({ y: top + barH / 2, x0, x1, phases: phaseRects });
    });

    // The thread's lane: a loop is dark while it runs callbacks and light
    // while it sleeps in the selector; a busy-poller spins all along.
    let lane: LaneLayout | null = null;
    if (w.loop !== null) {
      const pagesEnd = w.pages.reduce((end, p) => Math.max(end, finite(p.end)), 0);
      const lx0 = X(0);
      if (w.loop.kind === 'spin') {
        const lx1 = Math.max(lx0 + 1, X(pagesEnd));
        rect(lx0, laneTop, lx1, laneTop + LANE_H, C.busy);
        lane = { kind: 'spin', y: laneTop + LANE_H / 2, x0: lx0, x1: lx1 };
      } else {
        const lastWait = w.loop.waits.at(-1);
        const end = Math.max(pagesEnd, lastWait === undefined ? 0 : finite(lastWait[0]) + finite(lastWait[1]));
        const lx1 = Math.max(lx0 + 1, X(end));
        rect(lx0, laneTop, lx1, laneTop + LANE_H, C.running);
        for (const [start, blocked] of w.loop.waits) {
          rect(X(start), laneTop, X(finite(start) + finite(blocked)), laneTop + LANE_H, C.asleep);
        }
        lane = { kind: 'loop', y: laneTop + LANE_H / 2, x0: lx0, x1: lx1 };
      }
      text(w.loop.kind, PAD_L - 6, laneTop + LANE_H / 2, 'right', 'middle');
    }
    ctx.fillStyle = C.background;
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    for (const [colour, path] of layers) {
      ctx.fillStyle = colour;
      ctx.fill(path);
    }
    ctx.font = `${Math.round(11 * dpr)}px system-ui, sans-serif`;
    ctx.fillStyle = C.text;
    for (const [s, x, y, align, baseline] of texts) {
      ctx.textAlign = align;
      ctx.textBaseline = baseline;
      ctx.fillText(s, x, y);
    }
    const layout: WaterfallLayout = {
      canvasId: `wf-canvas-${index}`,
      drawn: true,
      axisMs,
      plot: { x0: PAD_L, x1: PAD_L + plotW },
      rows,
      lane,
    };
    drawn.set(index, { canvas, index, layout, rowTop, rowH, laneTop, axisMs, plotW });
    return layout;
  };

  // Which waterfalls are within about a viewport of the visible part of
  // the page, kept by an IntersectionObserver as the reader scrolls.
  const near = new Set<number>();
  const isNear = (index: number): boolean => {
    const canvas = doc.getElementById(`wf-canvas-${index}`);
    if (canvas === null) return false;
    const box = canvas.getBoundingClientRect();
    return box.bottom >= -win.innerHeight && box.top <= 2 * win.innerHeight;
  };

  /** The drawing under way: the axis and ratio it draws at, and what it has drawn. */
  interface Drawing {
    fit: boolean;
    dpr: number;
    layouts: (WaterfallLayout | null)[];
    left: number;
    /** The waterfalls near the viewport when it began, not drawn yet. */
    firstScreen: Set<number>;
    /** Called once those are drawn, then once every waterfall is. */
    onScreen: (() => void) | undefined;
    onAll: (() => void) | undefined;
  }
  let current: Drawing | null = null;
  // A pump waiting for the next task, or for the browser to be idle.
  let soon = false;
  let idle = false;

  const publish = (d: Drawing): void => {
    win.__iomuxLayout = {
      axis: d.fit ? 'fit' : 'shared',
      devicePixelRatio: d.dpr,
      waterfalls: d.layouts.map((l, index) => l ?? undrawn(index, true)),
      complete: d.left === 0,
    };
  };

  /** The next waterfall to draw: one near the viewport first, else (idle) the first not drawn yet. */
  const next = (d: Drawing, nearOnly: boolean): number => {
    for (const index of [...near].sort((a, b) => a - b)) if (d.layouts[index] === null) return index;
    if (nearOnly) return -1;
    return d.layouts.indexOf(null);
  };

  /**
   * Draws waterfalls of the current drawing for about 30 ms: those near the
   * viewport first, at once; the others one at a time when the browser is
   * idle, so that a reader who never scrolls still gets them all, and one
   * who scrolls gets the waterfall coming into view before the rest.
   */
  const pump = (): void => {
    soon = false;
    idle = false;
    const d = current;
    if (d === null) return;
    const sliceStart = win.performance.now();
    let index = next(d, false);
    while (index >= 0) {
      const w = model.waterfalls[index];
      if (w === undefined) break;
      d.layouts[index] = drawWaterfall(w, index, d.fit, d.dpr);
      d.left -= 1;
      d.firstScreen.delete(index);
      if (d.firstScreen.size === 0 && d.onScreen !== undefined) {
        publish(d);
        d.onScreen();
        d.onScreen = undefined;
      }
      if (win.performance.now() - sliceStart >= 30) break;
      index = next(d, true);
    }
    publish(d);
    if (d.left === 0) {
      current = null;
      d.onAll?.();
      return;
    }
    schedule(next(d, true) >= 0);
  };

  /**
   * Runs pump at the next task when a waterfall near the viewport waits,
   * else when the browser is idle (a pump more than needed draws nothing).
   */
  const schedule = (urgent: boolean): void => {
    if (urgent || win.requestIdleCallback === undefined) {
      if (soon) return;
      soon = true;
      win.setTimeout(pump, 0);
    } else {
      if (idle || soon) return;
      idle = true;
      win.requestIdleCallback(pump, { timeout: 500 });
    }
  };

  /**
   * Starts drawing every waterfall again (at load, after the toggle or a
   * resize): those near the viewport at once, the rest after them. A newer
   * drawing replaces an older one at its next waterfall; a waterfall not
   * redrawn yet keeps its older picture (and its older tooltips) until it is.
   */
  const draw = (onScreen?: () => void, onAll?: () => void): void => {
    sizeAll();
    near.clear();
    const firstScreen = new Set<number>();
    model.waterfalls.forEach((w, index) => {
      if (w.pages.length > 0 && isNear(index)) {
        near.add(index);
        firstScreen.add(index);
      }
    });
    const layouts = model.waterfalls.map((w, index) => (w.pages.length === 0 ? undrawn(index, false) : null));
    const d: Drawing = {
      fit: fitInput?.checked === true,
      dpr: win.devicePixelRatio || 1,
      layouts,
      left: layouts.filter((l) => l === null).length,
      firstScreen,
      onScreen: firstScreen.size === 0 ? undefined : onScreen,
      onAll,
    };
    current = d;
    if (firstScreen.size === 0) {
      publish(d);
      onScreen?.();
    }
    if (d.left === 0) {
      current = null;
      onAll?.();
      return;
    }
    pump();
  };

  /** The tooltip's lines for a point of a canvas, or null when nothing is there. */
  const describe = (d: Drawn, x: number, y: number): { text: string; className: string }[] | null => {
    const w = model.waterfalls[d.index];
    if (w === undefined) return null;
    const i = Math.floor((y - d.rowTop) / d.rowH);
    const row = d.layout.rows[i];
    const page = w.pages[i];
    if (row !== undefined && page !== undefined && x >= row.x0 - 3 && x < row.x1 + 3) {
      const lines = [{ text: page.url, className: 'tip-url' }];
      for (const ph of page.phases) lines.push({ text: `${ph.phase}: ${fmtMs(ph.end - ph.start)}`, className: '' });
      lines.push({ text: `total: ${fmtMs(page.end - page.start)} (from ${fmtMs(page.start)})`, className: '' });
      if (page.error !== null) lines.push({ text: `failed: ${page.error}`, className: 'tip-error' });
      return lines;
    }
    const lane = d.layout.lane;
    const loop = w.loop;
    if (lane === null || loop === null || y < d.laneTop || y >= d.laneTop + LANE_H || x < lane.x0 || x >= lane.x1) {
      return null;
    }
    if (loop.kind === 'spin') {
      return [
        { text: 'busy (spinning): the thread polls every socket again and again, never sleeping', className: '' },
      ];
    }
    const t = ((x - PAD_L) / d.plotW) * d.axisMs;
    // The last wait that began at or before t (waits are in time order).
    let lo = 0;
    let hi = loop.waits.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const wait = loop.waits[mid];
      if (wait !== undefined && wait[0] <= t) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    const wait = loop.waits[found];
    const dropped = loop.dropped > 0 ? [{ text: `${loop.dropped} earlier waits not recorded`, className: '' }] : [];
    if (wait === undefined) return [{ text: 'running callbacks (before the first wait)', className: '' }, ...dropped];
    const [start, blocked, events] = wait;
    const nth = `wait ${found + 1} of ${loop.waits.length}`;
    if (t < start + blocked) {
      return [
        { text: `asleep in the selector: ${fmtMs(blocked)} (${nth})`, className: '' },
        { text: `woke with ${events} event${events === 1 ? '' : 's'}`, className: 'tip-events' },
        ...dropped,
      ];
    }
    return [
      { text: `running callbacks after ${nth}`, className: '' },
      { text: `for the ${events} event${events === 1 ? '' : 's'} it returned`, className: 'tip-events' },
      ...dropped,
    ];
  };

  const hideTip = (): void => {
    if (tip !== null) tip.hidden = true;
  };
  const showTip = (d: Drawn, event: PointerLike): void => {
    if (tip === null) return;
    const lines = describe(d, event.offsetX, event.offsetY);
    if (lines === null) {
      hideTip();
      return;
    }
    // textContent only: a URL is shown as the text it is, never parsed as HTML.
    tip.replaceChildren(
      ...lines.map((line) => {
        const div = doc.createElement('div');
        div.className = line.className;
        div.textContent = line.text;
        return div;
      }),
    );
    tip.hidden = false;
    const left = Math.min(event.clientX + 14, win.innerWidth - tip.offsetWidth - 4);
    const top =
      event.clientY + 14 + tip.offsetHeight > win.innerHeight
        ? event.clientY - tip.offsetHeight - 8
        : event.clientY + 14;
    tip.style.left = `${Math.max(0, left)}px`;
    tip.style.top = `${Math.max(0, top)}px`;
  };

  model.waterfalls.forEach((_, index) => {
    const canvas = doc.getElementById(`wf-canvas-${index}`);
    canvas?.addEventListener('mousemove', (event) => {
      const d = drawn.get(index);
      if (d !== undefined) showTip(d, event);
    });
    canvas?.addEventListener('mouseleave', hideTip);
  });
  // A radio button reports only its own checking: listen to both.
  for (const id of [setup.sharedId, setup.fitId]) {
    doc.getElementById(id)?.addEventListener('change', () => {
      hideTip();
      draw();
    });
  }
  // Redraw at the new width after a resize, once per frame at most.
  let pending = false;
  let lastWidth = win.innerWidth;
  win.addEventListener('resize', () => {
    if (pending || win.innerWidth === lastWidth) return;
    pending = true;
    win.requestAnimationFrame(() => {
      pending = false;
      lastWidth = win.innerWidth;
      draw();
    });
  });
  const Observer = win.IntersectionObserver;
  if (Observer !== undefined) {
    const observer = new Observer(
      (entries) => {
        for (const entry of entries) {
          const index = Number(entry.target.dataset['index']);
          if (entry.isIntersecting) near.add(index);
          else near.delete(index);
        }
        if (current !== null && next(current, true) >= 0) schedule(true);
      },
      { rootMargin: '100% 0px' },
    );
    model.waterfalls.forEach((_, index) => {
      const canvas = doc.getElementById(`wf-canvas-${index}`);
      if (canvas === null) return;
      canvas.dataset['index'] = String(index);
      observer.observe(canvas);
    });
  }
  const since = (): string => (win.performance.now() - started).toFixed(1);
  draw(
    () => {
      doc.body.dataset['renderedMs'] = since();
    },
    () => {
      doc.body.dataset['allDrawnMs'] = since();
    },
  );
}
