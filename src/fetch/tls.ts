/**
 * What the fetchers share for https:// URLs: one client {@link TlsContext}
 * per set of trust options, kept for the process, so every fetcher's
 * connections to a host resume the session the previous one left (and the
 * bundled roots are parsed once, not per fetch).
 *
 * How a response over TLS ends is the parser's business, as over TCP, with
 * one difference the TLS layer makes for us: a peer that closes without
 * close_notify makes the read throw TlsError
 * `ERR_SSL_UNEXPECTED_EOF_WHILE_READING`. The fetchers stop reading as soon
 * as a response with a known length (Content-Length, chunked) is complete,
 * so that throw is only ever seen for a body that is cut short or
 * close-delimited -- exactly the bodies that cannot be told from a
 * truncated one -- and it fails the fetch with that code.
 *
 * @module
 */
import type { HttpTarget } from '../http/index.js';
import { type Socket, TlsContext, type TlsSocket } from '../sys/index.js';
import type { FetchOptions } from './types.js';

// Contexts by trust options. A handful in any real program; the cap only
// keeps a program that makes a CA per request from growing without end.
const MAX_CONTEXTS = 16;
const contexts = new Map<string, { context: TlsContext; id: number }>();
let nextId = 1;

function pemKey(ca: FetchOptions['ca']): string {
  if (ca === undefined) return '';
  const parts = Array.isArray(ca) ? ca : [ca];
  return parts.map((p: string | Buffer) => (typeof p === 'string' ? p : p.toString('latin1'))).join('\n');
}

function entry(options: FetchOptions): { context: TlsContext; id: number } {
  const reject = options.rejectUnauthorized ?? true;
  const key = `${reject ? 1 : 0}\n${pemKey(options.ca)}`;
  let found = contexts.get(key);
  if (found === undefined) {
    const context = new TlsContext({
      ...(options.ca === undefined ? {} : { ca: options.ca }),
      rejectUnauthorized: reject,
      alpn: ['http/1.1'],
    });
    found = { context, id: nextId++ };
    if (contexts.size >= MAX_CONTEXTS) contexts.delete(contexts.keys().next().value as string);
    contexts.set(key, found);
  }
  return found;
}

/**
 * The client context for `options`' `ca` and `rejectUnauthorized` (made on
 * first use, then shared).
 *
 * @throws {TypeError} / {Error} what {@link TlsContext}'s constructor throws for a bad `ca`
 */
export function clientContext(options: FetchOptions): TlsContext {
  return entry(options).context;
}

/**
 * What tells connections apart for reuse: a kept-alive TLS connection may
 * carry a request only with the same trust options it was verified under
 * (one opened with `rejectUnauthorized: false` must never serve a request
 * that asked for verification).
 */
export function poolKey(target: HttpTarget, options: FetchOptions): string {
  const origin = `${target.hostname}:${target.port}`;
  return target.tls ? `https://${origin}#${entry(options).id}` : `http://${origin}`;
}

/**
 * A TLS connection over the connected `sock`, not yet shaken hands: SNI and
 * the certificate check name the URL's host.
 */
export function wrapClient(sock: Socket, target: HttpTarget, options: FetchOptions): TlsSocket {
  return clientContext(options).wrapSocket(sock, { serverHostname: target.hostname });
}
