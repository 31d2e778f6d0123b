/**
 * `npm run bench`: builds nothing itself (the npm script compiles dist/ and
 * bench/ first), parses the command line and runs the suite it names.
 */
import { UsageError } from '#iomux/cli/usage.js';
import { runBenchCommand } from './command.js';

runBenchCommand(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (
      error instanceof UsageError ||
      (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS'))
    ) {
      process.stderr.write(`npm run bench: ${error.message}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`npm run bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
