/**
 * Fetched pages in a LoopTrace, and back: each page a span of its own
 * (category 'fetch', or 'fetch error: <code>' for a failure) with its
 * phases nested in it -- what `iomux fetch --trace` writes for Perfetto --
 * and the demo page's waterfall read from those spans and from the waits
 * of the loop that fetched them.
 *
 * @module
 */
import type { FetchError, FetchResult } from '../fetch/index.js';
import type { LoopTrace, TraceSpan } from '../loop/index.js';
import { type LoopLane, type PageBar, PHASES, type Phase, type Waterfall } from './html/model.js';

/** The category of a page's spans that came; failures carry theirs in `fetch error: <code>`. */
const FETCH = 'fetch';
const FAILED = 'fetch error: ';

/** Where fetchMany records: the loop's (or Fetcher's) waits on one lane, the pages' spans on another. */
export interface FetchTrace {
  trace: LoopTrace;
  loopLane: number;
  pagesLane: number;
}

/**
 * Records one page: a span from its start to its end named by its URL, and
 * (for a result) its phases in it.
 *
 * @param startMs - when the fetch was started (a result's own timings take precedence)
 * @param endMs - when it ended
 */
export function tracePage(
  trace: LoopTrace,
  lane: number,
  url: string,
  outcome: FetchResult | FetchError,
  startMs: number,
  endMs: number,
): void {
  if (!('status' in outcome)) {
    trace.span(url, startMs, Math.max(startMs, endMs), { category: `${FAILED}${outcome.code}`, lane });
    return;
  }
  const t = outcome.timings;
  const group = trace.span(url, t.start, t.end, { category: FETCH, lane });
  const phase = (name: Phase, from: number, to: number): void => {
    trace.span(name, from, Math.max(from, to), { category: FETCH, group, lane });
  };
  phase('connect', t.start, t.connected);
  if (t.secured !== null) phase('tls', t.connected, t.secured);
  phase('send', t.secured ?? t.connected, t.sent);
  phase('wait', t.sent, t.firstByte);
  phase('receive', t.firstByte, t.end);
}

/** What a waterfall says besides its pages and waits. */
export interface WaterfallInfo {
  title: string;
  style: string;
  backend: string;
  wallMs: number;
  cpuMs: number;
  /** The lane's kind: a loop whose waits were traced, or busy-polling (no waits). */
  kind: 'loop' | 'spin';
  /** Times in the waterfall are ms from this (the loop's clock). */
  t0: number;
}

/**
 * One waterfall of the demo page from a trace: the page spans of
 * `pagesLane` in the order their fetches started, and the waits of
 * `loopLane`.
 */
export function waterfallFromTrace(
  trace: LoopTrace,
  loopLane: number,
  pagesLane: number,
  info: WaterfallInfo,
): Waterfall {
  const rel = (ms: number): number => ms - info.t0;
  const pages = new Map<number, PageBar>();
  const phases: TraceSpan[] = [];
  const waits: [number, number, number][] = [];
  for (const e of trace.events()) {
    if (e.kind === 'wait' && e.lane === loopLane && info.kind === 'loop') {
      waits.push([rel(e.ts), e.dur, e.events]);
    } else if (e.kind === 'idle' && e.lane === loopLane && info.kind === 'loop') {
      // Cooperative mode sleeps in Node's event loop, not in its selector: asleep all the same.
      waits.push([rel(e.ts), e.dur, 0]);
    } else if (e.kind === 'span' && e.lane === pagesLane) {
      const failed = e.category.startsWith(FAILED);
      if (!failed && e.category !== FETCH) continue;
      // A phase is named by its phase, a page by its URL (never a bare word).
      if (!failed && (PHASES as readonly string[]).includes(e.name)) {
        phases.push(e);
        continue;
      }
      pages.set(e.group, {
        url: e.name,
        start: rel(e.ts),
        end: rel(e.ts + e.dur),
        phases: [],
        error: failed ? e.category.slice(FAILED.length) : null,
      });
    }
  }
  // A phase whose page the ring dropped goes with it.
  for (const p of phases) {
    pages.get(p.group)?.phases.push({ phase: p.name as Phase, start: rel(p.ts), end: rel(p.ts + p.dur) });
  }
  const bars = [...pages.values()].sort((a, b) => a.start - b.start);
  const lane: LoopLane = { kind: info.kind, waits, dropped: trace.dropped };
  return {
    title: info.title,
    style: info.style,
    backend: info.backend,
    wallMs: info.wallMs,
    cpuMs: info.cpuMs,
    pages: bars,
    loop: lane,
  };
}
