/**
 * One proxied connection of the fault injector: bytes from the client go to
 * the upstream and back, through node:net (never the loop under test), and
 * one fault chosen per connection is applied on the way.
 *
 * Faults that must not change a byte: `stall` (forwarding pauses, once),
 * `dribble` (the first bytes go out one write each). Faults that end the
 * connection early: `reset` (RST to both ends, SO_LINGER 0 close) and
 * `halfclose` (the client's direction is shut down for writing part-way,
 * while what the client sends still reaches the upstream).
 */
import type { Socket } from 'node:net';
import { setImmediate as immediate, setTimeout as sleep } from 'node:timers/promises';

import type { Rng } from './prng.js';

/** The faults the relay injects itself (the listener kinds are `backlog` and `emfile`). */
export type RelayFault = 'none' | 'stall' | 'dribble' | 'reset' | 'halfclose';

/** Every kind of fault the soak injects, for the report. */
export const FAULT_KINDS = ['stall', 'dribble', 'reset', 'halfclose', 'backlog', 'emfile'] as const;

/** What a relay does to one connection: a kind and where it strikes. */
export interface FaultPlan {
  kind: RelayFault;
  /** Which way it strikes: 'down' is upstream -> client. */
  direction: 'up' | 'down';
  /** Byte offset in that direction where a stall, reset or half-close strikes. */
  at: number;
  /** Stall length in ms; for a dribble, how many bytes go one by one. */
  amount: number;
}

/** Draws a plan: a third of connections untouched, the rest spread over the four kinds. */
export function drawPlan(rng: Rng): FaultPlan {
  const kind = rng.pick<RelayFault>(['none', 'none', 'stall', 'dribble', 'reset', 'halfclose']);
  const direction = rng.chance(0.6) ? 'down' : 'up';
  const at = rng.chance(0.2) ? 0 : rng.int(1, 8192);
  const amount = kind === 'stall' ? rng.int(20, 400) : rng.int(16, 2048);
  return { kind, direction, at, amount };
}

/** Counters the relay adds to. */
export interface RelayCounters {
  /** Faults that actually struck (a plan whose offset was never reached does not count). */
  injected: Record<string, number>;
  /** Socket errors the proxy saw, by code. */
  errors: Record<string, number>;
  connections: number;
}

function bump(map: Record<string, number>, key: string): void {
  map[key] = (map[key] ?? 0) + 1;
}

/** SO_LINGER 0 then close: the peer gets RST, not FIN. */
function reset(sock: Socket): void {
  if (sock.destroyed) return;
  sock.resetAndDestroy();
}

/**
 * Relays `client` <-> `upstream` (both allowHalfOpen, both connected) under
 * `plan`; `head` is what the client sent before the upstream was connected.
 */
export function relay(client: Socket, upstream: Socket, head: Buffer, plan: FaultPlan, counters: RelayCounters): void {
  counters.connections++;
  let finished = false;
  const finish = (): void => {
    if (finished) return;
    finished = true;
    client.destroy();
    upstream.destroy();
  };
  for (const sock of [client, upstream]) {
    sock.setNoDelay(true);
    sock.on('error', (error: NodeJS.ErrnoException) => {
      bump(counters.errors, error.code ?? 'ERR');
      finish();
    });
  }
  let ended = 0;
  const onDirectionDone = (): void => {
    if (++ended === 2) finish();
  };
  pump(client, upstream, head, plan.direction === 'up' ? plan : null, counters, onDirectionDone, finish);
  pump(upstream, client, Buffer.alloc(0), plan.direction === 'down' ? plan : null, counters, onDirectionDone, finish);
}

function pump(
  src: Socket,
  dst: Socket,
  head: Buffer,
  plan: FaultPlan | null,
  counters: RelayCounters,
  done: () => void,
  abort: () => void,
): void {
  let forwarded = 0;
  let struck = false;
  let cut = false; // half-closed: what comes from src is read and dropped
  const queue: Buffer[] = head.length > 0 ? [head] : [];
  let busy = false;
  let srcEnded = false;

  const strike = (): void => {
    if (plan === null || struck) return;
    struck = true;
    bump(counters.injected, plan.kind);
  };

  const write = async (chunk: Buffer): Promise<void> => {
    if (dst.destroyed || dst.writableEnded || chunk.length === 0) return;
    if (!dst.write(chunk)) {
      await new Promise<void>((resolve) => {
        const settle = (): void => {
          dst.off('drain', settle);
          dst.off('close', settle);
          resolve();
        };
        dst.on('drain', settle);
        dst.on('close', settle);
      });
    }
  };

  const forward = async (chunk: Buffer): Promise<void> => {
    if (cut) return;
    let rest = chunk;
    if (plan !== null && !struck && (plan.kind === 'reset' || plan.kind === 'halfclose' || plan.kind === 'stall')) {
      if (forwarded + rest.length >= plan.at) {
        const before = Math.max(0, plan.at - forwarded);
        await write(rest.subarray(0, before));
        forwarded += before;
        rest = rest.subarray(before);
        strike();
        if (plan.kind === 'reset') {
          reset(src);
          reset(dst);
          abort();
          return;
        }
        if (plan.kind === 'halfclose') {
          cut = true;
          // The client's direction closes for writing; the other keeps flowing.
          if (!dst.destroyed) dst.end();
          return;
        }
        await sleep(plan.amount);
      }
    }
    if (plan !== null && plan.kind === 'dribble' && forwarded < plan.amount && rest.length > 0) {
      strike();
      const n = Math.min(rest.length, plan.amount - forwarded);
      for (let i = 0; i < n && !dst.destroyed; i++) {
        await write(rest.subarray(i, i + 1));
        await immediate();
      }
      forwarded += n;
      rest = rest.subarray(n);
    }
    await write(rest);
    forwarded += rest.length;
  };

  const drain = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    src.pause();
    try {
      for (let chunk = queue.shift(); chunk !== undefined; chunk = queue.shift()) await forward(chunk);
    } finally {
      busy = false;
    }
    if (srcEnded) {
      if (!cut && !dst.destroyed && !dst.writableEnded) dst.end();
      done();
    } else if (!src.destroyed) src.resume();
  };

  src.on('data', (chunk: Buffer) => {
    queue.push(chunk);
    void drain();
  });
  src.on('end', () => {
    srcEnded = true;
    void drain();
  });
  // A client that sent its FIN with the preamble may have ended before the
  // relay began: its 'end' has fired already.
  if (src.readableEnded) srcEnded = true;
  if (queue.length > 0 || srcEnded) void drain();
}
