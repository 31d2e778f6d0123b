/**
 * A throwaway certificate for `iomux demo --tls`: a CA made for this run
 * and a server certificate it signs for localhost and 127.0.0.1, made with
 * the `openssl` command in a temporary directory and removed after. Without
 * openssl nothing is made (no certificate is faked): the demo then asks for
 * `--tls CERT KEY` and `--ca FILE`.
 *
 * @module
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** PEM files of a server certificate, its key, and the CA to trust for it. */
export interface DemoCertificates {
  certFile: string;
  keyFile: string;
  caFile: string;
  /** The CA's PEM text. */
  ca: string;
  /** Removes the files. */
  remove(): void;
}

const EXTENSIONS = `
[ v3_server ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
`;

/** The `openssl` command, or null when there is none. */
export function findOpenssl(): string | null {
  for (const candidate of ['openssl', '/usr/bin/openssl']) {
    const r = spawnSync(candidate, ['version'], { encoding: 'utf8', timeout: 10_000 });
    if (r.error === undefined && r.status === 0) return candidate;
  }
  return null;
}

/**
 * Makes a CA and a server certificate (P-256 keys, valid for two days) in a
 * new temporary directory.
 *
 * @returns null when openssl is not installed
 * @throws {Error} quoting openssl's stderr when one of its commands fails
 */
export function makeDemoCertificates(): DemoCertificates | null {
  const openssl = findOpenssl();
  if (openssl === null) return null;
  const dir = mkdtempSync(join(tmpdir(), 'iomux-demo-tls-'));
  const file = (name: string): string => join(dir, name);
  const run = (args: string[]): void => {
    try {
      execFileSync(openssl, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
    } catch (error) {
      const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
      throw new Error(`openssl ${args[0] ?? ''} failed: ${stderr || (error as Error).message}`);
    }
  };
  try {
    const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    run([
      'req',
      '-x509',
      ...newKey,
      '-keyout',
      file('ca.key'),
      '-out',
      file('ca.crt'),
      '-subj',
      '/CN=iomux demo CA',
      '-days',
      '2',
      '-addext',
      'basicConstraints=critical,CA:true',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    run([
      'req',
      '-new',
      ...newKey,
      '-keyout',
      file('server.key'),
      '-out',
      file('server.csr'),
      '-subj',
      '/CN=localhost',
    ]);
    writeFileSync(file('server.ext'), EXTENSIONS);
    run([
      'x509',
      '-req',
      '-in',
      file('server.csr'),
      '-CA',
      file('ca.crt'),
      '-CAkey',
      file('ca.key'),
      '-set_serial',
      `0x${Date.now().toString(16)}`,
      '-days',
      '2',
      '-sha256',
      '-extfile',
      file('server.ext'),
      '-extensions',
      'v3_server',
      '-out',
      file('server.crt'),
    ]);
    return {
      certFile: file('server.crt'),
      keyFile: file('server.key'),
      caFile: file('ca.crt'),
      ca: readFileSync(file('ca.crt'), 'utf8'),
      remove: () => rmSync(dir, { recursive: true, force: true }),
    };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}
