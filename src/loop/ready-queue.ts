/**
 * A FIFO ring buffer (never Array.shift(), which is O(n)).
 *
 * @module
 */
export class RingQueue<T> {
  #items: (T | undefined)[] = new Array(64);
  #mask = 63;
  #head = 0;
  #length = 0;

  get length(): number {
    return this.#length;
  }

  push(item: T): void {
    if (this.#length === this.#items.length) this.#grow();
    this.#items[(this.#head + this.#length) & this.#mask] = item;
    this.#length++;
  }

  /** Removes and returns the oldest item, or undefined when empty. */
  shift(): T | undefined {
    if (this.#length === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) & this.#mask;
    this.#length--;
    return item;
  }

  clear(): void {
    this.#items = new Array(64);
    this.#mask = 63;
    this.#head = 0;
    this.#length = 0;
  }

  #grow(): void {
    const size = this.#items.length;
    const items: (T | undefined)[] = new Array(size * 2);
    for (let i = 0; i < size; i++) items[i] = this.#items[(this.#head + i) & this.#mask];
    this.#items = items;
    this.#mask = size * 2 - 1;
    this.#head = 0;
  }
}
