/**
 * Runs the EMFILE leg (emfile-child.ts) in a child process with a low fd
 * limit (`ulimit -n`, soft and hard: Node raises a soft limit to the hard
 * one at start) and returns its tally.
 */
import { spawn } from 'node:child_process';

import type { EmfileConfig } from './emfile-child.js';
import { newTally, type Tally } from './tally.js';

/** The child's fd limit: room for Node's own fds and the legs' sockets. */
const FD_LIMIT = 256;
const DEADLINE_MS = 300_000;

/** Spawns the EMFILE child for `config` and resolves to its tally (a failure in it when it dies). */
export function runEmfileLeg(config: EmfileConfig): Promise<Tally> {
  const script = new URL('./emfile-child.js', import.meta.url).pathname;
  const child = spawn(
    '/bin/sh',
    ['-c', `ulimit -n ${FD_LIMIT} && exec "$0" "$@"`, process.execPath, script, JSON.stringify(config)],
    {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
  return new Promise((resolve) => {
    let result: Tally | null = null;
    const timer = setTimeout(() => child.kill('SIGKILL'), DEADLINE_MS);
    child.on('message', (m: { type: string; tally: Tally }) => {
      if (m.type === 'result') result = m.tally;
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (result !== null) return resolve(result);
      const failed = newTally();
      failed.failures.push(`emfile child ended (code ${code}, signal ${signal}) without a report`);
      resolve(failed);
    });
  });
}
