/**
 * The soak's peers, each in its own process: the embedded server
 * (`iomux serve`, one per backend), nginx when installed (started as the
 * project's benchmarks start it), and the fault proxy in front of them. Also
 * the reference bodies: every fetch target read once directly with node:http.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { get } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import type { SelectorName } from 'iomux/loop';
import type { ProxyConfig, ProxyPorts, ProxyReport } from './fault-proxy.js';
import type { FetchTarget } from './fetches.js';
import type { Rng } from './prng.js';

/** The package root (test/soak/<out>/ is three levels down, test/soak/ two). */
export function packageRoot(): string {
  const here = new URL('.', import.meta.url).pathname;
  const at = here.lastIndexOf('/test/soak/');
  if (at < 0) throw new Error(`soak runs from test/soak/, not ${here}`);
  return here.slice(0, at);
}

/** A peer process and how to stop it. */
export interface Peer {
  name: string;
  port: number;
  stop(): Promise<void>;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/**
 * `iomux serve --backend <backend>` on a free loopback port, under a shell
 * that kills it when its stdin (a pipe from this process) closes: when the
 * soak stops it, and when the soak dies without stopping it.
 */
export async function startEmbedded(backend: SelectorName): Promise<Peer> {
  const main = join(packageRoot(), 'dist/cli/main.js');
  const script = '"$0" "$@" </dev/null & server=$!; read -r _; kill "$server"; wait "$server" 2>/dev/null; exit 0';
  const child = spawn('/bin/sh', ['-c', script, process.execPath, main, 'serve', '--port', '0', '--backend', backend], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m?.[1] !== undefined) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`iomux serve exited with ${code}`)));
  });
  const stop = async (): Promise<void> => {
    const exited = child.exitCode === null ? once(child, 'exit') : Promise.resolve();
    child.stdin?.end();
    const timer = setTimeout(() => void stopChild(child), 5000);
    await exited;
    clearTimeout(timer);
  };
  return { name: `serve-${backend}`, port, stop };
}

interface NginxModule {
  startNginx(
    files?: Record<string, Buffer | string>,
  ): Promise<{ port: number; version: string; stop(): Promise<void> } | null>;
}

/** nginx serving `files`, or null when it is not installed. */
export async function startNginxPeer(files: Record<string, Buffer>): Promise<(Peer & { version: string }) | null> {
  const url = pathToFileURL(join(packageRoot(), 'bench/.build/nginx.js')).href;
  const { startNginx } = (await import(url)) as NginxModule;
  const nginx = await startNginx(files);
  if (nginx === null) return null;
  return { name: 'nginx', port: nginx.port, version: nginx.version, stop: () => nginx.stop() };
}

/** The fault proxy in its own process, routing each peer by name. */
export interface Proxy {
  ports: ProxyPorts;
  report(): Promise<ProxyReport>;
  stop(): Promise<void>;
}

/** Forks the fault proxy with `routes` (name -> upstream port). */
export async function startProxy(seed: number, routes: Record<string, number>): Promise<Proxy> {
  const config: ProxyConfig = { seed, routes };
  const child = fork(new URL('./fault-proxy.js', import.meta.url), [JSON.stringify(config)], { stdio: 'inherit' });
  const ports = await new Promise<ProxyPorts>((resolve, reject) => {
    child.once('message', (m: { ports: ProxyPorts }) => resolve(m.ports));
    child.once('exit', (code) => reject(new Error(`fault proxy exited with ${code}`)));
  });
  return {
    ports,
    report: () =>
      new Promise((resolve) => {
        child.once('message', (m: { report: ProxyReport }) => resolve(m.report));
        child.send({ type: 'report' });
      }),
    stop: async () => {
      const exited = once(child, 'exit');
      child.send({ type: 'stop' });
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** GET with node:http straight to the server (no proxy): the reference body. */
function reference(port: number, path: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        res.statusCode === 200 ? resolve(Buffer.concat(chunks)) : reject(new Error(`${path}: ${res.statusCode}`)),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(30_000, () => req.destroy(new Error(`${path}: reference fetch timed out`)));
  });
}

/** The targets for one peer, each with its reference SHA-256. */
export async function targetsFor(peer: Peer, paths: readonly string[]): Promise<FetchTarget[]> {
  const out: FetchTarget[] = [];
  for (const path of paths) {
    const body = await reference(peer.port, path);
    out.push({ route: peer.name, path, sha256: createHash('sha256').update(body).digest('hex'), bytes: body.length });
  }
  return out;
}

/** Paths on the embedded server: pages, sized bodies, chunked bodies. */
export function embeddedPaths(rng: Rng): string[] {
  return [
    '/goods/1/',
    `/bytes/${rng.int(1, 4096)}`,
    `/bytes/${rng.int(16_000, 300_000)}`,
    `/chunked/${rng.int(1, 100_000)}`,
  ];
}

/** nginx's files (a random blob) and paths. */
export function nginxFiles(rng: Rng): { files: Record<string, Buffer>; paths: string[] } {
  return { files: { 'blob.bin': rng.bytes(rng.int(50_000, 400_000)) }, paths: ['/goods/2/', '/blob.bin'] };
}
