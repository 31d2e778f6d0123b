/**
 * PollSelector: poll(2) over a pollfd set kept in native memory.
 *
 * @module
 */
import { POLLIN, POLLNVAL, POLLOUT, Poll } from '../sys/index.js';
import { BaseSelector, type ReadyLayout } from './base.js';
import { fromPollBits, toPollBits } from './poll-like.js';

/**
 * A selector on `poll(2)`: no FD_SETSIZE limit; cost grows with the number
 * of fds watched, ready or not.
 */
export class PollSelector<D = unknown> extends BaseSelector<D> {
  readonly #poll = new Poll();

  protected backendAdd(fd: number, events: number): void {
    this.#poll.register(fd, toPollBits(events, POLLIN, POLLOUT));
  }

  protected backendModify(fd: number, events: number): void {
    this.#poll.modify(fd, toPollBits(events, POLLIN, POLLOUT));
  }

  protected backendRemove(fd: number): void {
    this.#poll.unregister(fd);
  }

  protected backendWait(timeoutMs: number): number {
    const n = this.#poll.pollInto(timeoutMs);
    // An fd closed behind the selector polls as POLLNVAL at once, on every
    // wait: a loop would spin on it. It is reported this once (ready both
    // ways, so its callbacks meet EBADF), as select reports one, then no
    // longer polled, as epoll forgets a closed fd; its key stays until
    // unregistered. The fds polled are this wait's results, untouched.
    const array = this.#poll.events;
    for (let i = 0; i < n; i++) {
      if (((array[2 * i + 1] as number) & POLLNVAL) !== 0) this.#poll.unregister(array[2 * i] as number);
    }
    return n;
  }

  protected layout(): ReadyLayout {
    // Poll's array is replaced when the set outgrows it: read it each time.
    return { array: this.#poll.events, stride: 2, fdIndex: 0, eventsIndex: 1, tagIndex: -1 };
  }

  protected toEvents(revents: number): number {
    return fromPollBits(revents, POLLIN, POLLOUT);
  }

  protected backendClose(): void {
    this.#poll.close();
  }
}
