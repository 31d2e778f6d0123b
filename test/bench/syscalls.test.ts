import { describe, expect, it } from 'vitest';

import { buildFloor, runFloor } from '../../src/bench/floor.js';
import { median, sampleNsPerCall } from '../../src/bench/stats.js';
import { formatSyscallTable, runSyscallBench, VARIANTS } from '../../src/bench/syscalls.js';

describe('benchmark plumbing (no timing assertions)', () => {
  it('median', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    expect(() => median([])).toThrow(RangeError);
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
});
