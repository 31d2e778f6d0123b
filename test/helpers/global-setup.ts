/**
 * Once per test run:
 * - the TypeScript build (dist/), for the tests that run it in child
 *   processes and worker threads (which cannot load TypeScript): they test
 *   the sources as they are now, never a stale build;
 * - a directory for the C floors the bench suites compile (IOMUX_FLOOR_DIR,
 *   inherited by the worker processes), removed at the end. Workers are
 *   killed without running exit handlers, so they cannot clean up after
 *   themselves.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url);

export default function setup(): () => void {
  const tsc = new URL('node_modules/typescript/bin/tsc', root).pathname;
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root.pathname, stdio: 'inherit' });
  const dir = mkdtempSync(join(tmpdir(), 'iomux-test-floors-'));
  process.env['IOMUX_FLOOR_DIR'] = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}
