/**
 * Writes held while the loop runs a batch of callbacks, and released
 * together once the batch has run.
 *
 * A server answering many connections in one iteration would otherwise
 * send each reply as its callback runs, spread over the whole run: each
 * send then finds its peer asleep and pays the kernel's wake-up of it, and
 * on a virtual machine a wake-up costs more than the send. Held, the
 * replies leave back to back at the end of the run, where a peer woken by
 * the first finds the rest already there. Nothing waits longer than the
 * run of callbacks it was written in, and no reply is ever left held: the
 * loop releases every holder before it waits again.
 *
 * The loop knows nothing of what is held; a stream transport holds small
 * writes made while its socket has nothing buffered (stream-transport.ts).
 *
 * @module
 */

/** @internal Something holding writes until the run of callbacks ends. */
export interface WriteHolder {
  /** Sends what it holds (or buffers what the socket does not take). Never throws. */
  releaseHeld(): void;
}

/** @internal The loop's side: when a run of callbacks begins and ends, and who holds writes meanwhile. */
export class HeldWrites {
  #running = false;
  readonly #holders: WriteHolder[] = [];

  /** The loop starts running its callbacks. */
  begin(): void {
    this.#running = true;
  }

  /**
   * While callbacks run: `holder` is released when they have all run, and
   * true is returned (a holder asks once, when it starts holding). Outside
   * a run, false: the holder writes at once.
   */
  hold(holder: WriteHolder): boolean {
    if (!this.#running) return false;
    this.#holders.push(holder);
    return true;
  }

  /**
   * The callbacks have run: releases every holder, in the order they began
   * holding. True if there were any (the release took time of the run's own).
   */
  end(report: (exception: unknown) => void): boolean {
    this.#running = false;
    const holders = this.#holders;
    if (holders.length === 0) return false;
    // Nothing is held from here on (#running is false): the list only shrinks.
    for (let i = 0; i < holders.length; i++) {
      try {
        (holders[i] as WriteHolder).releaseHeld();
      } catch (exception) {
        report(exception);
      }
    }
    holders.length = 0;
    return true;
  }
}
