/**
 * The soak's report: what ran, what the fault proxy injected, what every
 * operation ended with, and the process's fds and RSS at start, after the
 * warm-up and at the end; with the verdict (the list of failures).
 */
import type { ProxyReport } from './fault-proxy.js';
import type { Sample } from './probe.js';
import { FAULT_KINDS } from './relay.js';
import type { Tally } from './tally.js';

/** RSS at the end may exceed the warm-up's by this factor plus this many MiB. */
export const RSS_GROWTH_FACTOR = 1.5;
export const RSS_GROWTH_MIB = 128;

/** Everything the soak found; written as JSON for the test, printed as text for people. */
export interface SoakReport {
  seed: number;
  form: 'short' | 'long';
  /** The configured duration in seconds (the minimum work runs whatever it is). */
  seconds: number;
  elapsedSeconds: number;
  /** nginx's version, or why the nginx part was skipped. */
  nginx: string;
  tally: Tally;
  /** Faults that struck, by kind, with the proxy's own counts. */
  faults: Record<string, number>;
  proxy: ProxyReport;
  samples: { start: Sample; warm: Sample; end: Sample };
  /** Everything that failed the soak; empty when it passed. */
  failures: string[];
}

/** Adds the soak-wide checks (fd leak, RSS growth, fault kinds missing) to the tally's failures. */
export function verdict(report: Omit<SoakReport, 'failures'>): string[] {
  const failures = [...report.tally.failures];
  const { start, warm, end } = report.samples;
  if (end.fds > start.fds) failures.push(`fds: ${end.fds} open at the end, ${start.fds} at the start (leak)`);
  const bound = warm.rssMiB * RSS_GROWTH_FACTOR + RSS_GROWTH_MIB;
  if (end.rssMiB > bound)
    failures.push(`RSS: ${end.rssMiB} MiB at the end, over ${bound} MiB (warm-up ${warm.rssMiB} MiB)`);
  for (const kind of FAULT_KINDS) {
    if ((report.faults[kind] ?? 0) === 0) failures.push(`fault ${kind}: never injected`);
  }
  return failures;
}

function table(map: Record<string, number>): string {
  const rows = Object.entries(map).sort(([a], [b]) => a.localeCompare(b));
  if (rows.length === 0) return '  (none)\n';
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, n]) => `  ${k.padEnd(width)}  ${n.toLocaleString('en-US')}\n`).join('');
}

/** The report as text. */
export function formatReport(r: SoakReport): string {
  const s = r.samples;
  let out = `# iomux soak (${r.form}), seed ${r.seed}\n\n`;
  out += `ran ${r.elapsedSeconds.toFixed(1)} s (configured ${r.seconds} s); nginx: ${r.nginx}\n`;
  out += `bytes verified by SHA-256: ${r.tally.bytesVerified.toLocaleString('en-US')}\n\n`;
  out += `          fds   RSS MiB\n`;
  for (const [name, x] of [
    ['start', s.start],
    ['warm-up', s.warm],
    ['end', s.end],
  ] as const) {
    out += `  ${name.padEnd(8)}${String(x.fds).padStart(4)}   ${x.rssMiB.toFixed(1).padStart(7)}\n`;
  }
  out += `\n## operations\n${table(r.tally.ops)}`;
  out += `\n## errors by code (expected under faults; none is a failure by itself)\n${table(r.tally.errors)}`;
  out += `\n## faults injected (proxy: ${r.proxy.connections.toLocaleString('en-US')} connections)\n${table(r.faults)}`;
  out += `\n## proxy's socket errors\n${table(r.proxy.errors)}`;
  out += `\n## exercised (rounds that ran to the end)\n${table(r.tally.exercised)}`;
  if (r.failures.length === 0) out += '\nPASS: nothing lost, no fd leaked, RSS flat after warm-up, no operation hung\n';
  else
    out += `\nFAIL (seed ${r.seed}, rerun with IOMUX_SOAK_SEED=${r.seed}):\n${r.failures.map((f) => `  - ${f}\n`).join('')}`;
  return out;
}
