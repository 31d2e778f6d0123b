/**
 * No tax on the host application: the app that imports iomux must not pay
 * for it in its own code. Promise-heavy host code (await chains and
 * fan-outs, no I/O) is timed in a fresh process each time (host-tax-child.ts):
 * without iomux, with an iomux async Task alive, and after one ended. Runs
 * are interleaved; each figure is the median over runs of the child's median.
 *
 * Why it matters: before Node 24, AsyncLocalStorage (which an async Task
 * uses to know itself across its awaits) turns on promise hooks, and every
 * promise in the process pays while they are on.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { median } from '#iomux/cli/bench/stats.js';

/** How the host code ran. */
export type TaxMode = 'plain' | 'alive' | 'ended';

export interface TaxResult {
  mode: TaxMode;
  /** What the mode means, for the table. */
  name: string;
  /** Median milliseconds per round of the host's work. */
  ms: number;
}

const NAMES: Record<TaxMode, string> = {
  plain: 'without iomux',
  alive: 'with an iomux async Task alive',
  ended: 'after an iomux async Task ended',
};

function runChild(node: string, mode: TaxMode, rounds: number): number {
  const child = fileURLToPath(new URL('./host-tax-child.js', import.meta.url));
  const r = spawnSync(node, [child, mode, String(rounds)], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`host-tax child (${mode}) failed: ${r.stderr || r.error?.message}`);
  const line = r.stdout.trim().split('\n').at(-1) ?? '';
  return (JSON.parse(line) as { ms: number }).ms;
}

/**
 * Runs each mode `runs` times, interleaved, with `node` (default: this one).
 *
 * @returns a result per mode, `plain` first
 */
export function runHostTaxBench(runs: number, rounds: number, node = process.execPath): TaxResult[] {
  const modes: TaxMode[] = ['plain', 'alive', 'ended'];
  const samples = new Map<TaxMode, number[]>(modes.map((m) => [m, []]));
  for (let i = 0; i < runs; i++) {
    for (const mode of modes) samples.get(mode)?.push(runChild(node, mode, rounds));
  }
  return modes.map((mode) => ({ mode, name: NAMES[mode], ms: median(samples.get(mode) ?? []) }));
}

/** The table: ms per round and the ratio to the host without iomux. */
export function formatHostTaxTable(results: readonly TaxResult[], nodeVersion: string): string {
  const plain = results.find((r) => r.mode === 'plain')?.ms ?? Number.NaN;
  const lines = [
    `| host code (Node ${nodeVersion}) | ms per round | vs without iomux |`,
    '|---|---:|---:|',
    ...results.map((r) => `| ${r.name} | ${r.ms.toFixed(2)} | ${(r.ms / plain).toFixed(2)}x |`),
  ];
  return lines.join('\n');
}
