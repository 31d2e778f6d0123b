/**
 * The C floor program (bench/floor/multiplex.c), compiled on the fly with the
 * machine's C compiler and run as a child process, so its figures come from
 * the same machine in the same run as the TypeScript ones. The plain C N-API
 * addons of `iomux bench calls` are compiled here too, against the running
 * Node's headers.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const FLOOR_DIR = fileURLToPath(new URL('../../bench/floor/', import.meta.url));

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

/**
 * Compiles bench/floor/<name>.c with `cc -O2`, once per process. Returns the
 * binary's path, or the reason there is none (no C compiler).
 */
export function buildC(name: string): { path: string } | { error: string } {
  return buildOnce(name, () => compile(name, name, ['-pthread']));
}

/**
 * Compiles bench/floor/<name>.c into a Node addon, <name>.node, once per
 * process: plain C against the running Node's `node_api.h`
 * (`cc -O2 -shared -fPIC`), for `process.dlopen`. Returns its path, or the
 * reason there is none (no C compiler, no Node headers, a header the source
 * needs is missing).
 */
export function buildAddon(name: string): { path: string } | { error: string } {
  return buildOnce(`${name}.node`, () => {
    const include = nodeIncludeDir();
    if (include === null) {
      return { error: `no Node headers (node_api.h) beside ${process.execPath} nor in node-gyp's cache` };
    }
    return compile(name, `${name}.node`, ['-shared', '-fPIC', '-I', include]);
  });
}

/**
 * Where the running Node's `node_api.h` is: beside the binary (an official
 * build or a distribution package installs include/node next to bin/), else
 * in the header cache node-gyp fills when it builds an addon.
 */
export function nodeIncludeDir(): string | null {
  const version = process.versions.node;
  const cache = process.env['XDG_CACHE_HOME'] || join(homedir(), '.cache');
  // node-gyp's --devdir, as npm passes it on.
  const devdir = process.env['npm_config_devdir'];
  const candidates = [
    join(dirname(process.execPath), '..', 'include', 'node'),
    ...(devdir ? [join(devdir, version, 'include', 'node')] : []),
    join(cache, 'node-gyp', version, 'include', 'node'),
    join(homedir(), '.node-gyp', version, 'include', 'node'),
  ];
  return candidates.find((dir) => existsSync(join(dir, 'node_api.h'))) ?? null;
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

function compile(name: string, output: string, flags: readonly string[]): { path: string } | { error: string } {
  const source = join(FLOOR_DIR, `${name}.c`);
  const out = join(ownBuildDir(), output);
  for (const cc of [process.env['CC'], 'cc', 'gcc', 'clang']) {
    if (cc === undefined || cc === '') continue;
    const r = spawnSync(cc, ['-O2', '-Wall', '-Wextra', '-Werror', ...flags, '-o', out, source], {
      encoding: 'utf8',
    });
    if (r.error === undefined && r.status === 0) return { path: out };
    if (r.error === undefined) return { error: `${cc} failed: ${r.stderr.trim()}` };
  }
  return { error: 'no C compiler (cc, gcc or clang) found' };
}

/** Compiles the select/poll/epoll floor (bench/floor/multiplex.c). */
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
