/**
 * The worker leg: worker threads that start, run a round on their own loop
 * and end, one after another while the main thread runs its rounds: each
 * backend and run mode, ending by return, by process.exit() inside the
 * worker, and by terminate() from here. Their fds live in this process, so
 * the soak's fd count at the end shows whether an ending leaked any.
 */
import { Worker } from 'node:worker_threads';

import type { SelectorName } from 'iomux/loop';

import type { Rng } from './prng.js';
import type { RoundPlan, RoundSize, RunMode } from './round.js';
import { bump, mergeTally, type Tally } from './tally.js';

/** How a worker ends. */
export type Ending = 'return' | 'exit' | 'terminate';

const BACKENDS: SelectorName[] = ['select', 'poll', 'epoll'];
const MODES: RunMode[] = ['owning', 'cooperative'];
const ENDINGS: Ending[] = ['return', 'exit', 'terminate'];

/** A worker may take this long in all before it counts as hung. */
const WORKER_DEADLINE_MS = 180_000;

/** The i-th worker's backend, mode and ending: the first six cover every one of each. */
export function workerShape(i: number, rng: Rng): { backend: SelectorName; mode: RunMode; ending: Ending } {
  if (i < 6) {
    return {
      backend: BACKENDS[i % 3] as SelectorName,
      mode: MODES[i % 2] as RunMode,
      ending: ENDINGS[Math.floor(i / 2) % 3] as Ending,
    };
  }
  return { backend: rng.pick(BACKENDS), mode: rng.pick(MODES), ending: rng.pick(ENDINGS) };
}

/** Runs one worker to its end; adds what it reports (and how it ended) to `tally`. */
export async function runWorker(
  i: number,
  rng: Rng,
  base: Omit<RoundPlan, 'backend' | 'mode' | 'where' | 'seed' | 'size'>,
  size: RoundSize,
  tally: Tally,
): Promise<void> {
  const { backend, mode, ending } = workerShape(i, rng);
  const plan: RoundPlan = { ...base, size, seed: Math.floor(rng.next() * 2 ** 32), backend, mode, where: 'worker' };
  if (ending === 'exit') plan.exitAfterMs = rng.int(20, 600);
  const worker = new Worker(new URL('./worker-entry.js', import.meta.url), { workerData: { plan } });
  let result: Tally | null = null;
  const watchdog = setTimeout(() => {
    tally.failures.push(`worker ${i} (${backend} ${mode} ${ending}): hung for ${WORKER_DEADLINE_MS} ms`);
    void worker.terminate();
  }, WORKER_DEADLINE_MS);
  worker.on('message', (m: { type: string; tally?: Tally }) => {
    if (m.type === 'result' && m.tally !== undefined) result = m.tally;
    if (m.type === 'started' && ending === 'terminate') {
      setTimeout(() => void worker.terminate(), rng.int(20, 300));
    }
  });
  worker.on('error', (error) => tally.failures.push(`worker ${i} (${backend} ${mode} ${ending}): ${error}`));
  const code = await new Promise<number>((resolve) => worker.once('exit', resolve));
  clearTimeout(watchdog);
  if (result !== null) mergeTally(tally, result);
  const how = result !== null ? 'ran to the end' : ending === 'exit' ? 'exited part-way' : 'terminated part-way';
  bump(tally.ops, `worker ${how}`);
  bump(tally.exercised, `worker started ${backend} ${mode}`);
  bump(tally.exercised, `worker ended by ${ending}`);
  if (ending !== 'terminate' && code !== 0)
    tally.failures.push(`worker ${i} (${backend} ${mode} ${ending}): exit code ${code}`);
}
