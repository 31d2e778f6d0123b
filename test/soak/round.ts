/**
 * One soak round: a fresh EventLoop on one backend, in one run mode, with
 * the echo, fetch and timer legs running at once on it, every operation
 * under a deadline (past it, the operation counts as hung: a failure). At
 * the end the loop's selector must hold no registration and the loop closes.
 */
import { type Coroutine, gather, TimeoutError, waitFor } from 'iomux/coro';
import { EventLoop, type SelectorName } from 'iomux/loop';

import { drawEchoJob, echoClient, startEchoServer } from './echo.js';
import type { ProxyPorts } from './fault-proxy.js';
import { countOutcome, type FetchTarget, fetchOnce, fetchOnceAsync } from './fetches.js';
import { Rng } from './prng.js';
import { bump, newTally, type Tally } from './tally.js';
import { timerLeg, timerLegAsync } from './timers.js';

/** The two ways to run a loop. */
export type RunMode = 'owning' | 'cooperative';

/** How much a round does (counts, never rates). */
export interface RoundSize {
  echoConnections: number;
  /** Echo clients in flight at once. */
  echoConcurrency: number;
  /** Largest echo payload in bytes. */
  maxPayload: number;
  fetches: number;
  timers: number;
}

/** Everything a round needs; plain data, so a worker can receive it. */
export interface RoundPlan {
  seed: number;
  backend: SelectorName;
  mode: RunMode;
  size: RoundSize;
  ports: ProxyPorts;
  targets: FetchTarget[];
  /** Where the round runs, for the report ("main", "worker"). */
  where: string;
  /** When set, process.exit(0) runs this long into the round, from a loop timer (a worker ending itself). */
  exitAfterMs?: number;
}

/** Past this an operation is hung (the fetchers' own limit is 60 s; stalls and SYN retries take seconds). */
export const OP_DEADLINE_MS = 120_000;

/** An operation that did not end with its own outcome: hung past the deadline, or threw. */
function broke(tally: Tally, what: string, error: unknown): void {
  if (error instanceof TimeoutError) tally.failures.push(`${what}: still running after ${OP_DEADLINE_MS} ms (hung)`);
  else tally.failures.push(`${what}: threw ${error instanceof Error ? error.stack : error}`);
}

function echoPlan(plan: RoundPlan, rng: Rng) {
  return (serverPort: number) =>
    Array.from({ length: plan.size.echoConnections }, (_, i) => {
      // The first three (they start together) and every fourth go through the backlog-1 listener.
      const proxyPort = i < 3 || i % 4 === 3 ? plan.ports.tight : plan.ports.dynamic;
      return drawEchoJob(rng, proxyPort, serverPort, plan.size.maxPayload);
    });
}

/** Runs `jobs` with at most `limit` in flight, each under the op deadline. */
function* bounded<T>(
  loop: EventLoop,
  items: readonly T[],
  limit: number,
  run: (item: T) => Coroutine<string> | Promise<string>,
  kind: string,
  tally: Tally,
): Coroutine<void> {
  let next = 0;
  function* lane(): Coroutine<void> {
    while (next < items.length) {
      const item = items[next++] as T;
      try {
        const outcome = yield* waitFor(run(item), OP_DEADLINE_MS);
        countOutcome(tally, kind, outcome);
      } catch (error) {
        broke(tally, kind, error);
      }
    }
  }
  const lanes = Array.from({ length: Math.min(limit, items.length) }, () => loop.createTask(lane()));
  yield* gather(...lanes);
}

function* legs(
  loop: EventLoop,
  plan: RoundPlan,
  tally: Tally,
  timers: () => Coroutine<void> | Promise<void>,
): Coroutine<void> {
  const rng = new Rng(plan.seed);
  const server = startEchoServer(loop, tally);
  const jobs = echoPlan(plan, rng.fork(1))(server.port);
  const clientRng = rng.fork(2);
  const targets = Array.from({ length: plan.size.fetches }, () => rng.pick(plan.targets));
  const fetchRun = (t: FetchTarget): Coroutine<string> | Promise<string> => {
    const port = plan.ports.routes[t.route];
    if (port === undefined) throw new Error(`no proxy route for ${t.route}`);
    return plan.mode === 'owning' ? fetchOnce(loop, port, t, tally) : fetchOnceAsync(loop, port, t, tally);
  };
  const echoes = loop.createTask(
    bounded(
      loop,
      jobs,
      plan.size.echoConcurrency,
      (job) => echoClient(loop, job, clientRng.fork(job.payload.length), tally),
      'echo',
      tally,
    ),
  );
  const fetches = loop.createTask(bounded(loop, targets, 3, fetchRun, 'fetch', tally));
  const timerTask = loop.createTask(timers());
  try {
    yield* waitFor(timerTask, OP_DEADLINE_MS);
  } catch (error) {
    broke(tally, 'timers', error);
  }
  yield* gather(echoes, fetches);
  yield* server.close(OP_DEADLINE_MS);
}

/** Runs one round to its end on the calling thread and returns its tally. */
export async function runRound(plan: RoundPlan): Promise<Tally> {
  const tally = newTally();
  const loop = new EventLoop({ selector: plan.backend });
  const timerRng = new Rng(plan.seed ^ 0x7133);
  if (plan.exitAfterMs !== undefined) loop.callLater(plan.exitAfterMs, () => process.exit(0));
  try {
    if (plan.mode === 'owning') {
      loop.runUntilComplete(legs(loop, plan, tally, () => timerLeg(loop, timerRng, plan.size.timers, tally)));
    } else {
      await loop.run(legs(loop, plan, tally, () => timerLegAsync(loop, timerRng, plan.size.timers, tally)));
    }
    const left = loop.selector.getMap().size;
    if (left > 0)
      tally.failures.push(`${plan.where} ${plan.backend} ${plan.mode}: ${left} fd(s) still registered after the round`);
    bump(tally.exercised, `${plan.where} ${plan.backend} ${plan.mode}`);
  } finally {
    loop.close();
  }
  return tally;
}
