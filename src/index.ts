/**
 * `iomux`: the kernel's own I/O multiplexing for Node.js on Linux.
 *
 * The raw layer is `iomux/sys` (also here as the `sys` namespace); the
 * selectors, event loop, coroutines and fetchers are exported from this
 * root as they land.
 *
 * @module
 */
export * as sys from './sys/index.js';
