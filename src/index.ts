/**
 * `iomux`: the kernel's own I/O multiplexing for Node.js on Linux.
 *
 * Everything of `iomux/selectors`, `iomux/loop`, `iomux/coro` and `iomux/fetch`; the raw
 * layer is `iomux/sys` (also here as the `sys` namespace).
 *
 * @module
 */
export * from './coro/index.js';
export * from './fetch/index.js';
export * from './loop/index.js';
export * from './selectors/index.js';
export * as sys from './sys/index.js';
