/**
 * A worker thread of the soak: runs one round (round.ts) on its own loop and
 * ends in the way it was told: by returning, by process.exit() from a loop
 * timer part-way (RoundPlan.exitAfterMs), or by the parent's terminate()
 * after it says 'started'. Posts its tally when it gets to the end.
 */
import { parentPort, workerData } from 'node:worker_threads';

import { type RoundPlan, runRound } from './round.js';

/** What the parent hands a worker. */
export interface WorkerJob {
  plan: RoundPlan;
}

const { plan } = workerData as WorkerJob;
parentPort?.postMessage({ type: 'started' });
const tally = await runRound(plan);
parentPort?.postMessage({ type: 'result', tally });
