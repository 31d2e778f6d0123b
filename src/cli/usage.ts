/** A command-line mistake: reported as one line, exit code 2. */
export class UsageError extends Error {
  override get name(): string {
    return 'UsageError';
  }
}
