/**
 * The accept-queue fault, a worker thread of the proxy process: a listener
 * with a backlog of 1 whose thread stops accepting for hundreds of
 * milliseconds at a time (Atomics.wait blocks its event loop), so clients'
 * handshakes pile up in a full accept queue and their SYNs are dropped and
 * retried by the kernel. Each window that ends with the queue full (read from
 * /proc/net/tcp, where a listener's rx_queue is its accept queue) counts as
 * one `backlog` fault. Accepted connections are relayed untouched, with the
 * same 2-byte upstream port preamble as the proxy's dynamic port.
 */
import { readFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';

import { Rng } from './prng.js';
import { type RelayCounters, relay } from './relay.js';

const BACKLOG = 1;

interface BacklogWorkerData {
  seed: number;
}

const { seed } = workerData as BacklogWorkerData;
const rng = new Rng(seed);
const counters: RelayCounters = { injected: {}, errors: {}, connections: 0 };
let windows = 0;
let stopping = false;

/** The accept queue length of the listener on `port` (0 when not found). */
function acceptQueue(port: number): number {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields[1]?.endsWith(`:${hexPort}`) && fields[3] === '0A') {
      return Number.parseInt(fields[4]?.split(':')[1] ?? '0', 16);
    }
  }
  return 0;
}

function withPreamble(client: Socket): void {
  let head = Buffer.alloc(0);
  const onData = (chunk: Buffer): void => {
    head = Buffer.concat([head, chunk]);
    if (head.length < 2) return;
    client.off('data', onData);
    client.pause();
    const upstream = connect({ port: head.readUInt16BE(0), host: '127.0.0.1', allowHalfOpen: true });
    upstream.once('connect', () => {
      relay(client, upstream, head.subarray(2), { kind: 'none', direction: 'up', at: 0, amount: 0 }, counters);
      client.resume();
    });
    upstream.once('error', () => {
      client.resetAndDestroy();
    });
  };
  client.on('error', () => client.destroy());
  client.on('data', onData);
}

const server = createServer({ allowHalfOpen: true }, withPreamble);
server.listen({ port: 0, host: '127.0.0.1', backlog: BACKLOG }, () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  parentPort?.postMessage({ type: 'ready', port: address.port });
  const blocker = new Int32Array(new SharedArrayBuffer(4));
  const cycle = (): void => {
    if (stopping) return;
    Atomics.wait(blocker, 0, 0, rng.int(300, 900));
    if (acceptQueue(address.port) > BACKLOG) {
      windows++;
      counters.injected['backlog'] = windows;
    }
    setTimeout(cycle, rng.int(50, 250));
  };
  setTimeout(cycle, 50);
});

parentPort?.on('message', (message: { type: string }) => {
  if (message.type === 'report') parentPort?.postMessage({ type: 'report', counters });
  if (message.type === 'stop') {
    stopping = true;
    server.close();
    parentPort?.close();
  }
});
