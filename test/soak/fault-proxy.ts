/**
 * The fault injector: a loopback TCP proxy in its own process (forked by
 * the soak), so it never shares the event loop under test. Listeners:
 *
 * - `dynamic`: the client's first two bytes name the upstream port (big
 *   endian), for servers that come and go (each soak round's echo server);
 * - `tight`: the same, behind a backlog-1 listener that stops accepting now
 *   and then (backlog-worker.ts);
 * - one fixed port per route (`routes` name -> upstream port), for the HTTP
 *   servers, which the fetchers reach without any preamble.
 *
 * Every connection through `dynamic` and the routes gets a fault drawn from
 * the seeded PRNG (relay.ts). IPC: sends `{ type: 'ready', ports }`; answers
 * `{ type: 'report' }` with its counters; exits on `{ type: 'stop' }`.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { Worker } from 'node:worker_threads';

import { Rng } from './prng.js';
import { drawPlan, type RelayCounters, relay } from './relay.js';

/** What the proxy is started with (JSON in argv[2]). */
export interface ProxyConfig {
  seed: number;
  routes: Record<string, number>;
}

/** The proxy's ports, sent once listening. */
export interface ProxyPorts {
  dynamic: number;
  tight: number;
  routes: Record<string, number>;
}

/** The proxy's counters, merged over its listeners. */
export interface ProxyReport {
  injected: Record<string, number>;
  errors: Record<string, number>;
  connections: number;
}

function send(message: unknown): void {
  process.send?.(message);
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1', backlog: 511 }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') reject(new Error('no port'));
      else resolve(address.port);
    });
  });
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as ProxyConfig;
  const rng = new Rng(config.seed);
  const counters: RelayCounters = { injected: {}, errors: {}, connections: 0 };

  const open = (client: Socket, port: number, head: Buffer): void => {
    const plan = drawPlan(rng);
    const upstream = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    upstream.once('connect', () => {
      relay(client, upstream, head, plan, counters);
      client.resume();
    });
    upstream.once('error', (error: NodeJS.ErrnoException) => {
      counters.errors[`upstream ${error.code}`] = (counters.errors[`upstream ${error.code}`] ?? 0) + 1;
      client.resetAndDestroy();
    });
  };

  const dynamic = createServer({ allowHalfOpen: true }, (client) => {
    let head = Buffer.alloc(0);
    client.on('error', () => client.destroy());
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      if (head.length < 2) return;
      client.off('data', onData);
      client.pause();
      open(client, head.readUInt16BE(0), head.subarray(2));
    };
    client.on('data', onData);
  });
  const routes: Record<string, number> = {};
  const servers: Server[] = [dynamic];
  for (const [name, upstreamPort] of Object.entries(config.routes)) {
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
      client.on('error', () => client.destroy());
      open(client, upstreamPort, Buffer.alloc(0));
    });
    servers.push(server);
    routes[name] = await listen(server);
  }
  const dynamicPort = await listen(dynamic);

  const backlog = new Worker(new URL('./backlog-worker.js', import.meta.url), {
    workerData: { seed: config.seed ^ 0xbac },
  });
  const tight = await new Promise<number>((resolve, reject) => {
    backlog.once('message', (m: { port: number }) => resolve(m.port));
    backlog.once('error', reject);
  });

  send({ type: 'ready', ports: { dynamic: dynamicPort, tight, routes } satisfies ProxyPorts });

  process.on('message', (message: { type: string }) => {
    if (message.type === 'report') {
      backlog.once('message', (m: { counters: RelayCounters }) => {
        const merged: ProxyReport = {
          injected: { ...counters.injected, ...m.counters.injected },
          errors: { ...counters.errors },
          connections: counters.connections + m.counters.connections,
        };
        for (const [code, n] of Object.entries(m.counters.errors)) merged.errors[code] = (merged.errors[code] ?? 0) + n;
        send({ type: 'report', report: merged });
      });
      backlog.postMessage({ type: 'report' });
    }
    if (message.type === 'stop') {
      for (const server of servers) server.close();
      void backlog.terminate().then(() => process.exit(0));
    }
  });
  process.on('disconnect', () => process.exit(0));
}

void main();
