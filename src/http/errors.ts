/**
 * HTTP errors, each with a stable `code`.
 *
 * @module
 */

/** Stable codes of {@link HttpParseError}. */
export type HttpParseErrorCode =
  | 'ERR_HTTP_BAD_STATUS_LINE'
  | 'ERR_HTTP_BAD_HEADER'
  | 'ERR_HTTP_HEADERS_TOO_LARGE'
  | 'ERR_HTTP_BAD_CONTENT_LENGTH'
  | 'ERR_HTTP_BAD_CHUNK'
  | 'ERR_HTTP_BODY_TOO_LARGE'
  | 'ERR_HTTP_INCOMPLETE'
  | 'ERR_HTTP_UNSUPPORTED';

/** A response that is not valid HTTP/1.x, or breaks a limit. */
export class HttpParseError extends Error {
  readonly code: HttpParseErrorCode;

  constructor(code: HttpParseErrorCode, message: string) {
    super(message);
    this.code = code;
  }

  override get name(): string {
    return 'HttpParseError';
  }
}
