#!/usr/bin/env node
/**
 * The `iomux` command.
 */
import { parseArgs } from 'node:util';

import { runDemo } from './demo.js';
import { UsageError } from './usage.js';

const USAGE = `usage: iomux <command> [options]

commands:
  demo     fetch the notes' shop pages by busy-polling and through select, poll and epoll
  bench    compare select, poll and epoll with the C floor (iomux bench --help)

Run 'iomux <command> --help' for a command's options.
`;

const DEMO_USAGE = `usage: iomux demo [--count N]

Starts a local shop server in a child process and fetches /goods/0/ ... /goods/N-1/
one at a time by busy-polling, then all at once through select, poll and epoll with
callbacks, and prints wall and CPU time of each.

options:
  --count N   pages per style (default 20, as in the notes; at most 1000)
  --help      this text
`;

function positiveInt(value: string | undefined, name: string, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new UsageError(`${name} must be an integer from 1 to ${max}`);
  return n;
}

async function demo(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { count: { type: 'string' }, help: { type: 'boolean' } },
    strict: true,
    allowPositionals: false,
  });
  if (values.help === true) {
    process.stdout.write(DEMO_USAGE);
    return 0;
  }
  await runDemo({ count: positiveInt(values.count, '--count', 20, 1000), out: process.stdout });
  return 0;
}

async function bench(args: string[]): Promise<number> {
  const { runBenchCommand } = await import('../bench/command.js');
  return runBenchCommand(args);
}

/** Runs the command line; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'demo':
        return await demo(rest);
      case 'bench':
        return await bench(rest);
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        process.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command '${command}'`);
    }
  } catch (e) {
    if (
      e instanceof UsageError ||
      (e instanceof TypeError && 'code' in e && String(e.code).startsWith('ERR_PARSE_ARGS'))
    ) {
      process.stderr.write(`iomux: ${e.message}\n${command === undefined ? USAGE : ''}`);
      return 2;
    }
    throw e;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`iomux: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
