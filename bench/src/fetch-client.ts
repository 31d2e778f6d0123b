/**
 * The iomux side of the instructions suite's fetch count, as a process of
 * its own (run under callgrind):
 *
 *   node fetch-client.js <port> <rounds> <count>
 *
 * runs `rounds` rounds of `count` GETs at once with fetchCoroutine on epoll,
 * as the fetch benchmark does; after each it prints `round <n>` and waits
 * for a line on stdin (the driver counts round by round). Exits 1 when a
 * request failed.
 */
import { createInterface } from 'node:readline';

import { iomuxCoroutine } from './fetch.js';

const [port, rounds, count] = process.argv.slice(2).map(Number);
if (port === undefined || rounds === undefined || count === undefined || [port, rounds, count].some(Number.isNaN)) {
  process.stderr.write('usage: fetch-client.js <port> <rounds> <count>\n');
  process.exitCode = 2;
} else {
  const input = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  for (let round = 1; round <= rounds; round++) {
    await iomuxCoroutine(port, count);
    process.stdout.write(`round ${round}\n`);
    if ((await input.next()).done === true) break;
  }
  process.stdin.destroy();
}
