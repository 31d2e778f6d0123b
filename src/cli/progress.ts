/**
 * The CLI's progress bar (demo, bench): one line on stderr, redrawn.
 *
 * @module
 */
/** A one-line progress bar on a terminal (nothing when stderr is not a TTY). */
export class Progress {
  readonly #total: number;
  readonly #stream: NodeJS.WriteStream;
  readonly #active: boolean;
  #done = 0;
  #failed = 0;
  #last = 0;

  constructor(total: number, stream: NodeJS.WriteStream = process.stderr) {
    this.#total = total;
    this.#stream = stream;
    this.#active = stream.isTTY === true && total > 1;
  }

  tick(failed: boolean): void {
    this.#done++;
    if (failed) this.#failed++;
    const now = performance.now();
    if (!this.#active || (now - this.#last < 50 && this.#done < this.#total)) return;
    this.#last = now;
    const width = 30;
    const filled = Math.round((this.#done / this.#total) * width);
    this.#stream.write(
      `\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${this.#done}/${this.#total}${this.#failed > 0 ? ` (${this.#failed} failed)` : ''}`,
    );
  }

  finish(): void {
    if (this.#active) this.#stream.write('\r\x1b[K');
  }
}
