/**
 * What a soak leg counts: operations by kind, outcomes by error code, bytes
 * checked by SHA-256, and failures (a wrong byte, a hang, a leak) that fail
 * the soak. Plain data, so it crosses worker and process boundaries as is.
 */

/** Counters of one leg, mergeable with others. */
export interface Tally {
  /** Operations finished, by kind (echo, fetch, timer, ...). */
  ops: Record<string, number>;
  /** Operations that ended in an error, by kind and code ("echo ECONNRESET"). */
  errors: Record<string, number>;
  /** Bytes whose SHA-256 matched what was sent (echo) or served (fetch). */
  bytesVerified: number;
  /** What fails the soak, as sentences (each with the leg it came from). */
  failures: string[];
  /** Which backend/mode/leg combinations ran to the end (e.g. "main epoll cooperative"). */
  exercised: Record<string, number>;
}

/** An empty tally. */
export function newTally(): Tally {
  return { ops: {}, errors: {}, bytesVerified: 0, failures: [], exercised: {} };
}

/** Adds one to `map[key]`. */
export function bump(map: Record<string, number>, key: string, n = 1): void {
  map[key] = (map[key] ?? 0) + n;
}

/** The error's code (err.code, else its name), for counting. */
export function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  if (error instanceof Error) return error.name;
  return 'NON_ERROR';
}

/** Adds `from` into `into`. */
export function mergeTally(into: Tally, from: Tally): void {
  for (const [k, n] of Object.entries(from.ops)) bump(into.ops, k, n);
  for (const [k, n] of Object.entries(from.errors)) bump(into.errors, k, n);
  for (const [k, n] of Object.entries(from.exercised)) bump(into.exercised, k, n);
  into.bytesVerified += from.bytesVerified;
  into.failures.push(...from.failures);
}
