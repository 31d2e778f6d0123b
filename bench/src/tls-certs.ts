/**
 * Certificates for the TLS tests and benchmarks, made at run time with the
 * `openssl` command (bench/setup installs it): a test CA, a good server leaf
 * and one leaf for each way a certificate check can fail. Nothing is checked
 * in, so no fixture expires in the repository and no private key is
 * published. One set per key type is made per process and cached: a set
 * costs some 20 openssl runs, about 0.5 s for EC and 2.5 s for RSA keys.
 *
 * Every certificate except the two CAs and `selfSigned` is issued with
 * `openssl ca`, because OpenSSL 3.0's `x509 -req` cannot set a notBefore in
 * the past, which `expired` needs; using one path for all leaves keeps them
 * alike in everything but the property under test.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A certificate and its private key: the files, and their PEM text. */
export interface KeyPair {
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
}

/** The certificates of one key type, in the directory `dir`. */
export interface CertificateSet {
  dir: string;
  /** The test CA (CN "iomux test CA", basicConstraints CA:true): trust this one. */
  ca: KeyPair;
  /** SANs DNS:localhost, IP:127.0.0.1, IP:::1; signed by `ca`; valid from 30 days ago for 10 years. */
  server: KeyPair;
  /** SAN DNS:wrong.example only; signed by `ca`. */
  wrongHost: KeyPair;
  /** localhost SANs, signed by `ca`, valid only from 2020-01-01 to 2021-01-01. */
  expired: KeyPair;
  /** localhost SANs, signed by its own key. */
  selfSigned: KeyPair;
  /** localhost SANs, signed by a second CA that is not in this set. */
  unknownCa: KeyPair;
  /** A client certificate (CN iomux-client, extendedKeyUsage clientAuth) signed by `ca`. */
  client: KeyPair;
}

/** Options of {@link makeCertificates}. */
export interface CertificateOptions {
  /** 'ec' (P-256, the default) or 'rsa' (2048 bits). */
  keyType?: 'ec' | 'rsa';
}

/** The `openssl` command, or null when none is installed. */
export function findOpenssl(): string | null {
  for (const candidate of ['openssl', '/usr/bin/openssl']) {
    const r = spawnSync(candidate, ['version'], { encoding: 'utf8', timeout: 10_000 });
    if (r.error === undefined && r.status === 0) return candidate;
  }
  return null;
}

const LOCALHOST_SANS = 'DNS:localhost, IP:127.0.0.1, IP:::1';

/**
 * One file for `req` and both CAs' `ca`: the CA databases live in the
 * temporary directory, serials are random (`rand_serial`) so no serial file
 * is kept, and `unique_subject = no` lets several leaves share a subject.
 * The extension sections are chosen per certificate with -extensions.
 */
function opensslConfig(dir: string, keyType: 'ec' | 'rsa'): string {
  // An EC key cannot encrypt: keyEncipherment belongs on RSA leaves only
  // (TLS 1.2's RSA key exchange).
  const leafUsage = keyType === 'rsa' ? 'critical, digitalSignature, keyEncipherment' : 'critical, digitalSignature';
  const caSection = (name: string): string => `
[ ${name} ]
dir = ${join(dir, name)}
database = $dir/index.txt
new_certs_dir = $dir
certificate = $dir.crt
private_key = $dir.key
rand_serial = yes
unique_subject = no
default_md = sha256
default_days = 3650
policy = policy_any
email_in_dn = no
copy_extensions = none
`;
  return `
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
${caSection('ca')}
${caSection('ca2')}
[ policy_any ]
commonName = supplied
[ v3_ca ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ v3_server ]
basicConstraints = critical, CA:false
keyUsage = ${leafUsage}
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = ${LOCALHOST_SANS}
[ v3_wrong_host ]
basicConstraints = critical, CA:false
keyUsage = ${leafUsage}
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:wrong.example
[ v3_client ]
basicConstraints = critical, CA:false
keyUsage = ${leafUsage}
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ v3_self_signed ]
basicConstraints = critical, CA:false
keyUsage = ${leafUsage}
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
subjectAltName = ${LOCALHOST_SANS}
`;
}

function run(openssl: string, args: string[]): void {
  try {
    execFileSync(openssl, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`openssl ${args.join(' ')} failed: ${stderr || (error as Error).message}`);
  }
}

const sets = new Map<'ec' | 'rsa', CertificateSet>();
let cleanupRegistered = false;

/**
 * The test certificates of one key type, made on the first call in this
 * process and then cached; their directory is removed when the process
 * exits (under the test suite, when the suite ends).
 *
 * @throws when openssl is not installed or one of its commands fails (the
 *   message quotes its stderr)
 */
export function makeCertificates(options: CertificateOptions = {}): CertificateSet {
  const keyType = options.keyType ?? 'ec';
  const cached = sets.get(keyType);
  if (cached !== undefined) return cached;
  const openssl = findOpenssl();
  if (openssl === null) throw new Error('openssl is not installed (bench/setup installs it)');

  // As the C floors (src/cli/bench/floor.ts): inside the test suite's
  // scratch directory when it set IOMUX_FLOOR_DIR, since vitest kills its
  // worker processes without running exit handlers and the suite removes
  // that directory itself; else a directory of our own, removed at exit.
  const parent = process.env['IOMUX_FLOOR_DIR'];
  const inSuite = parent !== undefined && parent !== '';
  const dir = mkdtempSync(join(inSuite ? parent : tmpdir(), `iomux-certs-${keyType}-`));
  if (!inSuite && !cleanupRegistered) {
    cleanupRegistered = true;
    process.on('exit', () => {
      for (const set of sets.values()) rmSync(set.dir, { recursive: true, force: true });
    });
  }
  try {
    const config = join(dir, 'openssl.cnf');
    writeFileSync(config, opensslConfig(dir, keyType));
    for (const ca of ['ca', 'ca2']) {
      mkdirSync(join(dir, ca));
      writeFileSync(join(dir, ca, 'index.txt'), '');
    }

    const keyArgs =
      keyType === 'ec'
        ? ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']
        : ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'];
    const newKey = (name: string): string => {
      const keyFile = join(dir, `${name}.key`);
      run(openssl, ['genpkey', ...keyArgs, '-out', keyFile]);
      return keyFile;
    };
    const pair = (name: string): KeyPair => {
      const certFile = join(dir, `${name}.crt`);
      const keyFile = join(dir, `${name}.key`);
      return { certFile, keyFile, cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
    };
    // `req -x509` starts a certificate now; 3,660 days keeps each CA valid
    // past the end of the leaves it signs (which start 30 days back).
    const selfSigned = (name: string, cn: string, extensions: string): KeyPair => {
      const keyFile = newKey(name);
      const out = join(dir, `${name}.crt`);
      const args = ['-config', config, '-extensions', extensions, '-key', keyFile, '-subj', `/CN=${cn}`, '-out', out];
      run(openssl, ['req', '-new', '-x509', '-sha256', '-days', '3660', ...args]);
      return pair(name);
    };
    const issue = (
      name: string,
      cn: string,
      ca: 'ca' | 'ca2',
      extensions: string,
      startdate = daysFromNow(-30),
      enddate = daysFromNow(3650),
    ): KeyPair => {
      const keyFile = newKey(name);
      const csr = join(dir, `${name}.csr`);
      run(openssl, ['req', '-new', '-config', config, '-key', keyFile, '-subj', `/CN=${cn}`, '-out', csr]);
      const dates = ['-startdate', startdate, '-enddate', enddate];
      const args = ['-config', config, '-name', ca, '-extfile', config, '-extensions', extensions, ...dates];
      run(openssl, ['ca', '-batch', '-notext', ...args, '-in', csr, '-out', join(dir, `${name}.crt`)]);
      return pair(name);
    };

    const set: CertificateSet = {
      dir,
      ca: selfSigned('ca', 'iomux test CA', 'v3_ca'),
      server: issue('server', 'localhost', 'ca', 'v3_server'),
      wrongHost: issue('wrong-host', 'wrong.example', 'ca', 'v3_wrong_host'),
      expired: issue('expired', 'localhost', 'ca', 'v3_server', '20200101000000Z', '20210101000000Z'),
      selfSigned: selfSigned('self-signed', 'localhost', 'v3_self_signed'),
      unknownCa: (() => {
        selfSigned('ca2', 'iomux other CA', 'v3_ca');
        return issue('unknown-ca', 'localhost', 'ca2', 'v3_server');
      })(),
      client: issue('client', 'iomux-client', 'ca', 'v3_client'),
    };
    sets.set(keyType, set);
    return set;
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

/** `openssl ca`'s date form (YYYYMMDDHHMMSSZ, UTC), `days` from now. */
function daysFromNow(days: number): string {
  const d = new Date(Date.now() + days * 86_400_000);
  return `${d.toISOString().slice(0, 19).replace(/[-:T]/g, '')}Z`;
}
