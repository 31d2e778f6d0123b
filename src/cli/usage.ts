/**
 * The CLI's usage errors: a bad option is a message and exit code 2, never a stack trace.
 *
 * @module
 */
/** A command-line mistake: reported as one line, exit code 2. */
export class UsageError extends Error {
  override get name(): string {
    return 'UsageError';
  }
}
