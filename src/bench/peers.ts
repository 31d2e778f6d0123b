/**
 * The Python peers of the benchmarks (bench/peers/*.py) and the interpreter
 * that runs them: `python3` on PATH, or Debian's /usr/bin/python3, where
 * bench/setup installs python3-uvloop.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The path of a peer script shipped in bench/peers. */
export function peerScript(name: string): string {
  return fileURLToPath(new URL(`../../bench/peers/${name}`, import.meta.url));
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
