/**
 * Where the project's benchmarks keep their own programs -- the C floors of
 * the peer comparisons (bench/floor: the echo server, the fetcher, their TLS
 * counterparts on OpenSSL, the baseline addons) and the Python peers (bench/peers/*.py) -- and the
 * interpreter that runs the Python ones: `python3` on PATH, or Debian's
 * /usr/bin/python3, where bench/setup installs python3-uvloop.
 *
 * The paths hold from the sources (bench/src) and from their build
 * (bench/.build) alike: both sit one level under bench/.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { buildC } from '#iomux/cli/bench/floor.js';

/** bench/floor: the C programs of the peer comparisons (the package's own floors are in native/floor). */
export const BENCH_FLOOR_DIR = fileURLToPath(new URL('../floor/', import.meta.url));

/** The path of a Python peer script in bench/peers. */
export function peerScript(name: string): string {
  return fileURLToPath(new URL(`../peers/${name}`, import.meta.url));
}

/** Compiles bench/floor/<name>.c (see the package's buildC): the binary's path, or why there is none. */
export function buildBenchC(name: string): { path: string } | { error: string } {
  return buildC(name, { dir: BENCH_FLOOR_DIR });
}

/** Compiles bench/floor/<name>.c linked with OpenSSL (libssl-dev): the binary's path, or why there is none. */
export function buildBenchTlsC(name: string): { path: string } | { error: string } {
  return buildC(name, { dir: BENCH_FLOOR_DIR, libs: ['-lssl', '-lcrypto'] });
}

/**
 * Compiles bench/floor/<name>.c into a Node addon, <name>.node, once per
 * process: plain C against the running Node's `node_api.h`
 * (`cc -O2 -shared -fPIC`), for `process.dlopen`. Returns its path, or the
 * reason there is none (no C compiler, no Node headers, a header the source
 * needs is missing).
 */
export function buildAddon(name: string): { path: string } | { error: string } {
  const include = nodeIncludeDir();
  if (include === null) {
    return { error: `no Node headers (node_api.h) beside ${process.execPath} nor in node-gyp's cache` };
  }
  return buildC(name, { dir: BENCH_FLOOR_DIR, output: `${name}.node`, flags: ['-shared', '-fPIC', '-I', include] });
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

const found = new Map<string, string | null>();

/**
 * A Python 3 interpreter that can import `module` (default: just a
 * Python 3), or null when none can. Cached per module.
 */
export function findPython(module = 'selectors'): string | null {
  const cached = found.get(module);
  if (cached !== undefined) return cached;
  let result: string | null = null;
  for (const candidate of ['python3', '/usr/bin/python3']) {
    const r = spawnSync(candidate, ['-c', `import ${module}`], { stdio: 'ignore', timeout: 10_000 });
    if (r.error === undefined && r.status === 0) {
      result = candidate;
      break;
    }
  }
  found.set(module, result);
  return result;
}
