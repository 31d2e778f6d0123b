/**
 * The addon, ready for use: its errno factory installed, so every kernel
 * error it throws is an {@link OSError}. Every sys module imports it from here.
 *
 * @internal
 */
import { native } from './binding.js';
import { makeErrnoError } from './errors.js';

native.init(makeErrnoError);

export { native };
