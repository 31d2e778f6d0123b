/**
 * What the demo's page shows, as data: a waterfall per fetch style and
 * backend (or per I/O model) -- one bar per page with its phases on a
 * shared time axis -- and the loop's waits under it. The CLI fills it from
 * the fetchers' timings and a loop Trace; page.ts draws it.
 *
 * @module
 */

/** The phases of one fetch, in the order they happen. */
export const PHASES = ['connect', 'tls', 'send', 'wait', 'receive'] as const;

/** One phase of a fetch: connect (resolve + TCP), tls (handshake), send (the request), wait (for the first byte), receive (to the end). */
export type Phase = (typeof PHASES)[number];

/** One fetched page. Times are milliseconds from the waterfall's start. */
export interface PageBar {
  url: string;
  /** When the fetch began (ms). */
  start: number;
  /** When it ended, with the response or the error (ms). */
  end: number;
  /** Its phases in time order, each within [start, end]; a failed fetch has those it reached. */
  phases: { phase: Phase; start: number; end: number }[];
  /** null when the page came; else the error's code (ECONNREFUSED, ERR_TIMEOUT...). */
  error: string | null;
}

/** What the thread did while the pages were fetched. */
export interface LoopLane {
  /**
   * 'loop': an event loop, asleep in its selector during each wait and running
   * callbacks between waits; 'spin': no loop -- the thread asked the sockets
   * again and again, busy the whole time (busy-polling).
   */
  kind: 'loop' | 'spin';
  /** Each wait in the selector, in order: [start ms, ms blocked, events it returned]. Empty for 'spin'. */
  waits: [number, number, number][];
  /** Waits left out because the trace's ring buffer was full (the oldest go first). */
  dropped: number;
}

/** One waterfall: the pages of one style on one backend (or of one I/O model). */
export interface Waterfall {
  /** e.g. 'coroutine on epoll'. */
  title: string;
  style: string;
  backend: string;
  /** Wall time of the whole fetch, ms. */
  wallMs: number;
  /** CPU time (user + system) of the process meanwhile, ms. */
  cpuMs: number;
  pages: PageBar[];
  /** null when nothing was recorded of the thread. */
  loop: LoopLane | null;
}

/** The whole page. */
export interface DemoPage {
  title: string;
  /** Paragraphs above the waterfalls (what was fetched, how) and below them (the lesson). */
  intro: string[];
  lesson: string[];
  waterfalls: Waterfall[];
}
