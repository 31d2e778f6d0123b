/**
 * The C floor programs (native/floor: multiplex.c for `iomux bench sys`,
 * echo-client.c for `iomux bench c10k`), compiled on the fly with the
 * machine's C compiler and run as child processes, so their figures come
 * from the same machine in the same run as the TypeScript ones. The
 * package ships their sources; the project's own benchmarks (bench/)
 * compile theirs here too.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where the C floor sources are: native/floor, from src/cli/bench and from dist/cli/bench alike. */
export const FLOOR_DIR = fileURLToPath(new URL('../../../native/floor/', import.meta.url));

export type FloorBackend = 'select' | 'poll' | 'epoll' | 'epoll_ctl';

/** One floor measurement: ns per wait for each sample, or why there is none. */
export type FloorResult = { samplesNs: number[] } | { error: string };

// The binaries this process compiled, in one temporary directory that is
// removed when the process exits (each suite used to leave one behind). With
// IOMUX_FLOOR_DIR set, the directory is made inside that one instead, and
// whoever set it removes it: the test suite does, because its worker
// processes are killed without running exit handlers.
const built = new Map<string, { path: string } | { error: string }>();
let buildDir: string | null = null;

function ownBuildDir(): string {
  if (buildDir === null) {
    const parent = process.env['IOMUX_FLOOR_DIR'];
    if (parent !== undefined && parent !== '') {
      buildDir = mkdtempSync(join(parent, 'floor-'));
    } else {
      const dir = mkdtempSync(join(tmpdir(), 'iomux-floor-'));
      process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
      buildDir = dir;
    }
  }
  return buildDir;
}

/** How {@link buildC} compiles: where the source is, what to call the output, the flags. */
export interface BuildOptions {
  /** The folder of `<name>.c` (default {@link FLOOR_DIR}). */
  dir?: string;
  /** The output's file name (default `<name>`). */
  output?: string;
  /** Flags besides `-O2 -Wall -Wextra -Werror -I FLOOR_DIR` (default `-pthread`). */
  flags?: readonly string[];
  /** Libraries to link, after the source (e.g. `-lssl`): a linker that drops unused ones needs them there. */
  libs?: readonly string[];
}

/**
 * Compiles `<dir>/<name>.c` with `cc -O2`, once per process and output.
 * `floor.h` (in {@link FLOOR_DIR}) is on the include path of every source.
 * Returns the binary's path, or the reason there is none (no C compiler).
 */
export function buildC(name: string, options: BuildOptions = {}): { path: string } | { error: string } {
  const output = options.output ?? name;
  return buildOnce(output, () =>
    compile(join(options.dir ?? FLOOR_DIR, `${name}.c`), output, options.flags ?? ['-pthread'], options.libs ?? []),
  );
}

function buildOnce(
  output: string,
  make: () => { path: string } | { error: string },
): { path: string } | { error: string } {
  const known = built.get(output);
  if (known !== undefined) return known;
  const result = make();
  built.set(output, result);
  return result;
}

function compile(
  source: string,
  output: string,
  flags: readonly string[],
  libs: readonly string[],
): { path: string } | { error: string } {
  const out = join(ownBuildDir(), output);
  for (const cc of [process.env['CC'], 'cc', 'gcc', 'clang']) {
    if (cc === undefined || cc === '') continue;
    const args = ['-O2', '-Wall', '-Wextra', '-Werror', '-I', FLOOR_DIR, ...flags, '-o', out, source, ...libs];
    const r = spawnSync(cc, args, { encoding: 'utf8' });
    if (r.error === undefined && r.status === 0) return { path: out };
    if (r.error === undefined) return { error: `${cc} failed: ${r.stderr.trim()}` };
  }
  return { error: 'no C compiler (cc, gcc or clang) found' };
}

/** Compiles the select/poll/epoll floor (native/floor/multiplex.c). */
export function buildFloor(): { path: string } | { error: string } {
  return buildC('multiplex');
}

/**
 * Runs the floor for one point. `threads` idle threads make it a
 * multi-threaded process like Node's, where the kernel's per-fd cost is
 * higher (see multiplex.c).
 */
export function runFloor(
  binary: string,
  backend: FloorBackend,
  n: number,
  k: number,
  samples: number,
  sampleMs: number,
  threads = 0,
): FloorResult {
  const r = spawnSync(binary, [backend, String(n), String(k), String(samples), String(sampleMs), String(threads)], {
    encoding: 'utf8',
  });
  if (r.status !== 0) return { error: `floor exited ${r.status}: ${r.stderr.trim()}` };
  const parsed = JSON.parse(r.stdout) as { samplesNs?: number[]; error?: string };
  if (parsed.error !== undefined) return { error: parsed.error };
  return { samplesNs: parsed.samplesNs ?? [] };
}
