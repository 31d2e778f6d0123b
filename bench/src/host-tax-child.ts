/**
 * One measurement of `host-tax.ts`, in a process of its own: the host
 * application's promise-heavy code, timed in one of three settings.
 *
 * - `plain`: iomux is never imported;
 * - `alive`: an iomux cooperative loop runs an async Task that stays
 *   pending (awaiting a Future) for the whole measurement;
 * - `ended`: an async Task ran to its end before the measurement.
 *
 * argv: mode rounds; prints the median milliseconds per round as JSON.
 */

type Mode = 'plain' | 'alive' | 'ended';

/**
 * The host's code: a long await chain and fan-outs of short ones, as a
 * promise-heavy server does (about 50 ms per round on the reference VM).
 */
async function hostWork(): Promise<number> {
  let sum = 0;
  for (let i = 0; i < 100_000; i++) sum += await Promise.resolve(i);
  const chain = async (n: number): Promise<number> => {
    let s = 0;
    for (let i = 0; i < n; i++) s += await Promise.resolve(i);
    return s;
  };
  for (let k = 0; k < 20; k++) {
    const parts = await Promise.all(Array.from({ length: 100 }, (_, i) => chain(20 + (i % 5))));
    for (const p of parts) sum += p;
  }
  return sum;
}

async function measure(rounds: number): Promise<number> {
  for (let i = 0; i < 3; i++) await hostWork(); // warm-up
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    await hostWork();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1] as number;
}

async function main(): Promise<void> {
  const mode = process.argv[2] as Mode;
  const rounds = Number(process.argv[3] ?? '15');
  let ms: number;
  // Every mode measures from a callback of Node's event loop, not from the
  // module's first evaluation (which runs the same code markedly slower).
  await new Promise((resolve) => setImmediate(resolve));
  if (mode === 'plain') {
    ms = await measure(rounds);
  } else {
    const { EventLoop } = await import('#iomux/loop/index.js');
    const loop = new EventLoop();
    if (mode === 'ended') {
      await loop.run(async () => {
        await loop.createTask(async () => 1);
      });
      ms = await measure(rounds);
    } else {
      const release = loop.createFuture<void>();
      let started: () => void = () => {};
      const running = new Promise<void>((resolve) => {
        started = resolve;
      });
      const run = loop.run(async () => {
        started();
        await release; // an async Task pending throughout
      });
      await running;
      ms = await measure(rounds);
      release.setResult(undefined);
      await run;
    }
    loop.close();
  }
  process.stdout.write(`${JSON.stringify({ mode, ms })}\n`);
}

await main();
