/**
 * The CLI's usage errors: a bad option is a message and exit code 2, never a stack trace.
 *
 * @module
 */
import { writeFileSync } from 'node:fs';

/** A command-line mistake: reported as one line, exit code 2. */
export class UsageError extends Error {
  override get name(): string {
    return 'UsageError';
  }
}

/** Checks that the file of option `name` can be written, before the work whose output goes there (it is truncated). */
export function writableFile(file: string | undefined, name: string): string | undefined {
  if (file === undefined) return undefined;
  try {
    writeFileSync(file, '');
  } catch (error) {
    throw new UsageError(`${name}: cannot write ${file} (${(error as { code?: string }).code ?? String(error)})`);
  }
  return file;
}
