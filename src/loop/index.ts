/**
 * `iomux/loop`: asyncio's selector event loop.
 *
 * @module
 */
export { GetAddrInfoError, type GetAddrInfoOptions } from './dns.js';
export {
  type BackendName,
  EventLoop,
  type EventLoopOptions,
  type ExceptionHandler,
  type LoopSelector,
  type SelectorName,
} from './event-loop.js';
export { Handle, TimerHandle } from './handle.js';
export type { StartTlsOptions } from './tls-ops.js';
