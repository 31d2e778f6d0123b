/**
 * What a TlsContext (tls.ts) is made of: its options, checked before any of
 * OpenSSL runs, and turned into what native/tls_context.cc reads (versions
 * as numbers, PEM as one string, ALPN in wire format, Node's roots when no
 * `ca` replaces them).
 *
 * @module
 */
import { rootCertificates } from 'node:tls';

import { describe, invalidArgType, invalidArgValue } from './args.js';
import type { NativeTlsContextOptions } from './binding.js';

/** A protocol version as Node names it. */
export type TlsVersion = 'TLSv1.2' | 'TLSv1.3';

const VERSIONS: Record<TlsVersion, number> = { 'TLSv1.2': 0x0303, 'TLSv1.3': 0x0304 };

/** PEM text (or its bytes); several certificates may follow one another, or come as an array. */
export type PemInput = string | Buffer | readonly (string | Buffer)[];

/** What a TlsContext is made of. */
export interface TlsContextOptions {
  /** The server's side of connections (needs `cert` and `key`). Default false: a client. */
  server?: boolean;
  /** Certificates to trust instead of Node's bundled roots. */
  ca?: PemInput;
  /** This side's certificate, then its chain (PEM). A server's; a client's for client authentication. */
  cert?: PemInput;
  /** The private key of `cert` (PEM, unencrypted). */
  key?: string | Buffer;
  /** ALPN protocols offered (client) or accepted (server, in order of preference), e.g. `['http/1.1']`. */
  alpn?: readonly string[];
  /** Oldest version allowed (default 'TLSv1.2'). */
  minVersion?: TlsVersion;
  /** Newest version allowed (default 'TLSv1.3'). */
  maxVersion?: TlsVersion;
  /**
   * Fail the handshake when the peer's certificate does not verify (default
   * true). When false, {@link TlsSocket.authorizationError} says what failed.
   */
  rejectUnauthorized?: boolean;
  /** Server: ask clients for a certificate (verified against `ca`). */
  requestCert?: boolean;
}

// Node's bundled roots as one PEM string, made on first use.
let rootsPem: string | null = null;

function pemText(value: PemInput, name: string): string {
  const parts = Array.isArray(value) ? value : [value];
  const texts: string[] = [];
  for (const part of parts as readonly unknown[]) {
    if (typeof part === 'string') texts.push(part);
    else if (Buffer.isBuffer(part)) texts.push(part.toString('latin1'));
    else throw invalidArgType(name, 'a string, Buffer or an array of them (PEM)', value);
  }
  return texts.join('\n');
}

function versionNumber(value: unknown, name: string): number {
  if (value === undefined) return 0;
  const version = VERSIONS[value as TlsVersion];
  if (typeof value !== 'string' || version === undefined) {
    const error = new TypeError(`The "${name}" option must be 'TLSv1.2' or 'TLSv1.3'. Received ${describe(value)}`);
    throw Object.assign(error, { code: 'ERR_TLS_INVALID_PROTOCOL_VERSION' });
  }
  return version;
}

function alpnWire(protocols: unknown): Buffer | undefined {
  if (protocols === undefined) return undefined;
  if (!Array.isArray(protocols) || protocols.length === 0) {
    throw invalidArgType('alpn', 'a non-empty array of protocol names', protocols);
  }
  const parts: Buffer[] = [];
  for (const protocol of protocols as unknown[]) {
    const bytes = typeof protocol === 'string' ? Buffer.from(protocol, 'utf8') : null;
    if (bytes === null || bytes.length === 0 || bytes.length > 255) {
      throw invalidArgValue(
        `The "alpn" option must hold protocol names of 1 to 255 bytes. Received ${describe(protocol)}`,
      );
    }
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  return Buffer.concat(parts);
}

function checkBoolean(value: unknown, name: string): boolean | undefined {
  if (value === undefined || typeof value === 'boolean') return value;
  throw invalidArgType(name, 'a boolean', value);
}

/**
 * The native form of `options`.
 *
 * @throws {TypeError} ERR_INVALID_ARG_TYPE / ERR_INVALID_ARG_VALUE for a bad option (a server without `cert`
 *   and `key`, `cert` without `key`); ERR_TLS_INVALID_PROTOCOL_VERSION for a version other than TLSv1.2 / TLSv1.3
 */
export function nativeContextOptions(options: TlsContextOptions): NativeTlsContextOptions {
  if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'an object', options);
  const server = checkBoolean(options.server, 'server') ?? false;
  const reject = checkBoolean(options.rejectUnauthorized, 'rejectUnauthorized') ?? true;
  const requestCert = checkBoolean(options.requestCert, 'requestCert') ?? false;
  const minVersion = versionNumber(options.minVersion, 'minVersion');
  const maxVersion = versionNumber(options.maxVersion, 'maxVersion');
  if (minVersion !== 0 && maxVersion !== 0 && minVersion > maxVersion) {
    throw invalidArgValue(
      `The "minVersion" option must not be newer than "maxVersion". Received ${options.minVersion} > ${options.maxVersion}`,
    );
  }
  const ca = options.ca === undefined ? undefined : pemText(options.ca, 'ca');
  const cert = options.cert === undefined ? undefined : pemText(options.cert, 'cert');
  const key = options.key === undefined ? undefined : pemText(options.key, 'key');
  if ((cert === undefined) !== (key === undefined)) {
    throw invalidArgValue('The "cert" and "key" options go together: one was given without the other');
  }
  if (server && cert === undefined) {
    throw invalidArgValue('A server context needs the "cert" and "key" options');
  }
  const alpn = alpnWire(options.alpn);
  // A client without `ca` trusts Node's roots (a server asking for client
  // certificates, too); parsing them is what makes a context costly.
  const needsRoots = ca === undefined && (!server || requestCert);
  if (needsRoots && rootsPem === null) rootsPem = rootCertificates.join('\n');
  return {
    server,
    reject,
    requestCert,
    minVersion,
    maxVersion,
    ...(needsRoots ? { roots: rootsPem as string } : {}),
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined ? {} : { cert, key: key as string }),
    ...(alpn === undefined ? {} : { alpn }),
  };
}
