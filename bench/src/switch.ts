/**
 * What a coroutine switch costs: resuming a generator Task against resuming
 * an async function on a resolved promise, with 1,000 coroutines each
 * switching `rounds` times (so the loop's per-iteration wait is shared, as in
 * a busy server).
 *
 * - generator, ready Future: `yield* fut` on a done Future (asyncio: no suspension)
 * - generator, bare yield: the Task suspends and the loop resumes it next iteration
 * - async, resolved promise: `await p` (a microtask resumes it)
 */

import { median } from '#iomux/cli/bench/stats.js';
import type { Coroutine } from '#iomux/coro/index.js';
import { EventLoop } from '#iomux/loop/index.js';

export interface SwitchResult {
  name: string;
  /** Median nanoseconds per resume. */
  ns: number;
}

const COROUTINES = 1000;

function timeGenerators(rounds: number, body: (loop: EventLoop) => Coroutine<void>): number {
  const loop = new EventLoop({ selector: 'epoll' });
  try {
    const t0 = process.hrtime.bigint();
    const tasks = Array.from({ length: COROUTINES }, () => loop.createTask(body(loop)));
    function* all(): Coroutine<void> {
      for (const t of tasks) yield* t;
    }
    loop.runUntilComplete(all());
    return Number(process.hrtime.bigint() - t0) / (COROUTINES * rounds);
  } finally {
    loop.close();
  }
}

async function timeAsync(rounds: number): Promise<number> {
  const resolved = Promise.resolve(1);
  async function body(): Promise<void> {
    for (let i = 0; i < rounds; i++) await resolved;
  }
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: COROUTINES }, body));
  return Number(process.hrtime.bigint() - t0) / (COROUTINES * rounds);
}

/** Runs each variant `runs` times (after one warm-up) and reports medians. */
export async function runSwitchBench(rounds: number, runs: number): Promise<SwitchResult[]> {
  const readyFuture = (loop: EventLoop): Coroutine<void> =>
    (function* (): Coroutine<void> {
      const done = loop.createFuture<number>();
      done.setResult(1);
      for (let i = 0; i < rounds; i++) yield* done;
    })();
  const bareYield = (): Coroutine<void> =>
    (function* (): Coroutine<void> {
      for (let i = 0; i < rounds; i++) yield;
    })();
  const variants: [string, () => Promise<number> | number][] = [
    ['generator Task, yield* on a ready Future', () => timeGenerators(rounds, readyFuture)],
    ['generator Task, suspended and resumed by the loop (bare yield)', () => timeGenerators(rounds, bareYield)],
    ['async function, await on a resolved promise', () => timeAsync(rounds)],
  ];
  const results: SwitchResult[] = [];
  for (const [name, run] of variants) {
    await run();
    const samples: number[] = [];
    for (let i = 0; i < runs; i++) samples.push(await run());
    results.push({ name, ns: median(samples) });
  }
  return results;
}

/** A markdown table, each figure against the async function's. */
export function formatSwitchTable(results: readonly SwitchResult[]): string {
  const base = results.find((r) => r.name.startsWith('async'));
  const rows = ['| resume | ns | vs async/await |', '|---|---:|---:|'];
  for (const r of results) {
    rows.push(`| ${r.name} | ${r.ns.toFixed(1)} | ${base === undefined ? '-' : `${(r.ns / base.ns).toFixed(2)}x`} |`);
  }
  return rows.join('\n');
}
