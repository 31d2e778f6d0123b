/**
 * How an io_uring loop divides its ring's arena (the memory the kernel
 * reads sends and connect addresses from, see sys/io-uring.ts): send slots
 * of two sizes -- small ones, so a thousand connections' small messages
 * take 4 MiB rather than 64 -- and a slot per connect's address. Which
 * operation holds which slot, and who waits for one, is the proactor's.
 *
 * @module
 */

/** The bytes of a large send slot: a send goes out this much per request. */
export const SLOT_BYTES = 64 * 1024;
/** The bytes of a small send slot. */
export const SMALL_SLOT_BYTES = 4096;
/** How many slots of each size a full arena holds (the small ones first). */
export const SLOTS = 64;
export const SMALL_SLOTS = 1024;
/** The bytes of one address slot (a connect's sockaddr), after the send slots. */
export const ADDRESS_BYTES = 128;
/** How many connects the arena holds addresses for at once (more wait for one). */
export const ADDRESS_SLOTS = 64;
/** The arena an io_uring loop's ring is made with: the full set of slots. */
export const ARENA_BYTES = SMALL_SLOTS * SMALL_SLOT_BYTES + SLOTS * SLOT_BYTES + ADDRESS_SLOTS * ADDRESS_BYTES;

/** A slot taken: its offset in the arena and its size in bytes. */
export interface Slot {
  offset: number;
  size: number;
}

/** The free slots of one arena, by offset. */
export class ArenaSlots {
  readonly #small: number[] = [];
  readonly #large: number[] = [];
  readonly #addresses: number[] = [];

  /**
   * A smaller arena than ARENA_BYTES (a ring of one's own) gets fewer
   * slots: half of what the addresses leave for the large ones.
   *
   * @throws {RangeError} when not even one small slot fits
   */
  constructor(arenaBytes: number) {
    const room = arenaBytes - ADDRESS_SLOTS * ADDRESS_BYTES;
    const large = Math.min(SLOTS, Math.floor(room / 2 / SLOT_BYTES));
    const small = Math.min(SMALL_SLOTS, Math.floor((room - large * SLOT_BYTES) / SMALL_SLOT_BYTES));
    if (small < 1) {
      throw new RangeError(
        `An io_uring loop's arena needs room for its address slots and a send slot (${ARENA_BYTES} bytes make the full set). Received ${arenaBytes}`,
      );
    }
    for (let i = small - 1; i >= 0; i--) this.#small.push(i * SMALL_SLOT_BYTES);
    const base = small * SMALL_SLOT_BYTES;
    for (let i = large - 1; i >= 0; i--) this.#large.push(base + i * SLOT_BYTES);
    const addresses = base + large * SLOT_BYTES;
    for (let i = ADDRESS_SLOTS - 1; i >= 0; i--) this.#addresses.push(addresses + i * ADDRESS_BYTES);
  }

  /** True when a send of `bytes` would fit a free slot whole. */
  fits(bytes: number): boolean {
    if (bytes > SLOT_BYTES) return false;
    return (bytes <= SMALL_SLOT_BYTES ? this.#small.length + this.#large.length : this.#large.length) > 0;
  }

  /**
   * A send slot for `bytes` still to send, or null when none is free: a
   * small send takes a small slot, anything takes whichever is free.
   */
  take(bytes: number, into: Slot): boolean {
    if (bytes <= SMALL_SLOT_BYTES || this.#large.length === 0) {
      const small = this.#small.pop();
      if (small !== undefined) {
        into.offset = small;
        into.size = SMALL_SLOT_BYTES;
        return true;
      }
    }
    const large = this.#large.pop();
    if (large === undefined) return false;
    into.offset = large;
    into.size = SLOT_BYTES;
    return true;
  }

  /** Gives a send slot back. */
  release(offset: number, size: number): void {
    (size === SMALL_SLOT_BYTES ? this.#small : this.#large).push(offset);
  }

  /** An address slot's offset, or -1 when none is free. */
  takeAddress(): number {
    return this.#addresses.pop() ?? -1;
  }

  /** Gives an address slot back. */
  releaseAddress(offset: number): void {
    this.#addresses.push(offset);
  }
}
