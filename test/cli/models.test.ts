/** `iomux demo --models`: the notes' five I/O models side by side. */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

import { type ModelRow, modelsTable } from '../../src/cli/models.js';
import { IO_MODELS } from '../../src/fetch/index.js';
import { IoUring } from '../../src/sys/index.js';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

function iomux(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('iomux demo --models', () => {
  it('--json: one row per model, every page fetched, with numbers', () => {
    const r = iomux('demo', '--models', '--count', '6', '--latency', '20', '--json');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const { count, rows } = JSON.parse(r.stdout) as { count: number; rows: ModelRow[] };
    expect(count).toBe(6);
    expect(rows.map((row) => row.model)).toEqual(IO_MODELS);
    for (const row of rows) {
      if (row.model === 'io_uring' && !IoUring.available()) {
        expect(row.unavailable).toMatch(/io_uring/);
        continue;
      }
      expect(row).toMatchObject({ pages: 6, failed: 0, unavailable: null });
      for (const v of [row.wallMs, row.cpuMs, row.voluntarySwitches, row.involuntarySwitches]) {
        expect(Number.isFinite(v)).toBe(true);
      }
      expect(row.syscalls).toBeGreaterThan(0);
      expect(row.syscallsPerPage).toBe((row.syscalls ?? 0) / 6);
    }
    expect(rows.find((row) => row.model === 'blocking')?.inFlight).toBe(1);
    expect(rows.find((row) => row.model === 'signal-driven')?.inFlight).toBe(6);
    // Busy-polling asks again and again through each page's 20 ms; epoll sleeps through them.
    const perPage = (model: string): number => rows.find((row) => row.model === model)?.syscallsPerPage ?? 0;
    expect(perPage('non-blocking')).toBeGreaterThan(2 * perPage('epoll'));
  });

  it('prints the table, a line per model, and what each does', () => {
    const r = iomux('demo', '--models', '--count', '3', '--latency', '0', '--concurrency', '2');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const num = '[\\d.]+';
    for (const model of IO_MODELS) {
      if (model === 'io_uring' && !IoUring.available()) {
        expect(r.stdout).toMatch(/^io_uring\s+asynchronous\s+2\s+n\/a \(io_uring unavailable/m);
        continue;
      }
      const inFlight = model === 'blocking' || model === 'non-blocking' ? 1 : 2;
      const row = new RegExp(`^${model}\\s+[\\w/ -]+?\\s+${inFlight}(\\s+${num}){5}\\s+3\\s+0$`, 'm');
      expect(r.stdout).toMatch(row);
    }
    expect(r.stdout).toContain('O_ASYNC + F_SETSIG');
    expect(r.stdout).toContain('syscalls/page');
  });

  it('--help describes --models; the plain demo points to it', () => {
    const help = iomux('demo', '--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('--models');
    expect(help.stdout).toContain('signal-driven');
    expect(iomux('--help').stdout).toContain('--models');
  });
});

describe('iomux demo --json', () => {
  it('prints the styles demo rows as JSON too', () => {
    const r = iomux('demo', '--count', '2', '--latency', '0', '--json');
    expect(r.status).toBe(0);
    const { rows } = JSON.parse(r.stdout) as { rows: { style: string; pages: number; failed: number }[] };
    expect(rows).toHaveLength(10);
    for (const row of rows) expect(row).toMatchObject({ pages: 2, failed: 0 });
  });
});

describe('modelsTable', () => {
  it('says n/a for a model that did not run', () => {
    const row = (model: ModelRow['model'], unavailable: string | null): ModelRow => ({
      model,
      family: model === 'io_uring' ? 'asynchronous' : 'I/O multiplexing',
      inFlight: 4,
      unavailable,
      wallMs: unavailable === null ? 12.5 : null,
      cpuMs: unavailable === null ? 3 : null,
      pages: unavailable === null ? 4 : 0,
      failed: 0,
      syscalls: unavailable === null ? 40 : null,
      syscallsPerPage: unavailable === null ? 10 : null,
      voluntarySwitches: unavailable === null ? 2 : null,
      involuntarySwitches: unavailable === null ? 1 : null,
    });
    const text = modelsTable([row('epoll', null), row('io_uring', 'io_uring unavailable on this kernel')]);
    const lines = text.split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[2]).toMatch(/^epoll\s+I\/O multiplexing\s+4\s+12\.5\s+3\.0\s+10\.0\s+2\s+1\s+4\s+0$/);
    expect(lines[3]).toMatch(/^io_uring\s+asynchronous\s+4\s+n\/a \(io_uring unavailable on this kernel\)$/);
  });
});
