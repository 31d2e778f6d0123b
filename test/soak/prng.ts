/**
 * A seeded PRNG (mulberry32) for the soak: every choice it makes (payload
 * sizes, fault kinds, endings of workers) comes from here, so a seed replays
 * the same plan (the kernel's timing still varies).
 */
export class Rng {
  #state: number;

  /** @param seed - any 32-bit integer */
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.next() * items.length)];
    if (item === undefined) throw new RangeError('pick from an empty array');
    return item;
  }

  /** `n` bytes derived from this generator (fast: one draw per 4 bytes). */
  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let i = 0;
    for (; i + 4 <= n; i += 4) out.writeUInt32LE(Math.floor(this.next() * 4294967296), i);
    for (; i < n; i++) out[i] = Math.floor(this.next() * 256);
    return out;
  }

  /** A new generator seeded from this one and `salt` (independent streams per round, worker...). */
  fork(salt: number): Rng {
    return new Rng(Math.floor(this.next() * 4294967296) ^ Math.imul(salt + 1, 0x9e3779b1));
  }
}

/** The soak's seed: IOMUX_SOAK_SEED (decimal), else a random one. */
export function soakSeed(env: NodeJS.ProcessEnv = process.env): number {
  const text = env['IOMUX_SOAK_SEED'];
  if (text !== undefined && text !== '' && text !== 'random') {
    const seed = Number(text);
    if (!Number.isInteger(seed)) throw new Error(`IOMUX_SOAK_SEED must be an integer, not ${text}`);
    return seed >>> 0;
  }
  return Math.floor(Math.random() * 4294967296) >>> 0;
}
