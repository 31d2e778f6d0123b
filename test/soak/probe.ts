/** What the soak samples of its own process: open fds and resident memory. */
import { readdirSync } from 'node:fs';

/** One sample. */
export interface Sample {
  fds: number;
  /** Resident set size in MiB, after a full GC when Node runs with --expose-gc. */
  rssMiB: number;
}

/** Counts /proc/self/fd (before any GC, so a socket left to the collector shows), then RSS after GC. */
export function sample(): Sample {
  const fds = readdirSync('/proc/self/fd').length;
  (globalThis as { gc?: () => void }).gc?.();
  return { fds, rssMiB: Math.round((process.memoryUsage.rss() / 1048576) * 10) / 10 };
}
