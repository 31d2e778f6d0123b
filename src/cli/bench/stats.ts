/**
 * Timing helpers shared by the benchmarks: fixed-duration samples after a
 * warm-up, and medians (the machine is noisy; a mean would follow outliers).
 */
import { readFileSync } from 'node:fs';

/** Median of a non-empty list. */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of an empty list');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/**
 * Nanoseconds per call of `op`: one warm-up sample, then `samples` samples
 * of about `sampleMs` each, calling `op` 16 times between clock reads — the
 * same loop shape as the C floor, so both pay the same clock overhead.
 */
export function sampleNsPerCall(op: () => void, samples: number, sampleMs: number): number[] {
  const results: number[] = [];
  const budget = BigInt(Math.round(sampleMs * 1e6));
  for (let s = -1; s < samples; s++) {
    const t0 = process.hrtime.bigint();
    let calls = 0;
    let elapsed = 0n;
    do {
      for (let rep = 0; rep < 16; rep++) op();
      calls += 16;
      elapsed = process.hrtime.bigint() - t0;
    } while (elapsed < budget);
    if (s >= 0) results.push(Number(elapsed) / calls);
  }
  return results;
}

/** "min-max" of the runs, rounded, for a table column that shows the spread behind a median. */
export function formatRange(values: readonly number[]): string {
  if (values.length === 0) return '-';
  const fmt = (v: number): string => Math.round(v).toLocaleString('en-US');
  return `${fmt(Math.min(...values))}-${fmt(Math.max(...values))}`;
}

/** CPU time (user + system) of a process's main thread, in microseconds (from /proc). */
export function mainThreadCpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1e6) / 100;
}
