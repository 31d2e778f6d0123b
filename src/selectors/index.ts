/**
 * `iomux/selectors`: Python's `selectors` module. Timeouts are milliseconds.
 *
 * @example
 * ```ts
 * import { DefaultSelector, EVENT_READ } from 'iomux/selectors';
 * const sel = new DefaultSelector();
 * sel.register(sock, EVENT_READ, (key) => console.log(sock.recv(1024)));
 * for (const [key, events] of sel.select()) (key.data as (k: typeof key) => void)(key);
 * ```
 *
 * @module
 */
import { EpollSelector } from './epoll.js';

export { BaseSelector, type ReadyLayout, type ReadyVisitor } from './base.js';
export { createSelector, SELECTOR_NAMES, type SelectorName } from './create.js';
export { EpollSelector, type EpollSelectorOptions } from './epoll.js';
export { SelectorClosedError, SelectorKeyError } from './errors.js';
export { EVENT_READ, EVENT_WRITE, SelectorKey } from './key.js';
export { PollSelector } from './poll.js';
export { SelectSelector } from './select.js';
export { UringSelector, type UringSelectorOptions } from './uring.js';

/** The best selector here: {@link EpollSelector} (Linux). */
export const DefaultSelector = EpollSelector;
/** The best selector here: {@link EpollSelector} (Linux). */
export type DefaultSelector<D = unknown> = EpollSelector<D>;
