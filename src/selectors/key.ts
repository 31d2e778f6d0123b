/**
 * What a selector registers: event bits, keys, and fileobj -> fd.
 *
 * @module
 */
import type { FileLike } from '../sys/index.js';

/** Readiness for reading. */
export const EVENT_READ = 1;
/** Readiness for writing. */
export const EVENT_WRITE = 2;

/** A registered file: what was given, its fd, the events watched and the caller's data. */
export class SelectorKey<D = unknown> {
  /**
   * @param fileobj - what was registered: an fd or an object with `fileno()`
   * @param fd - its fd at registration
   * @param events - EVENT_READ | EVENT_WRITE
   * @param data - anything the caller attached (the notes attach the callback)
   */
  constructor(
    readonly fileobj: FileLike,
    readonly fd: number,
    readonly events: number,
    readonly data: D,
  ) {}
}

/** How a fileobj appears in error messages: `fd 7` or `Socket (fd 7)`. */
export function describeFileobj(fileobj: unknown, fd?: number): string {
  if (typeof fileobj === 'number') return `fd ${fileobj}`;
  const name = (fileobj as object | null)?.constructor?.name ?? typeof fileobj;
  return fd === undefined ? name : `${name} (fd ${fd})`;
}

/**
 * Checks an event mask: a non-zero integer within EVENT_READ | EVENT_WRITE.
 *
 * @throws {RangeError} (code ERR_INVALID_EVENTS) otherwise
 */
export function checkEvents(events: unknown): number {
  if (
    typeof events !== 'number' ||
    !Number.isInteger(events) ||
    events <= 0 ||
    (events & ~(EVENT_READ | EVENT_WRITE)) !== 0
  ) {
    const shown = typeof events === 'number' && Number.isInteger(events) ? `0x${events.toString(16)}` : String(events);
    throw Object.assign(new RangeError(`Invalid events: ${shown} (use EVENT_READ | EVENT_WRITE)`), {
      code: 'ERR_INVALID_EVENTS',
    });
  }
  return events;
}
