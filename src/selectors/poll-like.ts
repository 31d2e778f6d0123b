/**
 * What poll and epoll selectors share: translating readiness bits.
 *
 * @module
 */
import { EVENT_READ, EVENT_WRITE } from './key.js';

/**
 * EVENT_READ | EVENT_WRITE -> the backend's bits.
 */
export function toPollBits(events: number, readBit: number, writeBit: number): number {
  return (events & EVENT_READ ? readBit : 0) | (events & EVENT_WRITE ? writeBit : 0);
}

/**
 * The backend's reported bits -> EVENT_*, as CPython's _PollLikeSelector:
 * anything beyond the read bit (POLLOUT, POLLERR, POLLHUP...) wakes a
 * writer, anything beyond the write bit (POLLIN, POLLERR, POLLHUP...) wakes
 * a reader, so an error or hang-up reaches both directions that asked.
 */
export function fromPollBits(revents: number, readBit: number, writeBit: number): number {
  return (revents & ~readBit ? EVENT_WRITE : 0) | (revents & ~writeBit ? EVENT_READ : 0);
}
