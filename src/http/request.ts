/**
 * HTTP/1.1 requests: URL -> target, and the request bytes.
 *
 * @module
 */

import { isToken } from './token.js';

/** Where a request goes. */
export interface HttpTarget {
  /** The URL as given. */
  url: string;
  /** True for https:// (TLS on the connection, the URL's host checked against the certificate). */
  tls: boolean;
  /** Host name or address to connect to (IPv6 without brackets); also the TLS name checked. */
  hostname: string;
  port: number;
  /** The Host header: host[:port], IPv6 in brackets. */
  hostHeader: string;
  /** Path and query. */
  path: string;
}

/** A request the client cannot make: a malformed URL, a scheme other than http/https, a bad header. */
export class HttpRequestError extends Error {
  readonly code: 'ERR_INVALID_URL' | 'ERR_UNSUPPORTED_PROTOCOL' | 'ERR_INVALID_HEADER';

  constructor(code: HttpRequestError['code'], message: string) {
    super(message);
    this.code = code;
  }

  override get name(): string {
    return 'HttpRequestError';
  }
}

/**
 * Parses an http:// or https:// URL (default port 80 or 443; the Host
 * header names the port only when the URL does, as browsers send it).
 *
 * @throws {HttpRequestError} ERR_INVALID_URL, or ERR_UNSUPPORTED_PROTOCOL for anything but http: and https:
 */
export function parseHttpUrl(url: string): HttpTarget {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new HttpRequestError('ERR_INVALID_URL', `invalid URL: ${JSON.stringify(url)}`);
  }
  const tls = parsed.protocol === 'https:';
  if (!tls && parsed.protocol !== 'http:') {
    throw new HttpRequestError('ERR_UNSUPPORTED_PROTOCOL', `only http:// and https:// URLs are supported: ${url}`);
  }
  // URL drops a port that is the scheme's default (https://h:443/ -> port ''),
  // so '' means the default here and the Host header leaves it out.
  const port = parsed.port === '' ? (tls ? 443 : 80) : Number(parsed.port);
  const hostname = parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname;
  return {
    url,
    tls,
    hostname,
    port,
    hostHeader: parsed.port === '' ? parsed.hostname : `${parsed.hostname}:${port}`,
    path: `${parsed.pathname === '' ? '/' : parsed.pathname}${parsed.search}`,
  };
}

/** Options of a request. */
export interface RequestOptions {
  method?: string;
  headers?: Readonly<Record<string, string>>;
  /** Keep the connection open after the response (default false: `Connection: close`, as the notes do). */
  keepAlive?: boolean;
  body?: Uint8Array | string;
}

// What a field value may hold as it goes on the wire (RFC 9110 5.5: VCHAR,
// obs-text, SP, HTAB). The head is encoded latin1, which keeps only the low
// byte of each character: U+010D U+010A would become a real CR LF, so
// anything above U+00FF is refused here, not just CR and LF themselves.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

const KEEP_ALIVE = 'Connection: keep-alive\r\n';
const CLOSE = 'Connection: close\r\n';

/**
 * The request's bytes.
 *
 * @throws {HttpRequestError} ERR_INVALID_HEADER for a bad method, header name or value (no CR/LF injection)
 */
export function formatRequest(target: HttpTarget, options: RequestOptions = {}): Buffer {
  const method = options.method ?? 'GET';
  if (typeof method !== 'string' || !isToken(method))
    throw new HttpRequestError('ERR_INVALID_HEADER', `invalid method: ${JSON.stringify(method)}`);
  const body = options.body === undefined ? undefined : Buffer.from(options.body);
  // The names given, lower-cased (none, for most requests: no Set then).
  let given: Set<string> | null = null;
  let fields = '';
  if (options.headers !== undefined) {
    given = new Set<string>();
    for (const [name, value] of Object.entries(options.headers)) {
      if (!isToken(name) || typeof value !== 'string' || !FIELD_VALUE.test(value)) {
        throw new HttpRequestError('ERR_INVALID_HEADER', `invalid header: ${JSON.stringify(name)}`);
      }
      given.add(name.toLowerCase());
      fields += `${name}: ${value}\r\n`;
    }
  }
  // A Host the caller gives replaces ours: two would be a request servers must refuse (400).
  let head = `${method} ${target.path} HTTP/1.1\r\n`;
  if (given?.has('host') !== true) head += `Host: ${target.hostHeader}\r\n`;
  head += fields;
  if (given?.has('connection') !== true) head += options.keepAlive === true ? KEEP_ALIVE : CLOSE;
  if (given?.has('user-agent') !== true) head += 'User-Agent: iomux\r\n';
  if (body !== undefined && given?.has('content-length') !== true) head += `Content-Length: ${body.length}\r\n`;
  head += '\r\n';
  const bytes = Buffer.from(head, 'latin1');
  return body === undefined ? bytes : Buffer.concat([bytes, body]);
}
