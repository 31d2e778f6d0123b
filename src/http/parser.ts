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

export interface ResponseParserOptions {
  /** The request method: a response to HEAD has no body. */
  method?: string;
  /** Most bytes of status line plus fields, and of trailers (default 64 KiB). */
  maxHeaderBytes?: number;
  /** Most body bytes (default 256 MiB). */
  maxBodyBytes?: number;
}

const HEAD = 0;
const BODY_LENGTH = 1;
const CHUNK_SIZE = 2;
const CHUNK_DATA = 3;
const CHUNK_DATA_END = 4;
const TRAILERS = 5;
const BODY_CLOSE = 6;
const DONE = 7;

/** What String.prototype.trim removes, among latin1 characters. */
function isTrimmed(c: number): boolean {
  return (c >= 9 && c <= 13) || c === 32 || c === 160;
}

/** Where the line from `start` to the LF at `lf` (-1: the text's end) ends, without its CR. */
function lineEnd(text: string, start: number, lf: number): number {
  const stop = lf < 0 ? text.length : lf;
  return stop > start && text.charCodeAt(stop - 1) === 13 ? stop - 1 : stop;
}

const STATUS_LINE = /^HTTP\/(\d)\.(\d) (\d{3})(?: ([^\r\n]*))?$/;
const MAX_CHUNK_LINE = 4096;
const EMPTY = Buffer.alloc(0);

/** Parses one response; `leftover()` gives the bytes after it (keep-alive). */
export class ResponseParser {
  readonly #method: string;
  readonly #maxHeaderBytes: number;
  readonly #maxBodyBytes: number;
  #state = HEAD;
  #pending: Buffer = EMPTY;
  #head: ResponseHead | null = null;
  #trailers = new HttpHeaders();
  #trailerBytes = 0;
  #remaining = 0;
  #body: Buffer[] = [];
  #bodyBytes = 0;
  #interim = 0;
  #received = 0;

  constructor(options: ResponseParserOptions = {}) {
    this.#method = (options.method ?? 'GET').toUpperCase();
    this.#maxHeaderBytes = options.maxHeaderBytes ?? 64 * 1024;
    this.#maxBodyBytes = options.maxBodyBytes ?? 256 * 1024 * 1024;
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
    return this.#trailers;
  }

  /** Bytes received after the response ended (the next response on a kept-alive connection). */
  leftover(): Buffer {
    return this.#state === DONE ? this.#pending : EMPTY;
  }

  /**
   * Parses more bytes.
   *
   * @throws {HttpParseError} on malformed input or a broken limit
   */
  feed(chunk: Uint8Array): void {
    this.#received += chunk.byteLength;
    let data: Buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.#pending.length > 0) {
      data = Buffer.concat([this.#pending, data]);
      this.#pending = EMPTY;
    }
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
        case DONE:
          this.#pending = data.subarray(at);
          return;
      }
      if (at === before) break; // needs more input
    }
    this.#pending = at < data.length ? Buffer.from(data.subarray(at)) : EMPTY;
    if (this.#state === DONE) return;
    if (this.#state === HEAD && this.#pending.length > this.#maxHeaderBytes) {
      throw new HttpParseError('ERR_HTTP_HEADERS_TOO_LARGE', `response head exceeds ${this.#maxHeaderBytes} bytes`);
    }
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
    let end = data.indexOf('\r\n\r\n', at, 'latin1');
    let sep = 4;
    if (end < 0) {
      end = data.indexOf('\n\n', at, 'latin1');
      sep = 2;
    }
    if (end < 0) {
      if (data.length - at > this.#maxHeaderBytes) {
        throw new HttpParseError('ERR_HTTP_HEADERS_TOO_LARGE', `response head exceeds ${this.#maxHeaderBytes} bytes`);
      }
      return at;
    }
    if (end - at > this.#maxHeaderBytes) {
      throw new HttpParseError('ERR_HTTP_HEADERS_TOO_LARGE', `response head exceeds ${this.#maxHeaderBytes} bytes`);
    }
    // Lines end in LF, optionally preceded by CR; walked by index, each
    // field cut straight from the head's text (per response, splitting by
    // a regular expression was among the costliest steps of a fetch).
    const text = data.toString('latin1', at, end);
    let lf = text.indexOf('\n');
    const statusLine = text.slice(0, lineEnd(text, 0, lf));
    const m = STATUS_LINE.exec(statusLine);
    if (m === null || m[1] !== '1') {
      throw new HttpParseError(
        'ERR_HTTP_BAD_STATUS_LINE',
        `malformed status line: ${JSON.stringify(statusLine.slice(0, 80))}`,
      );
    }
    const headers = new HttpHeaders();
    while (lf >= 0) {
      const start = lf + 1;
      lf = text.indexOf('\n', start);
      this.#parseField(text, start, lineEnd(text, start, lf), headers);
    }
    const status = Number(m[3]);
    const head: ResponseHead = { version: `1.${m[2]}`, status, reason: m[4] ?? '', headers };
    const next = end + sep;
    if (status >= 100 && status < 200) {
      if (status === 101) throw new HttpParseError('ERR_HTTP_UNSUPPORTED', '101 Switching Protocols is not supported');
      this.#interim++;
      return next; // an interim response: the final one follows
    }
    this.#head = head;
    this.#state = this.#bodyMode(head);
    return next;
  }

  // The field in text[start, end): name ":" OWS value OWS.
  #parseField(text: string, start: number, end: number, into: HttpHeaders): void {
    const colon = text.indexOf(':', start);
    if (colon <= start || colon >= end || !isToken(text, start, colon)) {
      throw new HttpParseError(
        'ERR_HTTP_BAD_HEADER',
        `malformed header field: ${JSON.stringify(text.slice(start, Math.min(end, start + 80)))}`,
      );
    }
    // Trimmed as String.prototype.trim would (its white space, in latin1).
    let from = colon + 1;
    let to = end;
    while (from < to && isTrimmed(text.charCodeAt(from))) from++;
    while (to > from && isTrimmed(text.charCodeAt(to - 1))) to--;
    // The line holds no LF (lines end there); a CR or NUL inside is an error.
    for (let i = from; i < to; i++) {
      const c = text.charCodeAt(i);
      if (c === 0 || c === 13) {
        throw new HttpParseError('ERR_HTTP_BAD_HEADER', `header ${text.slice(start, colon)} holds a control character`);
      }
    }
    into.append(text.slice(start, colon), text.slice(from, to));
  }

  #bodyMode(head: ResponseHead): number {
    const { status, headers } = head;
    if (this.#method === 'HEAD' || status === 204 || status === 304) return DONE;
    const te = headers.get('transfer-encoding');
    if (te !== undefined) {
      const codings = te.split(',').map((c) => c.trim().toLowerCase());
      return codings.at(-1) === 'chunked' ? CHUNK_SIZE : BODY_CLOSE;
    }
    const declared = headers.getAll('content-length');
    if (declared.length === 0) return BODY_CLOSE;
    // Usually one value and no list: no splitting then.
    const lengths =
      declared.length === 1 && !(declared[0] as string).includes(',')
        ? declared
        : declared.flatMap((v) => v.split(',').map((x) => x.trim()));
    const first = lengths[0] as string;
    if (!/^\d{1,15}$/.test(first) || lengths.some((l) => l !== first)) {
      throw new HttpParseError(
        'ERR_HTTP_BAD_CONTENT_LENGTH',
        `invalid Content-Length: ${JSON.stringify(lengths.join(', '))}`,
      );
    }
    const length = Number(first);
    if (length > this.#maxBodyBytes) {
      throw new HttpParseError(
        'ERR_HTTP_BODY_TOO_LARGE',
        `Content-Length ${length} exceeds ${this.#maxBodyBytes} bytes`,
      );
    }
    this.#remaining = length;
    return length === 0 ? DONE : BODY_LENGTH;
  }

  #parseChunkSize(data: Buffer, at: number): number {
    const lf = data.indexOf(0x0a, at);
    if (lf < 0) {
      if (data.length - at > MAX_CHUNK_LINE) throw new HttpParseError('ERR_HTTP_BAD_CHUNK', 'chunk size line too long');
      return at;
    }
    if (lf - at > MAX_CHUNK_LINE) throw new HttpParseError('ERR_HTTP_BAD_CHUNK', 'chunk size line too long');
    const line = data.toString('latin1', at, data[lf - 1] === 0x0d ? lf - 1 : lf);
    const m = /^([0-9a-fA-F]{1,12})[ \t]*(?:;.*)?$/.exec(line);
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
    const lf = data.indexOf(0x0a, at);
    if (lf < 0) {
      if (this.#trailerBytes + data.length - at > this.#maxHeaderBytes) {
        throw new HttpParseError('ERR_HTTP_HEADERS_TOO_LARGE', `trailers exceed ${this.#maxHeaderBytes} bytes`);
      }
      return at;
    }
    this.#trailerBytes += lf + 1 - at;
    if (this.#trailerBytes > this.#maxHeaderBytes) {
      throw new HttpParseError('ERR_HTTP_HEADERS_TOO_LARGE', `trailers exceed ${this.#maxHeaderBytes} bytes`);
    }
    const line = data.toString('latin1', at, data[lf - 1] === 0x0d ? lf - 1 : lf);
    if (line === '') this.#state = DONE;
    else this.#parseField(line, 0, line.length, this.#trailers);
    return lf + 1;
  }
}
