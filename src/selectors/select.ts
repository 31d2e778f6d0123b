/**
 * SelectSelector: select(2) over fd_sets kept in native memory.
 *
 * @module
 */
import { SELECT_READ, SELECT_WRITE, SelectSet } from '../sys/select.js';
import { BaseSelector, type ReadyLayout } from './base.js';
import { EVENT_READ, EVENT_WRITE } from './key.js';

// EVENT_* and SELECT_* are the same bits; the select set reports exactly
// what it watched, so no translation is needed beyond this check.
if (EVENT_READ !== SELECT_READ || EVENT_WRITE !== SELECT_WRITE) throw new Error('iomux: select bits changed');

/**
 * A selector on `select(2)`. Cheap for a few busy fds; cannot watch an fd
 * >= FD_SETSIZE (1024): register() refuses it with a RangeError.
 */
export class SelectSelector<D = unknown> extends BaseSelector<D> {
  readonly #set = new SelectSet();
  readonly #layout: ReadyLayout = { array: this.#set.events, stride: 2, fdIndex: 0, eventsIndex: 1, tagIndex: -1 };

  protected backendAdd(fd: number, events: number): void {
    this.#set.set(fd, events);
  }

  protected backendModify(fd: number, events: number): void {
    this.#set.set(fd, events);
  }

  protected backendRemove(fd: number): void {
    this.#set.set(fd, 0);
  }

  protected backendWait(timeoutMs: number): number {
    return this.#set.wait(timeoutMs);
  }

  protected layout(): ReadyLayout {
    return this.#layout;
  }

  protected toEvents(revents: number): number {
    return revents;
  }

  protected backendClose(): void {
    this.#set.close();
  }
}
