/**
 * The process the calls benchmark (`npm run bench -- calls`) runs under callgrind (see calls.ts):
 *
 *   valgrind --tool=callgrind --collect-atstart=no ... node calls-driver.js '<DriverArgs as JSON>'
 *
 * Loads the baseline addon and the callgrind marks the bench compiled, and
 * counts each function's batches (countUnderCallgrind), one dump per side.
 */
import { loadBaseline, loadMarks } from './baseline.js';
import { countUnderCallgrind, type DriverArgs } from './calls.js';

const args = JSON.parse(process.argv[2] ?? 'null') as DriverArgs | null;
if (args === null) {
  process.stderr.write("usage: node calls-driver.js '<DriverArgs as JSON>'\n");
  process.exit(2);
}
const marks = loadMarks(args.marks);
if (!marks.onValgrind()) process.stderr.write('calls-driver: not under valgrind, so nothing is counted\n');
countUnderCallgrind(loadBaseline(args.baseline), marks, args);
