/**
 * The soak's short form in CI: builds the harness (test/soak/*.ts) into a
 * temporary directory, runs it (`main.js --short`: every backend, owning and
 * cooperative, workers ending every way, the EMFILE child, through the fault
 * proxy) with a fixed seed, and checks its report. No timing assertion: the
 * work is bounded by counts, every deadline is minutes, and the report says
 * what happened, not how fast.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { FAULT_KINDS } from './relay.js';
import type { SoakReport } from './report.js';

const root = new URL('../..', import.meta.url).pathname;
const SEED = process.env['IOMUX_SOAK_SEED'] ?? '20261201';
// Minutes, for a loaded 2-core machine and the sanitizer build (2-5x slower).
const RUN_LIMIT_MS = 600_000;

let out = '';
let report: SoakReport;
let output = '';
let exitCode: number | null = null;

beforeAll(async () => {
  mkdirSync(join(root, 'test/soak/.out'), { recursive: true });
  out = mkdtempSync(join(root, 'test/soak/.out/test-'));
  const tsc = join(root, 'node_modules/typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', join(root, 'test/soak/tsconfig.json'), '--outDir', out], {
    stdio: 'inherit',
  });
  const json = join(out, 'report.json');
  const child = spawn(process.execPath, ['--expose-gc', join(out, 'main.js'), '--short'], {
    env: { ...process.env, IOMUX_SOAK_SEED: SEED, IOMUX_SOAK_JSON: json },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    output += d.toString();
  });
  // Past the limit: SIGTERM (the soak stops its peers), then SIGKILL.
  const killer = setTimeout(() => {
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 15_000).unref();
  }, RUN_LIMIT_MS);
  exitCode = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(killer);
  try {
    report = JSON.parse(readFileSync(json, 'utf8')) as SoakReport;
  } catch {
    throw new Error(`the soak ended (exit ${exitCode}) without a report:\n${output}`);
  }
}, RUN_LIMIT_MS + 60_000);

afterAll(() => {
  if (out !== '') rmSync(out, { recursive: true, force: true });
});

describe(`soak, short form (seed ${SEED})`, () => {
  it('passes: nothing lost, no fd leaked, RSS flat, nothing hung', () => {
    expect(report.failures, output).toEqual([]);
    expect(exitCode, output).toBe(0);
  });

  it('injects every kind of fault at least once', () => {
    for (const kind of FAULT_KINDS) expect(report.faults[kind] ?? 0, kind).toBeGreaterThan(0);
  });

  it('runs every backend in both modes, on the main thread and in the EMFILE child', () => {
    for (const backend of ['select', 'poll', 'epoll']) {
      for (const mode of ['owning', 'cooperative']) {
        expect(report.tally.exercised[`main ${backend} ${mode}`] ?? 0, `main ${backend} ${mode}`).toBeGreaterThan(0);
        expect(report.tally.exercised[`emfile ${backend} ${mode}`] ?? 0, `emfile ${backend} ${mode}`).toBeGreaterThan(
          0,
        );
        expect(
          report.tally.exercised[`worker started ${backend} ${mode}`] ?? 0,
          `worker ${backend} ${mode}`,
        ).toBeGreaterThan(0);
      }
    }
  });

  it('ends workers by return, process.exit() and terminate()', () => {
    for (const ending of ['return', 'exit', 'terminate']) {
      expect(report.tally.exercised[`worker ended by ${ending}`] ?? 0, ending).toBeGreaterThan(0);
    }
  });

  it('verified bytes by hash and ran every kind of operation', () => {
    const ops = report.tally.ops;
    expect(report.tally.bytesVerified).toBeGreaterThan(0);
    for (const kind of [
      'echo',
      'fetch',
      'timer fired',
      'timer cancelled',
      'task cancelled',
      'emfile echo',
      'emfile fetch',
    ]) {
      expect(ops[kind] ?? 0, kind).toBeGreaterThan(0);
    }
    expect(ops['waitFor timeout (sleep)'] ?? 0).toBeGreaterThan(0);
    expect(ops['waitFor timeout (recv)'] ?? 0).toBeGreaterThan(0);
    expect(ops['fetch to serve-epoll'] ?? 0).toBeGreaterThan(0);
    if (!report.nginx.startsWith('skipped')) expect(ops['fetch to nginx'] ?? 0).toBeGreaterThan(0);
  });

  it('saw EMFILE on both the accept and the connect path, and recovered', () => {
    expect(report.tally.errors['accept EMFILE'] ?? 0).toBeGreaterThan(0);
    expect(report.tally.errors['socket EMFILE'] ?? 0).toBeGreaterThan(0);
    expect(report.tally.errors['fetch EMFILE'] ?? 0).toBeGreaterThan(0);
  });

  it('reports fds and RSS at start, after warm-up and at the end', () => {
    const { start, warm, end } = report.samples;
    for (const s of [start, warm, end]) {
      expect(s.fds).toBeGreaterThan(0);
      expect(s.rssMiB).toBeGreaterThan(0);
    }
    expect(end.fds).toBeLessThanOrEqual(start.fds);
  });
});
