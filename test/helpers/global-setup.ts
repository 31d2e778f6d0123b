/**
 * Once per test run: a directory for the C floors the bench suites compile
 * (IOMUX_FLOOR_DIR, inherited by the worker processes), removed at the end.
 * Workers are killed without running exit handlers, so they cannot clean up
 * after themselves.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'iomux-test-floors-'));
  process.env['IOMUX_FLOOR_DIR'] = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}
