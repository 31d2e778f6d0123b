/**
 * The HTTP/1.1 client pieces the fetchers share.
 *
 * @module
 */
export { HttpParseError, type HttpParseErrorCode } from './errors.js';
export { HttpHeaders } from './headers.js';
export { type ResponseHead, ResponseParser, type ResponseParserOptions } from './parser.js';
export { formatRequest, HttpRequestError, type HttpTarget, parseHttpUrl, type RequestOptions } from './request.js';
