/**
 * An incremental HTTP/1.1 response parser: status line, header fields,
 * Content-Length, chunked transfer coding with trailers, close-delimited
 * bodies, 1xx interim responses, and no body for HEAD, 204 and 304.
 *
 * Fed any split of the bytes (even one at a time) it gives the same result.
 * Every malformed input is an {@link HttpParseError}; each step consumes
 * input or waits for more, so no input makes it loop, and header and body
 * limits bound its memory.
 *
 * @module
 */
import { HttpParseError } from './errors.js';
import { HttpHeaders } from './headers.js';
import { isToken } from './token.js';

/** The status line and fields of a (final) response. */
export interface ResponseHead {
  /** '1.0' or '1.1'. */
  version: string;
  status: number;
  reason: string;
  headers: HttpHeaders;
}

/** Options of {@link ResponseParser}. */
export interface ResponseParserOptions {
  /** The request method: a response to HEAD has no body. */
  method?: string;
  /** Most bytes of status line plus fields, and of trailers: an integer >= 1 (default 64 KiB). */
  maxHeaderBytes?: number;
  /** Most body bytes: an integer >= 0 (default 256 MiB). */
  maxBodyBytes?: number;
}

/**
 * A limit option's value: the default when undefined, else a safe integer
 * of at least `min`. NaN, fractions, Infinity and non-numbers are refused
 * rather than taken: every comparison with NaN is false, so a NaN limit
 * would silently be no limit at all.
 */
function limitOption(name: string, value: unknown, min: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    const shown = typeof value === 'number' ? String(value) : typeof value;
    throw Object.assign(new RangeError(`ResponseParser: ${name} must be an integer >= ${min}, not ${shown}`), {
      code: 'ERR_INVALID_LIMIT',
    });
  }
  return value;
}

const HEAD = 0;
const BODY_LENGTH = 1;
const CHUNK_SIZE = 2;
const CHUNK_DATA = 3;
const CHUNK_DATA_END = 4;
const TRAILERS = 5;
const BODY_CLOSE = 6;
const DONE = 7;

/** OWS (RFC 9110 5.6.3): SP and HTAB, and nothing else. */
function isOws(c: number): boolean {
  return c === 32 || c === 9;
}

/** Where the line from `start` to the LF at `lf` (-1: the text's end) ends, without its CR. */
function lineEnd(text: string, start: number, lf: number): number {
  const stop = lf < 0 ? text.length : lf;
  return stop > start && text.charCodeAt(stop - 1) === 13 ? stop - 1 : stop;
}

/**
 * Where the head's last line ends in `bytes`: the LF followed by an empty
 * line (CRLF or LF), or -1 when they hold no empty line yet. The search
 * starts at `from`: an LF before it was already looked at with the two
 * bytes after it.
 */
function emptyLine(bytes: Buffer, from: number): number {
  let lf = bytes.indexOf(0x0a, from);
  while (lf >= 0) {
    const c = bytes[lf + 1];
    if (c === 0x0a || (c === 0x0d && bytes[lf + 2] === 0x0a)) return lf;
    lf = bytes.indexOf(0x0a, lf + 1);
  }
  return -1;
}

function digit(text: string, i: number): number {
  const d = text.charCodeAt(i) - 48;
  return d >= 0 && d <= 9 ? d : -1;
}

/**
 * The status code of the status line text[0, end) -- `HTTP/1.<digit> SP
 * 3DIGIT [SP reason]` -- or -1 when it is malformed.
 *
 * The code is 100 to 599: RFC 9110 15 calls every valid status code one of
 * these, and a client cannot tell what 000 or 999 means. The reason phrase
 * is HTAB, SP, VCHAR and obs-text only (RFC 9112 4): a NUL, another control
 * or DEL in it is malformed. llhttp takes both leniently; this parser does
 * not, as it refuses control characters in field values.
 */
function parseStatusLine(text: string, end: number): number {
  if (end < 12 || !text.startsWith('HTTP/1.') || digit(text, 7) < 0 || text.charCodeAt(8) !== 32) return -1;
  const a = digit(text, 9);
  const b = digit(text, 10);
  const c = digit(text, 11);
  if (a < 1 || a > 5 || b < 0 || c < 0 || (end > 12 && text.charCodeAt(12) !== 32)) return -1;
  for (let i = 13; i < end; i++) {
    const ch = text.charCodeAt(i);
    if ((ch < 32 && ch !== 9) || ch === 127) return -1;
  }
  return a * 100 + b * 10 + c;
}

/** True when text[start, start + lower.length) is `lower` in any case (`lower` is lower-case ASCII). */
function isNamed(text: string, start: number, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    let c = text.charCodeAt(start + i);
    if (c >= 65 && c <= 90) c += 32;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/** The value of 1 to 15 ASCII digits, or -1 for anything else. */
function decimal(text: string): number {
  if (text.length === 0 || text.length > 15) return -1;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const d = digit(text, i);
    if (d < 0) return -1;
    n = n * 10 + d;
  }
  return n;
}

function withValue(values: string[] | null, value: string): string[] {
  if (values === null) return [value];
  values.push(value);
  return values;
}

// ResponseHead.version by the minor digit: no string made per response.
const VERSIONS = ['1.0', '1.1', '1.2', '1.3', '1.4', '1.5', '1.6', '1.7', '1.8', '1.9'];
const MAX_CHUNK_LINE = 4096;
// chunk-size [chunk-ext] (RFC 9112 7.1): white space (BWS) only before an
// extension's ';'. The extensions are ignored, but like field values hold
// no control other than HTAB, nor DEL.
// biome-ignore lint/suspicious/noControlCharactersInRegex: the controls are what it refuses
const CHUNK_SIZE_LINE = /^([0-9a-fA-F]{1,12})(?:[ \t]*;[^\x00-\x08\x0a-\x1f\x7f]*)?$/;
const EMPTY = Buffer.alloc(0);
// A store for bytes waiting for more is dropped, once empty, when larger than this.
const STORE_KEEP = 16 * 1024;

/**
 * Parses one response; `leftover()` gives the bytes after it (keep-alive).
 *
 * @example
 * ```ts
 * const parser = new ResponseParser({ method: 'GET' });
 * parser.feed(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
 * parser.done; // true
 * parser.body().toString(); // 'ok'
 * ```
 */
export class ResponseParser {
  readonly #method: string;
  readonly #maxHeaderBytes: number;
  readonly #maxBodyBytes: number;
  #state = HEAD;
  // Bytes that wait for more (a head, chunk-size line or trailer line not
  // yet ended) are #store[0, #pendingLength). The store grows by doubling
  // and the next bytes are copied in after them, so a head that trickles in
  // a few bytes at a time costs linear, not quadratic, copying.
  #store: Buffer = EMPTY;
  #pendingLength = 0;
  // How many of the pending bytes were already searched for the end of the
  // element they begin (head, chunk-size line, trailer line): each byte is
  // searched once however the element is split.
  #scanned = 0;
  #leftover: Buffer = EMPTY;
  #head: ResponseHead | null = null;
  // Made for the first trailer (or the first look): most responses have none.
  #trailers: HttpHeaders | null = null;
  #trailerBytes = 0;
  // The values of the fields that frame the body, noted as the head is parsed.
  #contentLength: string[] | null = null;
  #transferEncoding: string[] | null = null;
  #remaining = 0;
  #body: Buffer[] = [];
  #bodyBytes = 0;
  #interim = 0;
  #received = 0;

  /**
   * @throws {RangeError} ERR_INVALID_LIMIT when `maxHeaderBytes` is not an
   * integer >= 1 or `maxBodyBytes` not an integer >= 0 (NaN included)
   */
  constructor(options: ResponseParserOptions = {}) {
    this.#method = (options.method ?? 'GET').toUpperCase();
    this.#maxHeaderBytes = limitOption('maxHeaderBytes', options.maxHeaderBytes, 1, 64 * 1024);
    this.#maxBodyBytes = limitOption('maxBodyBytes', options.maxBodyBytes, 0, 256 * 1024 * 1024);
  }

  /** True once the whole response was parsed. */
  get done(): boolean {
    return this.#state === DONE;
  }

  /** The final response's head once parsed, else null. */
  get head(): ResponseHead | null {
    return this.#head;
  }

  /** Bytes fed so far (0: the peer has said nothing yet). */
  get received(): number {
    return this.#received;
  }

  /**
   * Bytes held while waiting for the rest of a head, chunk-size line or
   * trailer line: at most `maxHeaderBytes + 3` or 4 KiB, whichever is more.
   */
  get pendingBytes(): number {
    return this.#pendingLength;
  }

  /** Interim (1xx) responses skipped so far. */
  get interimResponses(): number {
    return this.#interim;
  }

  /** The body received so far, as one Buffer. */
  body(): Buffer {
    if (this.#body.length !== 1) this.#body = [Buffer.concat(this.#body, this.#bodyBytes)];
    return this.#body[0] as Buffer;
  }

  /** Trailer fields of a chunked body. */
  get trailers(): HttpHeaders {
    if (this.#trailers === null) this.#trailers = new HttpHeaders();
    return this.#trailers;
  }

  /** Bytes received after the response ended (the next response on a kept-alive connection). */
  leftover(): Buffer {
    return this.#state === DONE ? this.#leftover : EMPTY;
  }

  /**
   * Parses more bytes.
   *
   * @throws {HttpParseError} on malformed input or a broken limit
   */
  feed(chunk: Uint8Array): void {
    // length, not byteLength (the same for bytes): V8 11 inlines the one and calls the other.
    this.#received += chunk.length;
    let data: Buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const stored = this.#pendingLength > 0;
    if (stored) data = this.#append(data);
    let at = 0;
    while (at < data.length || this.#state === CHUNK_DATA_END) {
      const before = at;
      switch (this.#state) {
        case HEAD:
          at = this.#parseHead(data, at);
          break;
        case BODY_LENGTH:
        case CHUNK_DATA:
        case BODY_CLOSE: {
          const take = this.#state === BODY_CLOSE ? data.length - at : Math.min(this.#remaining, data.length - at);
          this.#addBody(data.subarray(at, at + take));
          at += take;
          if (this.#state !== BODY_CLOSE) {
            this.#remaining -= take;
            if (this.#remaining === 0) this.#state = this.#state === BODY_LENGTH ? DONE : CHUNK_DATA_END;
          }
          break;
        }
        case CHUNK_SIZE:
          at = this.#parseChunkSize(data, at);
          break;
        case CHUNK_DATA_END:
          if (data.length - at < 2) break;
          if (data[at] !== 0x0d || data[at + 1] !== 0x0a) {
            throw new HttpParseError('ERR_HTTP_BAD_CHUNK', 'chunk data is not followed by CRLF');
          }
          at += 2;
          this.#state = CHUNK_SIZE;
          break;
        case TRAILERS:
          at = this.#parseTrailer(data, at);
          break;
        case DONE: {
          // The store is never written again once done: a view of it stays valid.
          const rest = data.subarray(at);
          this.#leftover = this.#leftover.length === 0 ? rest : Buffer.concat([this.#leftover, rest]);
          this.#pendingLength = 0;
          return;
        }
      }
      if (at === before) break; // needs more input
      this.#scanned = 0;
    }
    // What waits for more is bounded: a head by #parseHead's limit, a
    // chunk-size line by MAX_CHUNK_LINE, a trailer by the header limit.
    this.#keep(data, at, stored);
  }

  /** Copies `data` in after the pending bytes; returns all of them. */
  #append(data: Buffer): Buffer {
    const length = this.#pendingLength + data.length;
    if (this.#store.length < length) {
      // allocUnsafeSlow: a store of its own, never a slice of Node's shared pool.
      const grown = Buffer.allocUnsafeSlow(Math.max(length, 2 * this.#store.length));
      this.#store.copy(grown, 0, 0, this.#pendingLength);
      this.#store = grown;
    }
    data.copy(this.#store, this.#pendingLength);
    this.#pendingLength = length;
    return this.#store.subarray(0, length);
  }

  /** Keeps data[at, end) as the pending bytes; `stored`: data is the store's own. */
  #keep(data: Buffer, at: number, stored: boolean): void {
    const rest = data.length - at;
    if (rest === 0) {
      this.#pendingLength = 0;
      if (this.#store.length > STORE_KEEP) this.#store = EMPTY;
      return;
    }
    if (stored && this.#store.length <= Math.max(STORE_KEEP, 4 * rest)) {
      if (at > 0) this.#store.copyWithin(0, at, data.length);
    } else {
      // The caller's bytes (which it may reuse) or a store far larger than what waits.
      const store = Buffer.allocUnsafeSlow(Math.max(rest, 256));
      data.copy(store, 0, at);
      this.#store = store;
    }
    this.#pendingLength = rest;
  }

  /**
   * The connection was closed: completes a close-delimited body.
   *
   * @throws {HttpParseError} ERR_HTTP_INCOMPLETE when the response is not complete
   */
  end(): void {
    if (this.#state === BODY_CLOSE) this.#state = DONE;
    if (this.#state !== DONE) {
      const where = this.#head === null ? 'the response head' : 'the body';
      throw new HttpParseError('ERR_HTTP_INCOMPLETE', `connection closed before the end of ${where}`);
    }
  }

  #addBody(part: Buffer): void {
    if (part.length === 0) return;
    this.#bodyBytes += part.length;
    if (this.#bodyBytes > this.#maxBodyBytes) {
      throw new HttpParseError('ERR_HTTP_BODY_TOO_LARGE', `body exceeds ${this.#maxBodyBytes} bytes`);
    }
    this.#body.push(Buffer.from(part));
  }

  #parseHead(data: Buffer, at: number): number {
    // The head ends at the first empty line, looked for in the bytes up to
    // the limit, from where the last look stopped: a head that trickles in
    // is searched once, not again from its start on every feed.
    const avail = data.length - at;
    const window = data.subarray(at, at + Math.min(avail, this.#maxHeaderBytes + 4));
    const end = emptyLine(window, Math.max(0, this.#scanned - 2));
    // Then the head alone becomes the latin1 string the fields are cut from.
    const text = end < 0 ? '' : window.toString('latin1', 0, Math.min(window.length, end + 3));
    // The head's size: its bytes before the empty line, without the last
    // line's end. Without an empty line yet, more than the limit plus three
    // bytes (CR LF CR of the end still coming) is too much whatever follows.
    if (end < 0 ? avail > this.#maxHeaderBytes + 3 : lineEnd(text, 0, end) > this.#maxHeaderBytes) {
      throw new HttpParseError('ERR_HTTP_HEADERS_TOO_LARGE', `response head exceeds ${this.#maxHeaderBytes} bytes`);
    }
    if (end < 0) {
      this.#scanned = window.length;
      return at;
    }
    // text[0, end) is the status line and the fields, each line ending in
    // LF, optionally preceded by CR (the last one's LF is at `end`); each
    // field is cut straight from the text by index.
    const next = at + end + (text.charCodeAt(end + 1) === 13 ? 3 : 2);
    // The first LF: the status line's end, at `end` at the latest.
    let lf = text.indexOf('\n');
    const statusEnd = lineEnd(text, 0, lf);
    const status = parseStatusLine(text, statusEnd);
    if (status < 0) {
      throw new HttpParseError(
        'ERR_HTTP_BAD_STATUS_LINE',
        `malformed status line: ${JSON.stringify(text.slice(0, Math.min(statusEnd, 80)))}`,
      );
    }
    const headers = new HttpHeaders();
    this.#contentLength = null;
    this.#transferEncoding = null;
    while (lf < end) {
      const start = lf + 1;
      lf = text.indexOf('\n', start);
      const stop = lineEnd(text, start, lf);
      const colon = this.#parseField(text, start, stop, headers);
      // The two fields that frame the body, noted on the way.
      if (colon - start === 14 && isNamed(text, start, 'content-length')) {
        this.#contentLength = withValue(this.#contentLength, headers.lastValue());
      } else if (colon - start === 17 && isNamed(text, start, 'transfer-encoding')) {
        this.#transferEncoding = withValue(this.#transferEncoding, headers.lastValue());
      }
    }
    if (status >= 100 && status < 200) {
      if (status === 101) throw new HttpParseError('ERR_HTTP_UNSUPPORTED', '101 Switching Protocols is not supported');
      this.#interim++;
      return next; // an interim response: the final one follows
    }
    const head: ResponseHead = {
      version: VERSIONS[digit(text, 7)] as string,
      status,
      reason: statusEnd > 13 ? text.slice(13, statusEnd) : '',
      headers,
    };
    this.#head = head;
    this.#state = this.#bodyMode(status);
    return next;
  }

  // The field in text[start, end): name ":" OWS value OWS. Returns the
  // colon's index.
  #parseField(text: string, start: number, end: number, into: HttpHeaders): number {
    const colon = text.indexOf(':', start);
    if (colon <= start || colon >= end || !isToken(text, start, colon)) {
      throw new HttpParseError(
        'ERR_HTTP_BAD_HEADER',
        `malformed header field: ${JSON.stringify(text.slice(start, Math.min(end, start + 80)))}`,
      );
    }
    // OWS around the value is SP and HTAB only: a CR, NBSP or other control
    // at an end is part of the value, not white space to trim.
    let from = colon + 1;
    let to = end;
    while (from < to && isOws(text.charCodeAt(from))) from++;
    while (to > from && isOws(text.charCodeAt(to - 1))) to--;
    // field-vchar is VCHAR or obs-text (RFC 9110 5.5): a control other than
    // HTAB, or DEL, is an error, a bare CR (RFC 9112 2.2) and NUL included.
    for (let i = from; i < to; i++) {
      const c = text.charCodeAt(i);
      if ((c < 32 && c !== 9) || c === 127) {
        throw new HttpParseError('ERR_HTTP_BAD_HEADER', `header ${text.slice(start, colon)} holds a control character`);
      }
    }
    into.append(text.slice(start, colon), text.slice(from, to));
    return colon;
  }

  #bodyMode(status: number): number {
    const te = this.#transferEncoding;
    // RFC 9112 6.3: both fields "ought to be handled as an error" (a sign of
    // response splitting), and a sender must not send them together (6.1).
    // Refused whatever the status, as llhttp does.
    if (te !== null && this.#contentLength !== null) {
      throw new HttpParseError('ERR_HTTP_BAD_CONTENT_LENGTH', 'Content-Length together with Transfer-Encoding');
    }
    // A malformed Content-Length is refused even where no body follows
    // (HEAD, 204, 304): the framing of the response is broken either way.
    const length = this.#declaredLength();
    if (this.#method === 'HEAD' || status === 204 || status === 304) return DONE;
    if (te !== null) {
      const codings = te.join(', ').split(',');
      return (codings.at(-1) as string).trim().toLowerCase() === 'chunked' ? CHUNK_SIZE : BODY_CLOSE;
    }
    if (length < 0) return BODY_CLOSE;
    if (length > this.#maxBodyBytes) {
      throw new HttpParseError(
        'ERR_HTTP_BODY_TOO_LARGE',
        `Content-Length ${length} exceeds ${this.#maxBodyBytes} bytes`,
      );
    }
    this.#remaining = length;
    return length === 0 ? DONE : BODY_LENGTH;
  }

  /** The Content-Length fields' one value, or -1 without any. */
  #declaredLength(): number {
    const declared = this.#contentLength;
    if (declared === null) return -1;
    // Usually one value and no list: no splitting then.
    const lengths =
      declared.length === 1 && !(declared[0] as string).includes(',')
        ? declared
        : declared.flatMap((v) => v.split(',').map((x) => x.trim()));
    const first = lengths[0] as string;
    const length = decimal(first);
    if (length < 0 || lengths.some((l) => l !== first)) {
      throw new HttpParseError(
        'ERR_HTTP_BAD_CONTENT_LENGTH',
        `invalid Content-Length: ${JSON.stringify(lengths.join(', '))}`,
      );
    }
    return length;
  }

  #parseChunkSize(data: Buffer, at: number): number {
    const lf = data.indexOf(0x0a, at + this.#scanned);
    if (lf < 0) {
      if (data.length - at > MAX_CHUNK_LINE) throw new HttpParseError('ERR_HTTP_BAD_CHUNK', 'chunk size line too long');
      this.#scanned = data.length - at;
      return at;
    }
    if (lf - at > MAX_CHUNK_LINE) throw new HttpParseError('ERR_HTTP_BAD_CHUNK', 'chunk size line too long');
    const line = data.toString('latin1', at, data[lf - 1] === 0x0d ? lf - 1 : lf);
    const m = CHUNK_SIZE_LINE.exec(line);
    if (m === null)
      throw new HttpParseError('ERR_HTTP_BAD_CHUNK', `malformed chunk size: ${JSON.stringify(line.slice(0, 40))}`);
    const size = Number.parseInt(m[1] as string, 16);
    if (this.#bodyBytes + size > this.#maxBodyBytes) {
      throw new HttpParseError('ERR_HTTP_BODY_TOO_LARGE', `body exceeds ${this.#maxBodyBytes} bytes`);
    }
    if (size === 0) {
      this.#state = TRAILERS;
    } else {
      this.#remaining = size;
      this.#state = CHUNK_DATA;
    }
    return lf + 1;
  }

  #parseTrailer(data: Buffer, at: number): number {
    const lf = data.indexOf(0x0a, at + this.#scanned);
    if (lf < 0) {
      if (this.#trailerBytes + data.length - at > this.#maxHeaderBytes) {
        throw new HttpParseError('ERR_HTTP_HEADERS_TOO_LARGE', `trailers exceed ${this.#maxHeaderBytes} bytes`);
      }
      this.#scanned = data.length - at;
      return at;
    }
    this.#trailerBytes += lf + 1 - at;
    if (this.#trailerBytes > this.#maxHeaderBytes) {
      throw new HttpParseError('ERR_HTTP_HEADERS_TOO_LARGE', `trailers exceed ${this.#maxHeaderBytes} bytes`);
    }
    const line = data.toString('latin1', at, data[lf - 1] === 0x0d ? lf - 1 : lf);
    if (line === '') this.#state = DONE;
    else this.#parseField(line, 0, line.length, this.trailers);
    return lf + 1;
  }
}
