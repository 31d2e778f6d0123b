/**
 * The soak: `npm run soak` (long form, IOMUX_SOAK_SECONDS, default 300) or
 * `node main.js --short` (the CI form: the minimum work only). Echo, fetch,
 * timers and cancellations at once on every backend, owning and cooperative,
 * on the main thread and in worker threads that start and end, through the
 * fault proxy; the EMFILE leg in a child process. Prints the report, writes
 * it as JSON to IOMUX_SOAK_JSON when set, exits 1 on any failure.
 *
 * Environment: IOMUX_SOAK_SEED (else random, printed), IOMUX_SOAK_SECONDS,
 * IOMUX_SOAK_JSON.
 */
import { writeFileSync } from 'node:fs';
import { setImmediate as immediate } from 'node:timers/promises';

import type { SelectorName } from 'iomux/loop';

import { runEmfileLeg } from './emfile.js';
import type { FetchTarget } from './fetches.js';
import { Rng, soakSeed } from './prng.js';
import { sample } from './probe.js';
import { formatReport, type SoakReport, verdict } from './report.js';
import { type RoundPlan, type RoundSize, type RunMode, runRound } from './round.js';
import {
  embeddedPaths,
  nginxFiles,
  type Peer,
  startEmbedded,
  startNginxPeer,
  startProxy,
  targetsFor,
} from './servers.js';
import { bump, mergeTally, newTally } from './tally.js';
import { runWorker } from './workers.js';

const BACKENDS: SelectorName[] = ['select', 'poll', 'epoll'];
const MODES: RunMode[] = ['owning', 'cooperative'];

// Rounds are bounded by these counts, not by rates; the short form's are smaller.
const MAIN_SIZE: RoundSize = {
  echoConnections: 12,
  echoConcurrency: 6,
  maxPayload: 128 * 1024,
  fetches: 8,
  timers: 64,
};
const WORKER_SIZE: RoundSize = {
  echoConnections: 6,
  echoConcurrency: 3,
  maxPayload: 64 * 1024,
  fetches: 4,
  timers: 32,
};
const SHORT_MAIN_SIZE: RoundSize = {
  echoConnections: 8,
  echoConcurrency: 4,
  maxPayload: 64 * 1024,
  fetches: 6,
  timers: 48,
};
const SHORT_WORKER_SIZE: RoundSize = {
  echoConnections: 4,
  echoConcurrency: 2,
  maxPayload: 32 * 1024,
  fetches: 3,
  timers: 24,
};

async function main(): Promise<number> {
  const short = process.argv.includes('--short');
  const seconds = short ? 0 : Number(process.env['IOMUX_SOAK_SECONDS'] ?? 300);
  if (!Number.isFinite(seconds) || seconds < 0) throw new Error('IOMUX_SOAK_SECONDS must be a number of seconds');
  const seed = soakSeed();
  console.log(
    `iomux soak: seed ${seed} (IOMUX_SOAK_SEED=${seed} replays it), ${short ? 'short form' : `${seconds} s`}`,
  );
  const rng = new Rng(seed);
  const mainSize = short ? SHORT_MAIN_SIZE : MAIN_SIZE;
  const workerSize = short ? SHORT_WORKER_SIZE : WORKER_SIZE;
  const t0 = performance.now();
  const elapsed = (): number => (performance.now() - t0) / 1000;

  const peers: Peer[] = [];
  let proxy: Awaited<ReturnType<typeof startProxy>> | null = null;
  try {
    for (const backend of BACKENDS) peers.push(await startEmbedded(backend));
    const { files, paths } = nginxFiles(rng.fork(1));
    const nginx = await startNginxPeer(files);
    if (nginx !== null) peers.push(nginx);
    const nginxNote = nginx === null ? 'skipped (not installed: bash bench/setup installs it)' : nginx.version;
    if (nginx === null) console.log('iomux soak: nginx is not installed, the nginx part is skipped');
    const targets: FetchTarget[] = [];
    for (const peer of peers) {
      targets.push(
        ...(await targetsFor(peer, peer.name === 'nginx' ? paths : embeddedPaths(rng.fork(peers.indexOf(peer))))),
      );
    }
    proxy = await startProxy(seed, Object.fromEntries(peers.map((p) => [p.name, p.port])));
    // Killed (a CI timeout): take the peer processes along.
    const stopPeers = (signal: NodeJS.Signals): void => {
      void Promise.allSettled([proxy?.stop(), ...peers.map((p) => p.stop())]).then(() =>
        process.kill(process.pid, signal),
      );
    };
    process.once('SIGTERM', stopPeers);
    process.once('SIGINT', stopPeers);
    const base = { ports: proxy.ports, targets };

    const start = sample();
    const tally = newTally();
    let mainDone = false;
    let cycle = 0;
    let warm = start;

    const mainRounds = async (): Promise<void> => {
      try {
        // At least two cycles (the first is the warm-up); then until the time is up.
        for (cycle = 0; cycle < 2 || elapsed() < seconds; cycle++) {
          for (const backend of BACKENDS) {
            for (const mode of MODES) {
              const seedOfRound = Math.floor(rng.next() * 2 ** 32);
              const plan: RoundPlan = { ...base, seed: seedOfRound, backend, mode, size: mainSize, where: 'main' };
              try {
                mergeTally(tally, await runRound(plan));
              } catch (error) {
                // The loop itself failed (runUntilComplete or run threw): a failure, and the soak goes on.
                const what = error instanceof Error ? error.stack : error;
                tally.failures.push(`main ${backend} ${mode}: the round threw ${what}`);
              }
              await immediate(); // let workers' messages in between owning rounds
            }
          }
          if (cycle === 0) warm = sample();
          console.log(`iomux soak: cycle ${cycle + 1} done at ${elapsed().toFixed(1)} s`);
        }
      } finally {
        // Whatever happened, the worker and EMFILE legs stop after their current run.
        mainDone = true;
      }
    };
    const workerRng = rng.fork(2);
    const workers = async (): Promise<void> => {
      for (let i = 0; !mainDone || i < 6; i++) await runWorker(i, workerRng, base, workerSize, tally);
    };
    const emfileRng = rng.fork(3);
    const emfile = async (): Promise<void> => {
      do {
        mergeTally(
          tally,
          await runEmfileLeg({ seed: Math.floor(emfileRng.next() * 2 ** 32), backends: BACKENDS, modes: MODES }),
        );
      } while (!short && !mainDone);
    };
    await Promise.all([mainRounds(), workers(), emfile()]);

    const end = sample();
    const proxyReport = await proxy.report();
    const faults: Record<string, number> = { ...proxyReport.injected };
    bump(faults, 'emfile', tally.ops['emfile exhaust'] ?? 0);
    const partial: Omit<SoakReport, 'failures'> = {
      seed,
      form: short ? 'short' : 'long',
      seconds,
      elapsedSeconds: elapsed(),
      nginx: nginxNote,
      tally,
      faults,
      proxy: proxyReport,
      samples: { start, warm, end },
    };
    const report: SoakReport = { ...partial, failures: verdict(partial) };
    console.log(formatReport(report));
    const json = process.env['IOMUX_SOAK_JSON'];
    if (json !== undefined && json !== '') writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
    return report.failures.length === 0 ? 0 : 1;
  } finally {
    await proxy?.stop();
    for (const peer of peers) await peer.stop();
  }
}

process.exitCode = await main().catch((error: unknown) => {
  console.error('iomux soak: could not run:', error);
  return 2;
});
