/**
 * When each step of a fetch happened -- the phases a waterfall draws:
 * connect (name resolution and TCP), tls, send, wait (for the first byte),
 * receive -- as every fetch style records them.
 *
 * @module
 */
import { ResponseParser, type ResponseParserOptions } from '../http/index.js';

/**
 * When each step of a fetch ended, in milliseconds on the loop's clock
 * (`performance.now()`, what `loop.time()` reads). Each is at or after the
 * one before it.
 */
export interface FetchTimings {
  /**
   * The fetch began (name resolution, if any, from here); for an
   * `HttpPool` fetch that waited for a connection, when its turn came.
   */
  start: number;
  /** The TCP connection was up (a kept-alive connection reused: = start). */
  connected: number;
  /** https: the TLS handshake was done; null for http (or a reused TLS connection). */
  secured: number | null;
  /** The whole request was handed to the kernel (or to OpenSSL). */
  sent: number;
  /** The first byte of the response arrived (= end for an empty one). */
  firstByte: number;
  /** The response was complete. */
  end: number;
}

/** A fetch's marks as it goes: each set once, the first time its step ends. */
export class TimingMarks {
  #start = performance.now();
  #connected = Number.NaN;
  #secured = Number.NaN;
  #sent = Number.NaN;
  #firstByte = Number.NaN;

  /** When the fetch began: its construction, or the last {@link began}. */
  get start(): number {
    return this.#start;
  }

  /** The fetch's turn begins now (a pool's fetch that waited for a connection): start moves here. */
  began(): void {
    this.#start = performance.now();
  }

  connected(): void {
    if (Number.isNaN(this.#connected)) this.#connected = performance.now();
  }

  secured(): void {
    if (Number.isNaN(this.#secured)) this.#secured = performance.now();
  }

  sent(): void {
    if (Number.isNaN(this.#sent)) this.#sent = performance.now();
  }

  firstByte(): void {
    if (Number.isNaN(this.#firstByte)) this.#firstByte = performance.now();
  }

  /** The timings, ended now; a step never marked takes the time of the one before it. */
  finish(): FetchTimings {
    const end = performance.now();
    const connected = Number.isNaN(this.#connected) ? this.#start : this.#connected;
    const secured = Number.isNaN(this.#secured) ? null : this.#secured;
    const sent = Number.isNaN(this.#sent) ? (secured ?? connected) : this.#sent;
    const firstByte = Number.isNaN(this.#firstByte) ? end : this.#firstByte;
    return { start: this.#start, connected, secured, sent, firstByte, end };
  }
}

/** A ResponseParser that marks the first byte it is fed. */
export class TimedParser extends ResponseParser {
  readonly marks: TimingMarks;

  constructor(options: ResponseParserOptions, marks: TimingMarks) {
    super(options);
    this.marks = marks;
  }

  override feed(chunk: Uint8Array): void {
    this.marks.firstByte();
    super.feed(chunk);
  }
}
