/**
 * Readiness callbacks inside a Node app: a pipe ping-pong. Two pipes; each
 * side's readiness callback reads one byte and writes one byte to the other
 * pipe. Measures callbacks per second for:
 *
 * - iomux in cooperative mode (addReader), on epoll, poll and select;
 * - npm `epoll` (fivdi's binding, what Node users had): its callbacks hop
 *   from a helper thread through uv_async for every event.
 */
import { createRequire } from 'node:module';
import { median } from '#iomux/cli/bench/stats.js';
import { EventLoop, type SelectorName } from '#iomux/loop/index.js';
import { close, pipe, read, write } from '#iomux/sys/index.js';

export interface PingPongResult {
  name: string;
  /** Median readiness callbacks per second. */
  eventsPerSecond: number;
}

async function iomuxPingPong(selector: SelectorName, durationMs: number): Promise<number> {
  const loop = new EventLoop({ selector });
  const [r1, w1] = pipe();
  const [r2, w2] = pipe();
  const one = Buffer.alloc(1);
  let events = 0;
  try {
    return await loop.run(async () => {
      const done = loop.createFuture<number>();
      const t0 = performance.now();
      loop.addReader(r1, () => {
        read(r1, one);
        events++;
        write(w2, one);
      });
      loop.addReader(r2, () => {
        read(r2, one);
        events++;
        write(w1, one);
      });
      loop.callLater(durationMs, () => {
        loop.removeReader(r1);
        loop.removeReader(r2);
        done.setResult((events * 1000) / (performance.now() - t0));
      });
      write(w1, one);
      return await done;
    });
  } finally {
    loop.close();
    for (const fd of [r1, w1, r2, w2]) close(fd);
  }
}

interface NpmEpoll {
  add(fd: number, events: number): NpmEpoll;
  remove(fd: number): NpmEpoll;
  close(): void;
}
interface NpmEpollModule {
  Epoll: (new (callback: (err: Error | null, fd: number, events: number) => void) => NpmEpoll) & { EPOLLIN: number };
}

/** npm `epoll`, or null when it is not installed (it is a devDependency of the benchmarks only). */
function loadNpmEpoll(): NpmEpollModule | null {
  try {
    return createRequire(import.meta.url)('epoll') as NpmEpollModule;
  } catch {
    return null;
  }
}

function npmEpollPingPong(mod: NpmEpollModule, durationMs: number): Promise<number> {
  const [r1, w1] = pipe();
  const [r2, w2] = pipe();
  const one = Buffer.alloc(1);
  let events = 0;
  let stopped = false;
  const t0 = performance.now();
  const poller = new mod.Epoll((err, fd) => {
    if (err !== null || stopped) return;
    read(fd, one);
    events++;
    write(fd === r1 ? w2 : w1, one);
  });
  poller.add(r1, mod.Epoll.EPOLLIN).add(r2, mod.Epoll.EPOLLIN);
  write(w1, one);
  return new Promise((resolve) => {
    setTimeout(() => {
      stopped = true;
      const rate = (events * 1000) / (performance.now() - t0);
      poller.remove(r1).remove(r2).close();
      for (const fd of [r1, w1, r2, w2]) close(fd);
      resolve(rate);
    }, durationMs);
  });
}

/** Runs each variant `runs` times and reports medians; npm epoll only when installed. */
export async function runPingPongBench(durationMs: number, runs: number): Promise<PingPongResult[]> {
  const variants: [string, () => Promise<number>][] = [
    ['iomux cooperative, epoll', () => iomuxPingPong('epoll', durationMs)],
    ['iomux cooperative, poll', () => iomuxPingPong('poll', durationMs)],
    ['iomux cooperative, select', () => iomuxPingPong('select', durationMs)],
  ];
  const npm = loadNpmEpoll();
  if (npm !== null) variants.push(['npm epoll (fivdi)', () => npmEpollPingPong(npm, durationMs)]);
  const samples = new Map<string, number[]>();
  for (let run = 0; run < runs; run++) {
    for (const [name, measure] of variants) samples.set(name, [...(samples.get(name) ?? []), await measure()]);
  }
  return variants.map(([name]) => ({ name, eventsPerSecond: median(samples.get(name) ?? [0]) }));
}

/** A markdown table, each figure against npm epoll's. */
export function formatPingPongTable(results: readonly PingPongResult[]): string {
  const base = results.find((r) => r.name.startsWith('npm'));
  const rows = ['| readiness callbacks | events/s | vs npm epoll |', '|---|---:|---:|'];
  for (const r of results) {
    const ratio = base === undefined ? 'not installed' : `${(r.eventsPerSecond / base.eventsPerSecond).toFixed(1)}x`;
    rows.push(`| ${r.name} | ${Math.round(r.eventsPerSecond).toLocaleString('en-US')} | ${ratio} |`);
  }
  return rows.join('\n');
}
