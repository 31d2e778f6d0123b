import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

import { formatC10kTable, runC10k } from '../../src/cli/bench/c10k.js';
import { syscallChartSvg } from '../../src/cli/bench/chart.js';
import { buildFloor, runFloor } from '../../src/cli/bench/floor.js';
import { formatRange, median, sampleNsPerCall } from '../../src/cli/bench/stats.js';
import {
  type Cell,
  formatSyscallTable,
  GRID_POINTS,
  runSyscallBench,
  SELECTOR_VARIANTS,
  VARIANTS,
  verdicts,
} from '../../src/cli/bench/syscalls.js';

// The suites of `iomux bench`: sys and c10k (its server runs from dist/:
// child processes cannot load TypeScript).
describe('benchmark plumbing (no timing assertions)', () => {
  it('median', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    expect(() => median([])).toThrow(RangeError);
  });

  it('formatRange shows the spread behind a median', () => {
    expect(formatRange([3, 1000.4, 2])).toBe('2-1,000');
    expect(formatRange([])).toBe('-');
  });

  it('sampleNsPerCall returns one positive figure per sample', () => {
    let calls = 0;
    const samples = sampleNsPerCall(() => void calls++, 3, 2);
    expect(samples).toHaveLength(3);
    expect(samples.every((ns) => ns > 0)).toBe(true);
    expect(calls).toBeGreaterThan(0);
  });

  it('the C floor builds and reports samples, or FD_SETSIZE for select beyond it', () => {
    const floor = buildFloor();
    if ('error' in floor) throw new Error(floor.error);
    // Compiled once per process, into one directory removed at exit.
    expect(buildFloor()).toEqual(floor);
    const r = runFloor(floor.path, 'epoll', 10, 1, 2, 2, 1);
    expect('samplesNs' in r && r.samplesNs.length === 2).toBe(true);
    expect(runFloor(floor.path, 'select', 2000, 1, 1, 1)).toEqual({ error: 'FD_SETSIZE' });
  });

  it('measures every variant at a point through TypeScript and the floor', () => {
    const { cells, floorError } = runSyscallBench({
      points: [
        { n: 8, k: 2 },
        { n: 1100, k: 1 },
      ],
      variants: VARIANTS,
      samples: 1,
      sampleMs: 2,
    });
    expect(floorError).toBeUndefined();
    expect(cells).toHaveLength(2 * VARIANTS.length);
    for (const c of cells) {
      if (c.variant === 'select' && c.n === 1100) {
        expect(c).toMatchObject({ tsNs: null, note: 'FD_SETSIZE' });
        continue;
      }
      expect(c.tsNs).toBeGreaterThan(0);
      expect(c.floorNs).toBeGreaterThan(0);
      expect(c.floorMtNs).toBeGreaterThan(0);
      expect(c.ratio).toBeCloseTo((c.tsNs as number) / (c.floorNs as number));
    }
    const table = formatSyscallTable(cells);
    expect(table.split('\n')).toHaveLength(2 + cells.length);
    expect(table).toContain('| 1,100 | 1 | select | - |');
  });

  it('the grid is N in {10, 100, 1,000, 10,000} with K in {1, 1 %, 100 %}', () => {
    expect(GRID_POINTS.map((p) => `${p.n}/${p.k}`)).toEqual([
      '10/1',
      '10/10',
      '100/1',
      '100/100',
      '1000/1',
      '1000/10',
      '1000/1000',
      '10000/1',
      '10000/100',
      '10000/10000',
    ]);
  });

  it('measures the waits through the selectors too', () => {
    const { cells } = runSyscallBench({
      points: [{ n: 6, k: 2 }],
      variants: SELECTOR_VARIANTS,
      samples: 1,
      sampleMs: 2,
    });
    expect(cells.map((c) => c.variant)).toEqual(['SelectSelector', 'PollSelector', 'EpollSelector']);
    for (const c of cells) expect(c.tsNs).toBeGreaterThan(0);
  });

  it('verdict lines follow the floor figures they are given', () => {
    const cell = (variant: Cell['variant'], n: number, k: number, floorNs: number): Cell => ({
      variant,
      n,
      k,
      tsNs: floorNs,
      floorNs,
      floorMtNs: floorNs,
      ratio: 1,
      ratioMt: 1,
    });
    const cells: Cell[] = [
      cell('epoll', 10, 1, 500),
      cell('poll', 10, 1, 600),
      cell('select', 10, 1, 900),
      cell('epoll', 1000, 1, 550),
      cell('poll', 1000, 1, 33_000),
      cell('select', 1000, 1, 35_000),
      cell('epoll', 10, 10, 1_500),
      cell('poll', 10, 10, 1_000),
      cell('select', 10, 10, 1_100),
      cell('epoll', 1000, 1000, 115_000),
      cell('poll', 1000, 1000, 33_000),
      cell('select', 1000, 1000, 36_000),
      cell('epoll.pollInto', 1000, 1000, 115_000),
      cell('epoll.pollInto+ctl', 1000, 1000, 550_000),
    ];
    expect(verdicts(cells)).toEqual([
      'few ready (K = 1): epoll beats poll at every N measured, 60x cheaper at N = 1,000 (550 ns vs 33,000 ns).',
      'few ready (K = 1): select is cheaper than epoll at 0 of the 2 N it can watch (fds < 1024).',
      'all ready (K = N): epoll loses to poll at every N measured, 3.5x dearer at N = 1,000 (115,000 ns vs 33,000 ns).',
      'all ready (K = N): select is cheaper than epoll at 2 of the 2 N it can watch (fds < 1024).',
      'interest churn: one epoll_ctl per ready event makes epoll 4.8x dearer at N = 1,000, K = 1,000 -- what batching interest changes in the loop avoids.',
    ]);
  });

  it('the chart of a real run: an SVG with a line per backend, TypeScript and floor, in each activity panel', () => {
    const { cells } = runSyscallBench({
      points: [
        { n: 10, k: 1 },
        { n: 10, k: 10 },
        { n: 100, k: 1 },
        { n: 100, k: 100 },
      ],
      variants: [...VARIANTS, ...SELECTOR_VARIANTS],
      samples: 1,
      sampleMs: 2,
    });
    const svg = syscallChartSvg(cells, 'select < poll & "epoll"');
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('select &lt; poll &amp; &quot;epoll&quot;');
    // 3 panels x 3 backends x (TypeScript + floor), each through the selectors.
    expect(svg.match(/<polyline /g)).toHaveLength(18);
    expect(svg).toContain('<title>EpollSelector (TypeScript)</title>');
    for (const [, points] of svg.matchAll(/points="([^"]*)"/g)) {
      const coords = (points as string).split(/[ ,]/).map(Number);
      expect(coords.every(Number.isFinite)).toBe(true);
    }
    // Every opened element is closed (a cheap well-formedness check).
    const opened = (svg.match(/<(?!\/)[a-z]+[^>]*[^/]>/g) ?? []).length;
    const closed = (svg.match(/<\/[a-z]+>/g) ?? []).length;
    expect(opened).toBe(closed);
  });

  it('c10k: connections held by the loop, 1 % active; select stops at FD_SETSIZE', { timeout: 60_000 }, async () => {
    const results = await runC10k({
      backends: ['epoll', 'select'],
      conns: [100, 1000],
      warmupMs: 50,
      measureMs: 200,
      serverScript: fileURLToPath(new URL('../../dist/cli/bench/c10k-server.js', import.meta.url)),
    });
    expect(results.map((r) => `${r.backend}/${r.conns}/${r.active}`)).toEqual([
      'epoll/100/1',
      'epoll/1000/10',
      'select/100/1',
      'select/1000/10',
    ]);
    for (const r of results.slice(0, 3)) {
      expect(r.perSecond).toBeGreaterThan(0);
      expect(r.tripUs).toBeGreaterThan(0);
      expect(r.bytesPerConnection).toBeGreaterThanOrEqual(0);
    }
    expect(results[3]).toMatchObject({ perSecond: null, note: expect.stringContaining('FD_SETSIZE') });
    expect(formatC10kTable(results)).toContain('| select | 1,000 | 10 | FD_SETSIZE');
  });
});

describe('iomux bench sys: output files', () => {
  const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

  it.each(['--html', '--svg'])('refuses a %s file it cannot write before measuring anything', (option) => {
    const file = '/nonexistent-dir/iomux-sys.out';
    const r = spawnSync(process.execPath, [CLI, 'bench', 'sys', '--quick', option, file], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(`iomux: ${option}: cannot write ${file} (ENOENT)\n`);
    // Refused before the suite ran: no table.
    expect(r.stdout).toBe('');
  });
});
