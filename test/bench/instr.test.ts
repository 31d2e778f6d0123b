import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

import { callgrindSummary, formatInstrTable, type InstrResult, instrUnavailable } from '../../bench/src/instr.js';

// The counts themselves run under valgrind for minutes: `iomux bench instr
// --quick` in .ci/run's report smoke runs them; these check what is around.
describe('instructions benchmark', () => {
  it('reads the count of a callgrind dump from its summary line', () => {
    const dump =
      'version: 1\ncreator: callgrind-3.19.0\npid: 7\ncmd: x\npart: 1\n\nevents: Ir\nsummary: 3905093\n\nfn=main\n1 2\ntotals: 4022793\n';
    expect(callgrindSummary(dump)).toBe(3_905_093);
    expect(() => callgrindSummary('events: Ir\n')).toThrow('without a summary line');
  });

  it('tables each kind of work with ratios to its first program', () => {
    const results: InstrResult[] = [
      { work: 'echo', name: 'C epoll (floor)', perUnit: 50, perUnitAll: 50, units: 1000 },
      { work: 'echo', name: 'iomux (epoll, owning)', perUnit: 5000, perUnitAll: 9000, units: 1000 },
      { work: 'fetch', name: 'Python selectors Fetcher (the notes)', perUnit: 80_000, perUnitAll: 80_000, units: 800 },
      { work: 'fetch', name: 'iomux fetchCoroutine (epoll)', perUnit: 60_000, perUnitAll: 120_000, units: 8000 },
    ];
    const lines = formatInstrTable(results, 'nginx/1').split('\n');
    expect(lines).toHaveLength(6);
    expect(lines[3]).toBe(
      '| echo round trip, 64 B, 100 connections (server) | iomux (epoll, owning) | 5,000 | 100.00x | 9,000 |',
    );
    expect(lines[5]).toBe(
      '| fetch, Connection: close, against nginx/1 (client) | iomux fetchCoroutine (epoll) | 60,000 | 0.75x | 120,000 |',
    );
  });

  it('runs only where valgrind is installed, and says so otherwise', () => {
    const installed = spawnSync('valgrind', ['--version'], { stdio: 'ignore' }).status === 0;
    const why = instrUnavailable();
    if (installed) expect(why === null || why.startsWith('callgrind_control')).toBe(true);
    else expect(why).toBe('valgrind not found (bench/setup installs valgrind)');
  });
});
