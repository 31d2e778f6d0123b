/**
 * select vs poll vs epoll through `iomux/sys`, at the points of the C floor:
 * N eventfds of which K are readable and never drained, so each wait returns
 * the same K fds. Each TypeScript figure is measured in the same run as the
 * floor's and reported as a ratio to it.
 */

import { EpollSelector, EVENT_READ, PollSelector, type SelectorKey, SelectSelector } from '../../selectors/index.js';
import {
  close,
  EPOLL_EVENT_FD_INDEX,
  EPOLL_EVENT_INTS,
  EPOLLIN,
  Epoll,
  eventfd,
  FD_SETSIZE,
  POLLIN,
  Poll,
  select,
  write,
} from '../../sys/index.js';
import { buildFloor, type FloorBackend, runFloor } from './floor.js';
import { median, sampleNsPerCall } from './stats.js';

/** A measured point: N watched fds, K ready. */
export interface Point {
  n: number;
  k: number;
}

/** DESIGN.md's table. */
export const DEFAULT_POINTS: readonly Point[] = [
  { n: 10, k: 1 },
  { n: 100, k: 100 },
  { n: 1000, k: 1 },
  { n: 1000, k: 1000 },
  { n: 10000, k: 1 },
];

/**
 * The full grid: N in {10, 100, 1,000, 10,000} watched fds, K ready in
 * {1, 1 %, 100 %} (duplicates dropped).
 */
export const GRID_POINTS: readonly Point[] = [10, 100, 1000, 10000].flatMap((n) =>
  [...new Set([1, Math.max(1, Math.floor(n / 100)), n])].map((k) => ({ n, k })),
);

/**
 * What is timed: the kernel call plus visiting each ready fd. `poll` and
 * `epoll` are the Python-like forms that return `[fd, events]` lists;
 * `.pollInto` the allocation-free forms a selector or loop uses.
 */
export type Variant =
  | 'select'
  | 'poll'
  | 'poll.pollInto'
  | 'epoll'
  | 'epoll.pollInto'
  | 'epoll.pollInto+ctl'
  | 'SelectSelector'
  | 'PollSelector'
  | 'EpollSelector';

/** The floor backend each TypeScript variant is compared with. */
export const FLOOR_OF: Record<Variant, FloorBackend> = {
  select: 'select',
  poll: 'poll',
  'poll.pollInto': 'poll',
  epoll: 'epoll',
  'epoll.pollInto': 'epoll',
  'epoll.pollInto+ctl': 'epoll_ctl',
  SelectSelector: 'select',
  PollSelector: 'poll',
  EpollSelector: 'epoll',
};

export const VARIANTS: readonly Variant[] = [
  'select',
  'poll',
  'poll.pollInto',
  'epoll',
  'epoll.pollInto',
  'epoll.pollInto+ctl',
];

/** The same waits through iomux/selectors (forEachReady, the loop's path). */
export const SELECTOR_VARIANTS: readonly Variant[] = ['SelectSelector', 'PollSelector', 'EpollSelector'];

export interface Cell {
  variant: Variant;
  n: number;
  k: number;
  /** Median ns per wait through TypeScript, or null when it cannot run. */
  tsNs: number | null;
  /** Median ns per wait of the C floor (a single-threaded process), or null. */
  floorNs: number | null;
  /** The same in a multi-threaded C process, as every Node process is. */
  floorMtNs: number | null;
  /** tsNs / floorNs. */
  ratio: number | null;
  /** tsNs / floorMtNs. */
  ratioMt: number | null;
  /** Why a figure is missing (e.g. 'FD_SETSIZE'). */
  note?: string;
}

export interface SyscallOptions {
  points: readonly Point[];
  variants: readonly Variant[];
  samples: number;
  sampleMs: number;
  /** Called after each cell (progress). */
  onCell?: (cell: Cell, done: number, total: number) => void;
}

/** Indices of the K ready fds among N, spread evenly (as the floor does). */
function readyIndices(n: number, k: number): number[] {
  const out: number[] = [];
  for (let j = 0; j < k; j++) out.push(Math.min(n - 1, Math.floor((j * n) / k) + Math.floor(n / k) - 1));
  return out;
}

function makeFds(n: number, k: number): number[] {
  const fds: number[] = [];
  const one = Buffer.alloc(8);
  one.writeBigUInt64LE(1n);
  try {
    for (let i = 0; i < n; i++) fds.push(eventfd(0));
    for (const i of readyIndices(n, k)) write(fds[i] as number, one);
  } catch (e) {
    for (const fd of fds) close(fd);
    throw e;
  }
  return fds;
}

let sink = 0;

/** Builds the operation for one variant over `fds`; returns it and its cleanup. */
function makeOp(variant: Variant, fds: number[]): { op: () => void; done: () => void } {
  const n = fds.length;
  switch (variant) {
    case 'select':
      return {
        op: () => {
          const [r] = select(fds, [], [], 0);
          for (let i = 0; i < r.length; i++) sink += r[i] as number;
        },
        done: () => {},
      };
    case 'poll':
    case 'poll.pollInto': {
      const p = new Poll();
      for (const fd of fds) p.register(fd, POLLIN);
      const op =
        variant === 'poll'
          ? () => {
              const ready = p.poll(0);
              for (let i = 0; i < ready.length; i++) sink += (ready[i] as [number, number])[0];
            }
          : () => {
              const count = p.pollInto(0);
              const out = p.events;
              for (let i = 0; i < count; i++) sink += out[2 * i] as number;
            };
      return { op, done: () => p.close() };
    }
    case 'SelectSelector':
    case 'PollSelector':
    case 'EpollSelector': {
      const sel =
        variant === 'SelectSelector'
          ? new SelectSelector()
          : variant === 'PollSelector'
            ? new PollSelector()
            : // All N may be ready: report them in one wait, as the floor does.
              new EpollSelector({ maxEvents: n });
      for (const fd of fds) sel.register(fd, EVENT_READ);
      const visit = (key: SelectorKey<unknown>): void => {
        sink += key.fd;
      };
      return { op: () => void sel.forEachReady(0, visit), done: () => sel.close() };
    }
    default: {
      const ep = new Epoll(-1, 0, { maxEvents: n });
      for (const fd of fds) ep.register(fd, EPOLLIN);
      const out = ep.events;
      let op: () => void;
      if (variant === 'epoll') {
        op = () => {
          const ready = ep.poll(0, n);
          for (let i = 0; i < ready.length; i++) sink += (ready[i] as [number, number])[0];
        };
      } else if (variant === 'epoll.pollInto') {
        op = () => {
          const count = ep.pollInto(0);
          for (let i = 0; i < count; i++) sink += out[i * EPOLL_EVENT_INTS + EPOLL_EVENT_FD_INDEX] as number;
        };
      } else {
        op = () => {
          const count = ep.pollInto(0);
          for (let i = 0; i < count; i++) {
            const fd = out[i * EPOLL_EVENT_INTS + EPOLL_EVENT_FD_INDEX] as number;
            ep.modify(fd, EPOLLIN);
            sink += fd;
          }
        };
      }
      return { op, done: () => ep.close() };
    }
  }
}

/**
 * Measures every (point, variant) through TypeScript and the C floor.
 * Floor figures are cached per (backend, point) within the run, so two
 * TypeScript variants of one backend share one floor measurement.
 */
export function runSyscallBench(options: SyscallOptions): { cells: Cell[]; floorError?: string } {
  const floor = buildFloor();
  const floorCache = new Map<string, { ns: number | null; mtNs: number | null; note?: string }>();
  const cells: Cell[] = [];
  const total = options.points.length * options.variants.length;
  for (const { n, k } of options.points) {
    const fds = makeFds(n, k);
    try {
      for (const variant of options.variants) {
        const backend = FLOOR_OF[variant];
        const key = `${backend}/${n}/${k}`;
        let floorFig = floorCache.get(key);
        if (floorFig === undefined) {
          if ('error' in floor) {
            floorFig = { ns: null, mtNs: null, note: 'no floor' };
          } else {
            const st = runFloor(floor.path, backend, n, k, options.samples, options.sampleMs, 0);
            const mt = runFloor(floor.path, backend, n, k, options.samples, options.sampleMs, 1);
            floorFig = {
              ns: 'error' in st ? null : median(st.samplesNs),
              mtNs: 'error' in mt ? null : median(mt.samplesNs),
              ...('error' in st ? { note: st.error } : {}),
            };
          }
          floorCache.set(key, floorFig);
        }
        let tsNs: number | null = null;
        let note = floorFig.note;
        if ((variant === 'select' || variant === 'SelectSelector') && Math.max(...fds) >= FD_SETSIZE) {
          note = 'FD_SETSIZE';
        } else {
          const { op, done } = makeOp(variant, fds);
          try {
            tsNs = median(sampleNsPerCall(op, options.samples, options.sampleMs));
          } finally {
            done();
          }
        }
        const cell: Cell = {
          variant,
          n,
          k,
          tsNs,
          floorNs: floorFig.ns,
          floorMtNs: floorFig.mtNs,
          ratio: tsNs !== null && floorFig.ns !== null ? tsNs / floorFig.ns : null,
          ratioMt: tsNs !== null && floorFig.mtNs !== null ? tsNs / floorFig.mtNs : null,
          ...(note === undefined ? {} : { note }),
        };
        cells.push(cell);
        options.onCell?.(cell, cells.length, total);
      }
    } finally {
      for (const fd of fds) close(fd);
    }
  }
  if (sink === Number.MIN_SAFE_INTEGER) process.stdout.write(''); // keep `sink` observable
  return 'error' in floor ? { cells, floorError: floor.error } : { cells };
}

/** The results as a markdown table: one row per point and variant. */
export function formatSyscallTable(cells: readonly Cell[]): string {
  const fmt = (ns: number | null): string => (ns === null ? '-' : Math.round(ns).toLocaleString('en-US'));
  const x = (r: number | null, note?: string): string => (r === null ? (note ?? '-') : `${r.toFixed(2)}x`);
  const rows = [
    '| N fds | K ready | variant | TypeScript ns | C floor ns | C floor-mt ns | TS / floor | TS / floor-mt |',
    '|---:|---:|---|---:|---:|---:|---:|---:|',
  ];
  for (const c of cells) {
    rows.push(
      `| ${c.n.toLocaleString('en-US')} | ${c.k.toLocaleString('en-US')} | ${c.variant} | ${fmt(c.tsNs)} | ` +
        `${fmt(c.floorNs)} | ${fmt(c.floorMtNs)} | ${x(c.ratio, c.note)} | ${x(c.ratioMt, c.note)} |`,
    );
  }
  return rows.join('\n');
}

function floorOf(cells: readonly Cell[], variant: Variant, n: number, k: number): number | null {
  return cells.find((c) => c.variant === variant && c.n === n && c.k === k)?.floorNs ?? null;
}

const fmtNs = (ns: number): string => `${Math.round(ns).toLocaleString('en-US')} ns`;

/**
 * What the C floor of this run says about the notes' claim, in sentences:
 * where epoll overtakes select and poll with few fds ready, where it loses
 * with all of them ready, and what changing interest per event costs it.
 * Computed from this run's floor figures only, so they always agree with them.
 */
export function verdicts(cells: readonly Cell[]): string[] {
  const lines: string[] = [];
  const ns = [...new Set(cells.map((c) => c.n))].sort((a, b) => a - b);
  for (const [label, pick] of [
    ['few ready (K = 1)', (_n: number) => 1],
    ['all ready (K = N)', (n: number) => n],
  ] as const) {
    const rows = ns
      .map((n) => {
        const k = pick(n);
        return {
          n,
          epoll: floorOf(cells, 'epoll', n, k),
          poll: floorOf(cells, 'poll', n, k),
          select: floorOf(cells, 'select', n, k),
        };
      })
      .filter((r) => r.epoll !== null && r.poll !== null);
    if (rows.length === 0) continue;
    const wins = rows.filter((r) => (r.epoll as number) < (r.poll as number));
    const last = rows.at(-1) as (typeof rows)[number];
    const ratio = (last.poll as number) / (last.epoll as number);
    if (wins.length === rows.length) {
      lines.push(
        `${label}: epoll beats poll at every N measured, ${ratio.toFixed(ratio >= 10 ? 0 : 1)}x cheaper at N = ${last.n.toLocaleString('en-US')} (${fmtNs(last.epoll as number)} vs ${fmtNs(last.poll as number)}).`,
      );
    } else if (wins.length === 0) {
      lines.push(
        `${label}: epoll loses to poll at every N measured, ${(1 / ratio).toFixed(1)}x dearer at N = ${last.n.toLocaleString('en-US')} (${fmtNs(last.epoll as number)} vs ${fmtNs(last.poll as number)}).`,
      );
    } else {
      const first = wins[0] as (typeof rows)[number];
      lines.push(
        `${label}: epoll overtakes poll from N = ${first.n.toLocaleString('en-US')} (${fmtNs(first.epoll as number)} vs ${fmtNs(first.poll as number)}).`,
      );
    }
    const sel = rows.filter((r) => r.select !== null);
    const selWins = sel.filter((r) => (r.select as number) < (r.epoll as number));
    if (sel.length > 0) {
      lines.push(
        `${label}: select is cheaper than epoll at ${selWins.length} of the ${sel.length} N it can watch (fds < 1024).`,
      );
    }
  }
  const churn = cells.filter((c) => c.variant === 'epoll.pollInto+ctl' && c.floorNs !== null);
  const worst = churn
    .map((c) => ({ c, plain: floorOf(cells, 'epoll.pollInto', c.n, c.k) }))
    .filter((x) => x.plain !== null)
    .sort((a, b) => (b.c.floorNs as number) / (b.plain as number) - (a.c.floorNs as number) / (a.plain as number))[0];
  if (worst !== undefined) {
    lines.push(
      `interest churn: one epoll_ctl per ready event makes epoll ${((worst.c.floorNs as number) / (worst.plain as number)).toFixed(1)}x dearer at N = ${worst.c.n.toLocaleString('en-US')}, K = ${worst.c.k.toLocaleString('en-US')} -- what batching interest changes in the loop avoids.`,
    );
  }
  return lines;
}
