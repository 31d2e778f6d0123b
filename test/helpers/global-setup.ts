/**
 * Once per test run, so that no test ever runs against stale output:
 * - the native addon, when it is built here (build/ configured by node-gyp):
 *   `node-gyp build` is make, which recompiles only what changed in native/
 *   (a second or two when nothing did). Not under `npm run test:sanitize`,
 *   which has just built its own instrumented addon into build/;
 * - the TypeScript builds, dist/ (from scratch) and then bench/.build (the
 *   project's benchmarks, which run on dist/), for the tests that run them in
 *   child processes and worker threads (which cannot load TypeScript): they
 *   test the sources as they are now, never a stale build, and never a file
 *   whose source was since removed or renamed (tsc only adds and overwrites);
 * - a directory for the C floors the bench suites compile (IOMUX_FLOOR_DIR,
 *   inherited by the worker processes), removed at the end. Workers are
 *   killed without running exit handlers, so they cannot clean up after
 *   themselves.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url);

function run(script: string, args: string[]): void {
  try {
    execFileSync(process.execPath, [new URL(script, root).pathname, ...args], {
      cwd: root.pathname,
      stdio: ['ignore', 'pipe', 'pipe'],
      encoding: 'utf8',
    });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    process.stderr.write(`${stdout ?? ''}${stderr ?? ''}`);
    throw error;
  }
}

export default function setup(): () => void {
  if (existsSync(new URL('build/Makefile', root)) && process.env['IOMUX_SANITIZE'] !== '1') {
    run('node_modules/node-gyp/bin/node-gyp.js', ['build']);
  }
  rmSync(new URL('dist', root), { recursive: true, force: true });
  rmSync(new URL('bench/.build', root), { recursive: true, force: true });
  for (const project of ['tsconfig.build.json', 'bench/tsconfig.json']) {
    run('node_modules/typescript/bin/tsc', ['-p', project]);
  }
  const dir = mkdtempSync(join(tmpdir(), 'iomux-test-floors-'));
  process.env['IOMUX_FLOOR_DIR'] = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}
