/**
 * A transport's write flow control, as asyncio's: above the high-water mark
 * the protocol is told to pauseWriting, and to resumeWriting once the
 * buffer is down to the low one. Shared by the stream and datagram
 * transports; the buffer and its size stay theirs.
 *
 * @module
 */
import { invalidArgType, outOfRange } from '../sys/args.js';
import type { BaseProtocol } from './protocols.js';

/** asyncio's defaults: pause writing above 64 KiB buffered, resume at a quarter of it. */
export const DEFAULT_HIGH_WATER = 64 * 1024;

/** @internal Where a protocol's failing pauseWriting/resumeWriting is reported. */
export type FlowReport = (message: string, exception: unknown) => void;

/** @internal The water marks and whether the protocol was told to pause. */
export class WriteFlow {
  high = DEFAULT_HIGH_WATER;
  low = DEFAULT_HIGH_WATER / 4;
  paused = false;

  constructor(readonly report: FlowReport) {}

  /** The buffer holds `size` bytes now, after growing: pauseWriting once above the high mark. */
  grew(size: number, protocol: BaseProtocol): void {
    if (this.paused || size <= this.high) return;
    this.paused = true;
    try {
      protocol.pauseWriting?.();
    } catch (exception) {
      this.report('protocol.pauseWriting() failed', exception);
    }
  }

  /** The buffer holds `size` bytes now, after shrinking: resumeWriting once at or below the low mark. */
  shrank(size: number, protocol: BaseProtocol): void {
    if (!this.paused || size > this.low) return;
    this.paused = false;
    try {
      protocol.resumeWriting?.();
    } catch (exception) {
      this.report('protocol.resumeWriting() failed', exception);
    }
  }

  /** `[low, high]`. */
  limits(): [low: number, high: number] {
    return [this.low, this.high];
  }

  /**
   * Sets the marks (asyncio's set_write_buffer_limits: `high` defaults to
   * 64 KiB, or 4 x `low`; `low` to high / 4), then pauses or resumes the
   * protocol for a buffer of `size` bytes as the new marks say.
   *
   * @throws {TypeError} ERR_INVALID_ARG_TYPE for a mark that is not a number
   * @throws {RangeError} ERR_OUT_OF_RANGE unless both are integers with high >= low >= 0
   */
  set(high: number | undefined, low: number | undefined, size: number, protocol: BaseProtocol): void {
    if (high !== undefined && typeof high !== 'number') throw invalidArgType('high', 'of type number', high);
    if (low !== undefined && typeof low !== 'number') throw invalidArgType('low', 'of type number', low);
    const h = high ?? (low === undefined ? DEFAULT_HIGH_WATER : low * 4);
    const l = low ?? Math.floor(h / 4);
    if (!Number.isSafeInteger(h) || !Number.isSafeInteger(l) || l < 0 || h < l) {
      throw outOfRange('high, low', 'integers with high >= low >= 0', [high, low]);
    }
    this.high = h;
    this.low = l;
    this.grew(size, protocol);
    this.shrank(size, protocol);
  }
}
