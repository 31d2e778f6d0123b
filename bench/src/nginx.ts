/**
 * nginx as a local peer server (bench/setup installs nginx-light): one
 * worker on a loopback port, its own temporary prefix, the notes' shop
 * pages at /goods/<n>/ and static files from a directory. The fetch
 * benchmark prefers it to the embedded server; tests use it as a real server.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { AF_INET, SOCK_STREAM, Socket } from '#iomux/sys/index.js';

/** A running nginx. */
export interface NginxServer {
  /** The plain HTTP port. */
  port: number;
  /** The HTTPS port (same locations), when started with `tls`; else undefined. */
  tlsPort: number | undefined;
  /** nginx's version line, e.g. "nginx/1.22.1". */
  version: string;
  /** Where `files` were written: served from / (e.g. /big.bin). */
  root: string;
  stop(): Promise<void>;
}

/** The nginx binary, or null when none is installed. */
export function findNginx(): string | null {
  for (const candidate of ['nginx', '/usr/sbin/nginx']) {
    const r = spawnSync(candidate, ['-v'], { encoding: 'utf8', timeout: 10_000 });
    if (r.error === undefined && r.status === 0) return candidate;
  }
  return null;
}

/** "nginx/1.22.1": the version the binary reports. */
export function nginxVersion(binary: string): string {
  const r = spawnSync(binary, ['-v'], { encoding: 'utf8' });
  return /nginx\/[\d.]+/.exec(`${r.stdout}${r.stderr}`)?.[0] ?? 'nginx';
}

/** A loopback port nobody listens on now (bound and released). */
function freePort(): number {
  const s = new Socket(AF_INET, SOCK_STREAM);
  try {
    s.bind(['127.0.0.1', 0]);
    return (s.getsockname() as [string, number])[1];
  } finally {
    s.close();
  }
}

/** What nginx's HTTPS listener presents (see {@link startNginx}). */
export interface NginxTlsOptions {
  /** PEM certificate (chain) file, read by nginx's master. */
  certFile: string;
  /** PEM private key file. */
  keyFile: string;
  /** nginx's `ssl_protocols` value; 'TLSv1.2 TLSv1.3' when undefined. */
  protocols?: string;
}

/** Options of {@link startNginx}. */
export interface NginxOptions {
  /** Also listen with TLS on a second port (`tlsPort`), beside the plain one. */
  tls?: NginxTlsOptions;
}

/** The /goods/<n>/ page: the same small page for every n, as the notes' shop. */
export const NGINX_GOODS_PAGE = '<html><head><title>goods</title></head><body><p>a page of the shop</p></body></html>';

async function accepting(port: number, child: ChildProcess, deadline: number): Promise<void> {
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    if (performance.now() > deadline) throw new Error('nginx did not start listening in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Starts nginx on 127.0.0.1 (one worker, keep-alive on, no access log);
 * resolves null when nginx is not installed.
 *
 * With `options.tls` it also listens with `ssl` on a second port, serving
 * the same locations with the same keep-alive. TLS session resumption is
 * left at nginx's defaults: no server-side session cache
 * (`ssl_session_cache` is `none`), but session tickets on
 * (`ssl_session_tickets on`), so a client that keeps a ticket can resume
 * (TLS 1.2 abbreviated handshake, TLS 1.3 PSK). A benchmark of new
 * connections measures full handshakes only if its client offers no
 * ticket.
 *
 * @param files - name -> content, served as static files from /
 * @param cpu - the one CPU its worker runs on (worker_cpu_affinity), or every CPU when undefined
 * @param options - `tls`: certificate, key and protocols of the HTTPS listener
 * @throws when nginx is installed but does not start
 */
export async function startNginx(
  files: Record<string, Buffer | string> = {},
  cpu?: number,
  options: NginxOptions = {},
): Promise<NginxServer | null> {
  const binary = findNginx();
  if (binary === null) return null;
  const prefix = mkdtempSync(join(tmpdir(), 'iomux-nginx-'));
  const root = join(prefix, 'www');
  mkdirSync(root);
  for (const [name, content] of Object.entries(files)) writeFileSync(join(root, name), content);
  // nginx started as root runs its worker as "nobody": let it read the files.
  for (const dir of [prefix, root]) chmodSync(dir, 0o755);
  for (const name of Object.keys(files)) chmodSync(join(root, name), 0o644);
  const port = freePort();
  const tls = options.tls;
  let tlsPort: number | undefined;
  // Each port is released before nginx binds it, so the second probe may get the first one back.
  while (tls !== undefined && (tlsPort === undefined || tlsPort === port)) tlsPort = freePort();
  const tlsListen =
    tls === undefined
      ? ''
      : `listen 127.0.0.1:${tlsPort} ssl backlog=4096;
    ssl_certificate ${tls.certFile};
    ssl_certificate_key ${tls.keyFile};
    ssl_protocols ${tls.protocols ?? 'TLSv1.2 TLSv1.3'};`;
  const conf = `
worker_processes 1;
${cpu === undefined ? '' : `worker_cpu_affinity ${(1n << BigInt(cpu)).toString(2)};`}
daemon off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:${port} backlog=4096;
    ${tlsListen}
    location /goods/ {
      default_type text/html;
      return 200 ${JSON.stringify(NGINX_GOODS_PAGE)};
    }
    location / { root ${root}; }
  }
}
`;
  const confPath = join(prefix, 'nginx.conf');
  writeFileSync(confPath, conf);
  const child = spawn(binary, ['-p', prefix, '-c', confPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  const cleanup = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM'); // fast shutdown: keep-alive clients need not leave first
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(prefix, { recursive: true, force: true });
  };
  try {
    const deadline = performance.now() + 10_000;
    await accepting(port, child, deadline);
    if (tlsPort !== undefined) await accepting(tlsPort, child, deadline);
  } catch (error) {
    await cleanup();
    throw new Error(`${(error as Error).message}: ${stderr.trim()}`);
  }
  return { port, tlsPort, version: nginxVersion(binary), root, stop: cleanup };
}
